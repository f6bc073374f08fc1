package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/internal/natstest"
)

// TestStatsCountEveryAnswer sends a known set of requests, one after the
// other, and reads $SRV.STATS over NATS: micro's own columns count every
// arrival and the refusals on arrival; the relay's figures in the
// endpoint's data count every answer, the failed exchanges included, with
// the time from arrival to answer, and the link's numbers per peer.
func TestStatsCountEveryAnswer(t *testing.T) {
	const exchangeTime = 40 * time.Millisecond
	link := &directLink{delay: exchangeTime, handler: func(to Peer, req []byte) ([]byte, error) {
		_, body, _ := exchange.DecodeRequest(req)
		switch string(body) {
		case "unreachable":
			return nil, fmt.Errorf("no ack: %w", ErrPeerUnreachable)
		case "radio":
			return nil, fmt.Errorf("spi: %w", ErrRadio)
		}
		return sentimentHandler(to, req)
	}}
	_, nc := startRelay(t, link, &Opts{Peers: []Peer{{"north", 2}, {"south", 3}}, MaxMessage: 100})
	for _, rq := range []struct{ subject, body, wantCode string }{
		{"field.sentiment", "great", ""},
		{"field.sentiment", "unreachable", "504"},
		{"field.sentiment", "", "400"},
		{"field.sentiment.nowhere", "x", "404"},
		{"field.sentiment", strings.Repeat("x", 101), "413"},
		{"field.nothing", "x", "404"},
		{"field.sentiment", "radio", "502"},
		{"field.send", "ok", ""},
	} {
		resp, err := nc.Request(rq.subject, []byte(rq.body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s %q: %v", rq.subject, rq.body, err)
		}
		if c := resp.Header.Get(micro.ErrorCodeHeader); c != rq.wantCode {
			t.Fatalf("%s %q: code %q, want %q", rq.subject, rq.body, c, rq.wantCode)
		}
	}
	var ep *micro.EndpointStats
	// micro counts a request after its handler returns, which may be just
	// after the caller has its answer.
	eventually(t, 5*time.Second, "micro counts all eight", func() bool {
		st := serviceStats(t, nc)
		if len(st.Endpoints) != 1 {
			t.Fatalf("%d endpoints, want the relay's one", len(st.Endpoints))
		}
		ep = st.Endpoints[0]
		return ep.NumRequests == 8
	})
	if ep.NumErrors != 4 {
		t.Errorf("micro: %d errors, want the 4 refused on arrival", ep.NumErrors)
	}
	var got Stats
	if err := json.Unmarshal(ep.Data, &got); err != nil {
		t.Fatalf("endpoint data %s: %v", ep.Data, err)
	}
	if got.NumRequests != 8 || got.NumErrors != 6 || got.LastError != "502:spi: relay: radio fault" {
		t.Errorf("relay: %d answered, %d errors, last %q; want 8, 6 and the radio fault", got.NumRequests, got.NumErrors, got.LastError)
	}
	// Four exchanges of at least exchangeTime each; the four refusals take
	// next to nothing, so the average is at least half an exchange.
	if got.ProcessingTime < 4*exchangeTime || got.AverageProcessingTime < exchangeTime/2 {
		t.Errorf("relay: processing %s, average %s; want at least %s and %s", got.ProcessingTime, got.AverageProcessingTime, 4*exchangeTime, exchangeTime/2)
	}
	if got.AverageProcessingTime != got.ProcessingTime/8 {
		t.Errorf("relay: average %s is not processing %s over 8", got.AverageProcessingTime, got.ProcessingTime)
	}
	north := got.Peers["north"]
	if north.Addr != 2 || north.Exchanges != 4 || north.Failed != 2 || north.AirtimeMS != 4*123 || north.Retries != 4 ||
		north.LastRSSI != -80 || north.LastSNR != 7.5 || north.Queued != 0 {
		t.Errorf("north: %+v, want 4 exchanges, 2 failed, 492 ms on air, 4 retries, last -80 dBm 7.5 dB", north)
	}
	if south := got.Peers["south"]; south.Exchanges != 0 || south.Addr != 3 {
		t.Errorf("south: %+v, want no exchanges", south)
	}
	if got.QueueDepth != 16 || got.Queued != 0 {
		t.Errorf("queue %d of %d, want 0 of 16", got.Queued, got.QueueDepth)
	}
}

func serviceStats(t *testing.T, nc *nats.Conn) micro.Stats {
	t.Helper()
	resp, err := nc.Request("$SRV.STATS.nexfield-relay", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st micro.Stats
	if err := json.Unmarshal(resp.Data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestInfoShowsVersionAndSubjects(t *testing.T) {
	_, nc := startRelay(t, &directLink{handler: sentimentHandler}, &Opts{Version: "1.4.0-3.g1a2b3c4", Subject: "site.a"})
	resp, err := nc.Request("$SRV.INFO.nexfield-relay", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(resp.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "1.4.0-3.g1a2b3c4" {
		t.Errorf("version %q, want the one in Opts", info.Version)
	}
	if len(info.Endpoints) != 1 || info.Endpoints[0].Subject != "site.a.>" ||
		!strings.Contains(info.Endpoints[0].Metadata["subjects"], "site.a.send.PEER") {
		t.Errorf("endpoints %+v, want one on site.a.> naming its subjects", info.Endpoints)
	}
}

// TestPingOnlyOnceServing asks for the service as fast as it can while a
// relay starts, and sends a request the moment $SRV.PING is answered: the
// request must find the relay (no "no responders"). A service that
// subscribes its endpoints after its discovery subjects fails this now and
// then; the test starts the relay many times to catch it.
func TestPingOnlyOnceServing(t *testing.T) {
	s := natstest.RunServer(t)
	client := natstest.Connect(t, s)
	for i := range 30 {
		r, err := New(natstest.Connect(t, s), &directLink{handler: sentimentHandler}, nil)
		if err != nil {
			t.Fatal(err)
		}
		inbox := client.NewRespInbox()
		sub, err := client.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		for {
			if err := client.PublishRequest("$SRV.PING.nexfield-relay", inbox, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextMsg(200 * time.Microsecond); err == nil {
				break
			}
		}
		resp, err := client.Request("field.sentiment", []byte("great"), 5*time.Second)
		if err != nil {
			t.Fatalf("start %d: request right after the first PING answer: %v", i, err)
		}
		if c := resp.Header.Get(micro.ErrorCodeHeader); c != "" {
			t.Fatalf("start %d: error %s", i, c)
		}
		waitReady(t, r)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		_ = sub.Unsubscribe()
	}
}

func TestRunOnce(t *testing.T) {
	r, _ := startRelay(t, &directLink{handler: sentimentHandler}, nil)
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: got %v, want already running", err)
	}
}

// TestReadyNeverWhenRunFails: a relay whose connection is closed cannot
// serve; Run says why and Ready stays open.
func TestReadyNeverWhenRunFails(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	r, err := New(nc, &directLink{handler: sentimentHandler}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := r.Run(context.Background()); err == nil || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("run on a closed connection: got %v, want ErrConnectionClosed", err)
	}
	select {
	case <-r.Ready():
		t.Error("ready although Run failed")
	default:
	}
}

// lateRequest is a request micro hands the relay's handler after the relay
// has stopped (one the server routed before it took the unsubscription in):
// it answers like micro's own, on a real connection.
type lateRequest struct {
	nc  *nats.Conn
	msg *nats.Msg
}

func (q lateRequest) Respond(b []byte, _ ...micro.RespondOpt) error {
	return q.nc.PublishMsg(&nats.Msg{Subject: q.msg.Reply, Data: b})
}
func (q lateRequest) RespondJSON(v any, _ ...micro.RespondOpt) error {
	b, _ := json.Marshal(v)
	return q.Respond(b)
}
func (q lateRequest) Error(code, desc string, b []byte, _ ...micro.RespondOpt) error {
	return q.nc.PublishMsg(&nats.Msg{Subject: q.msg.Reply, Data: b,
		Header: nats.Header{micro.ErrorHeader: {desc}, micro.ErrorCodeHeader: {code}}})
}
func (q lateRequest) Data() []byte           { return q.msg.Data }
func (q lateRequest) Headers() micro.Headers { return micro.Headers(q.msg.Header) }
func (q lateRequest) Subject() string        { return q.msg.Subject }
func (q lateRequest) Reply() string          { return q.msg.Reply }

// TestLateRequestNeverWaitsForAGoneWorker: a request that reaches the
// handler after Run has drained its queue is refused with 503 at once when
// the relay was alone, and follows the queue to the other instance when it
// handed its queue over; it never waits for a worker that has gone.
func TestLateRequestNeverWaitsForAGoneWorker(t *testing.T) {
	s := natstest.RunServer(t)
	client := natstest.Connect(t, s)
	late := func(t *testing.T, r *Relay) *nats.Msg {
		t.Helper()
		inbox := client.NewRespInbox()
		sub, err := client.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		// The answer may come from another connection: the server must
		// have the subscription first.
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
		r.handle(lateRequest{nc: client, msg: &nats.Msg{Subject: "field.sentiment", Reply: inbox, Data: []byte("great")}})
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("late request: no answer: %v", err)
		}
		return m
	}

	t.Run("alone", func(t *testing.T) {
		r, err := New(natstest.Connect(t, s), &directLink{handler: sentimentHandler}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		waitReady(t, r)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		m := late(t, r)
		if c := m.Header.Get(micro.ErrorCodeHeader); c != "503" || !strings.Contains(m.Header.Get(micro.ErrorHeader), "shutting down") {
			t.Errorf("got %q %q, want 503 shutting down", c, m.Header.Get(micro.ErrorHeader))
		}
	})

	t.Run("handed over", func(t *testing.T) {
		slow := &directLink{handler: sentimentHandler, gate: make(chan struct{})}
		a, err := New(natstest.Connect(t, s), slow, &Opts{Address: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(natstest.Connect(t, s), &directLink{handler: sentimentHandler}, &Opts{Address: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		waitReady(t, a)
		answers := make(chan error, 2)
		for range 2 { // one on the air, one queued to hand over
			go func() {
				_, err := client.Request("field.sentiment", []byte("great"), 10*time.Second)
				answers <- err
			}()
		}
		eventually(t, 5*time.Second, "one queued", func() bool { return a.queued() == 1 })
		runRelay(t, b)
		cancel()
		eventually(t, 5*time.Second, "queue handed over", func() bool { return a.Stats().HandedOff == 1 })
		m := late(t, a)
		var rep Reply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Via != 4 || m.Header.Get(micro.ErrorCodeHeader) != "" {
			t.Errorf("late request answered %s (%s), want an answer from the other instance (via 4)", m.Data, m.Header.Get(micro.ErrorCodeHeader))
		}
		close(slow.gate)
		for range 2 {
			if err := <-answers; err != nil {
				t.Errorf("caller: %v", err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
