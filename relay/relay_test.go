package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/internal/natstest"
)

// directLink delivers requests to an in-process handler with no air between:
// the relay's own behaviour (queueing, codes, replies) is what is under test
// here; the radio path is covered end to end elsewhere.
type directLink struct {
	mu      sync.Mutex
	order   []string // peers in the order exchanges started
	gate    chan struct{}
	delay   time.Duration // each exchange's time on the air
	handler func(to Peer, req []byte) ([]byte, error)
}

func (d *directLink) Exchange(ctx context.Context, to Peer, payload []byte) (Result, error) {
	d.mu.Lock()
	d.order = append(d.order, to.Name)
	d.mu.Unlock()
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	time.Sleep(d.delay)
	reply, err := d.handler(to, payload)
	return Result{Reply: reply, RSSI: -80, SNR: 7.5, Airtime: 123 * time.Millisecond, Frames: 2, Retries: 1}, err
}

func sentimentHandler(to Peer, req []byte) ([]byte, error) {
	kind, body, err := exchange.DecodeRequest(req)
	if err != nil {
		return exchange.EncodeError(chunking.CodeRefused, err.Error()), nil
	}
	if kind == exchange.KindRaw {
		return exchange.EncodeReply(append([]byte(to.Name+":"), body...)), nil
	}
	label := "neutral"
	if strings.Contains(string(body), "great") {
		label = "positive"
	}
	s, _ := exchange.EncodeSentiment(exchange.Sentiment{Label: label, Scores: map[string]float64{label: 1}})
	return exchange.EncodeReply(s), nil
}

// startRelay runs a relay on a fresh server until the test ends and
// returns it, once it serves, with a client connection.
func startRelay(t *testing.T, link Exchanger, opts *Opts) (*Relay, *nats.Conn) {
	t.Helper()
	s := natstest.RunServer(t)
	r, err := New(natstest.Connect(t, s), link, opts)
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	return r, natstest.Connect(t, s)
}

func TestSentimentAndSend(t *testing.T) {
	link := &directLink{handler: sentimentHandler}
	_, nc := startRelay(t, link, &Opts{Peers: []Peer{{"north", 2}, {"south", 3}}})
	for _, tc := range []struct {
		name, subject, header, body string
		wantPeer, wantLabel         string
		wantData                    string
	}{
		{"default peer", "field.sentiment", "", "Rethink Con is great", "north", "positive", ""},
		{"peer by header", "field.sentiment", "south", "status ok", "south", "neutral", ""},
		{"peer by address", "field.sentiment", "3", "great", "south", "positive", ""},
		{"peer by subject", "field.sentiment.south", "", "great", "south", "positive", ""},
		{"raw send", "field.send.north", "", "ping", "north", "", "north:ping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := nats.NewMsg(tc.subject)
			m.Data = []byte(tc.body)
			if tc.header != "" {
				m.Header.Set(PeerHeader, tc.header)
			}
			resp, err := nc.RequestMsg(m, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if c := resp.Header.Get(micro.ErrorCodeHeader); c != "" {
				t.Fatalf("error %s: %s", c, resp.Header.Get(micro.ErrorHeader))
			}
			var got Reply
			if err := json.Unmarshal(resp.Data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Peer != tc.wantPeer || got.Label != tc.wantLabel || string(got.Data) != tc.wantData {
				t.Errorf("got peer=%s label=%s data=%q, want %s %s %q", got.Peer, got.Label, got.Data, tc.wantPeer, tc.wantLabel, tc.wantData)
			}
			if got.Frames != 2 || got.AirtimeMS != 123 || got.RSSI != -80 {
				t.Errorf("link stats not carried: %+v", got)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	link := &directLink{handler: func(to Peer, req []byte) ([]byte, error) {
		_, body, _ := exchange.DecodeRequest(req)
		switch string(body) {
		case "unreachable":
			return nil, fmt.Errorf("no ack after 16 tries: %w", ErrPeerUnreachable)
		case "radio":
			return nil, fmt.Errorf("spi: %w", ErrRadio)
		case "remote":
			return exchange.EncodeError(chunking.CodeHandler, "model not loaded"), nil
		case "busy":
			return exchange.EncodeError(chunking.CodeBusy, "classifier queue full"), nil
		case "refused":
			return exchange.EncodeError(chunking.CodeRefused, "raw requests are disabled on this peer"), nil
		case "link busy":
			return nil, fmt.Errorf("%w: request backlog full", ErrPeerBusy)
		case "malformed":
			return []byte{0x7f}, nil
		}
		return sentimentHandler(to, req)
	}}
	_, nc := startRelay(t, link, &Opts{MaxMessage: 100})
	for _, tc := range []struct {
		name, subject, body, wantCode, wantText string
	}{
		{"empty", "field.sentiment", "", "400", "empty"},
		{"unknown peer", "field.sentiment.nowhere", "x", "404", "unknown peer"},
		{"too large", "field.sentiment", strings.Repeat("x", 101), "413", "at most 100"},
		{"unreachable", "field.sentiment", "unreachable", "504", "unreachable"},
		{"radio fault", "field.sentiment", "radio", "502", "radio fault"},
		{"peer error", "field.sentiment", "remote", "502", "model not loaded"},
		{"peer busy", "field.sentiment", "busy", "503", "classifier queue full"},
		{"peer refuses", "field.sentiment", "refused", "422", "disabled"},
		{"link busy", "field.sentiment", "link busy", "503", "backlog"},
		{"malformed reply", "field.sentiment", "malformed", "502", "malformed"},
		{"no such endpoint", "field.classify", "x", "404", "no such endpoint field.classify"},
		{"too many tokens", "field.send.a.b", "x", "404", "no such endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := nc.Request(tc.subject, []byte(tc.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			code, desc := resp.Header.Get(micro.ErrorCodeHeader), resp.Header.Get(micro.ErrorHeader)
			if code != tc.wantCode || !strings.Contains(desc, tc.wantText) {
				t.Errorf("got %s %q, want %s containing %q", code, desc, tc.wantCode, tc.wantText)
			}
		})
	}
}

// TestQueueFairAndBounded holds the radio busy, fills the queue with a burst
// for one peer and a single request for another, and checks that the other
// peer is served second, not last, and that the overflow is refused at once.
func TestQueueFairAndBounded(t *testing.T) {
	link := &directLink{handler: sentimentHandler, gate: make(chan struct{})}
	r, nc := startRelay(t, link, &Opts{Peers: []Peer{{"a", 2}, {"b", 3}}, QueueDepth: 4})

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 10)
	send := func(peer string) {
		resp, err := nc.Request("field.sentiment."+peer, []byte("hi"), 10*time.Second)
		if err != nil {
			results <- result{err: err}
			return
		}
		results <- result{code: resp.Header.Get(micro.ErrorCodeHeader)}
	}
	go send("a") // occupies the radio
	eventually(t, 5*time.Second, "first exchange started", func() bool {
		link.mu.Lock()
		defer link.mu.Unlock()
		return len(link.order) == 1
	})
	for i := 0; i < 3; i++ {
		go send("a")
	}
	eventually(t, 5*time.Second, "three a-requests queued", func() bool { return r.queued() == 3 })
	go send("b")
	eventually(t, 5*time.Second, "b queued behind them", func() bool { return r.queued() == 4 })
	// The queue (depth 4) now holds a,a,a,b; one more must be refused.
	resp, err := nc.Request("field.sentiment.a", []byte("hi"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Header.Get(micro.ErrorCodeHeader); c != "503" {
		t.Fatalf("overflow: got code %q, want 503", c)
	}
	close(link.gate)
	for i := 0; i < 5; i++ {
		r := <-results
		if r.err != nil || r.code != "" {
			t.Fatalf("queued request failed: %+v", r)
		}
	}
	link.mu.Lock()
	defer link.mu.Unlock()
	if got := strings.Join(link.order, ","); got != "a,b,a,a,a" {
		t.Errorf("service order %s, want a,b,a,a,a (b served right after the running one, not after the burst)", got)
	}
}

func TestNewValidates(t *testing.T) {
	link := &directLink{handler: sentimentHandler}
	for _, tc := range []struct {
		name string
		opts Opts
	}{
		{"bad name", Opts{Peers: []Peer{{"a b", 1}}}},
		{"dup name", Opts{Peers: []Peer{{"a", 1}, {"a", 2}}}},
		{"dup addr", Opts{Peers: []Peer{{"a", 1}, {"b", 1}}}},
		{"bad default", Opts{Peers: []Peer{{"a", 1}}, DefaultPeer: "z"}},
		{"bad version", Opts{Version: "454a088"}},
		{"wildcard subject", Opts{Subject: "field.*"}},
		{"empty token", Opts{Subject: "field..x"}},
		{"bad service name", Opts{Name: "relay one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(&nats.Conn{}, link, &tc.opts); !errors.Is(err, ErrInvalidOpts) {
				t.Errorf("got %v, want ErrInvalidOpts", err)
			}
		})
	}
}

// TestShutdownFinishesQueued stops the relay while one exchange is on the air
// and another waits: both callers still get answers, and the service stops
// taking new requests (NATS then routes them to another relay instance).
func TestShutdownFinishesQueued(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	link := &directLink{handler: sentimentHandler, gate: make(chan struct{})}
	r, err := New(nc, link, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	client := natstest.Connect(t, s)
	deadline := time.Now().Add(5 * time.Second)
	waitReady(t, r)
	answers := make(chan string, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, err := client.Request("field.sentiment", []byte("great"), 10*time.Second)
			if err != nil {
				answers <- err.Error()
				return
			}
			answers <- resp.Header.Get(micro.ErrorCodeHeader) + string(resp.Data)
		}()
	}
	eventually(t, 5*time.Second, "one request queued", func() bool { return r.queued() == 1 })
	cancel()
	// New requests find no responder once the service has stopped.
	for {
		_, err := client.Request("field.sentiment", []byte("late"), 100*time.Millisecond)
		if errors.Is(err, nats.ErrNoResponders) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service still answering after shutdown: %v", err)
		}
	}
	close(link.gate)
	for i := 0; i < 2; i++ {
		if a := <-answers; !strings.Contains(a, `"label":"positive"`) {
			t.Errorf("answer %d: %s", i, a)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownHandsOffToAnotherInstance stops one relay while requests wait
// in its queue and another instance of the service is up: the waiting
// requests are answered by the other instance, the one on the air by the
// stopping relay, and no caller fails.
func TestShutdownHandsOffToAnotherInstance(t *testing.T) {
	s := natstest.RunServer(t)
	slow := &directLink{handler: sentimentHandler, gate: make(chan struct{})}
	fast := &directLink{handler: sentimentHandler}
	start := func(link Exchanger, addr uint8) (context.CancelFunc, chan error, *Relay) {
		r, err := New(natstest.Connect(t, s), link, &Opts{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return cancel, done, r
	}
	cancelA, doneA, a := start(slow, 1)
	client := natstest.Connect(t, s)
	waitReady(t, a)
	type answer struct {
		via  int
		code string
	}
	answers := make(chan answer, 4)
	for i := 0; i < 4; i++ {
		go func() {
			resp, err := client.Request("field.sentiment", []byte("great"), 10*time.Second)
			if err != nil {
				answers <- answer{code: err.Error()}
				return
			}
			var rep Reply
			_ = json.Unmarshal(resp.Data, &rep)
			answers <- answer{via: rep.Via, code: resp.Header.Get(micro.ErrorCodeHeader)}
		}()
	}
	eventually(t, 5*time.Second, "one on the air, three waiting", func() bool { return a.queued() == 3 })
	cancelB, doneB, b := start(fast, 4)
	defer func() { cancelB(); <-doneB }()
	waitReady(t, b)
	cancelA()
	// A hands its queue over before its exchange on the air ends.
	eventually(t, 5*time.Second, "queued requests handed over", func() bool { return a.Stats().HandedOff == 3 && a.queued() == 0 })
	close(slow.gate)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	byVia := map[int]int{}
	for i := 0; i < 4; i++ {
		a := <-answers
		if a.code != "" {
			t.Fatalf("a caller failed: %s", a.code)
		}
		byVia[a.via]++
	}
	if byVia[1] != 1 || byVia[4] != 3 {
		t.Errorf("answered by relay address %v, want the one on the air by 1 and three handed to 4", byVia)
	}
}
