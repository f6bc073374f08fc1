package relay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/internal/natstest"
	"github.com/nexfield/nexfield/peer"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// TestOverSimulatedAir runs NATS requests through the relay, the chunking
// link and the simulated channel (with frame loss) to a peer handler and
// back. BW500 keeps airtime, and so the test, short.
func TestOverSimulatedAir(t *testing.T) {
	air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 500000},
		Channel: sim.Channel{Loss: 0.1}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	relayLink, peerLink := airLink(t, air, "relay", 1), airLink(t, air, "north", 2)
	classifyOnly := airLink(t, air, "south", 3)

	classify := peer.ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
		if text == "boom" {
			return exchange.Sentiment{}, errors.New("model not loaded")
		}
		if strings.Contains(text, "great") {
			return exchange.Sentiment{Label: "positive", Scores: map[string]float64{"positive": 0.9, "neutral": 0.05, "negative": 0.05}}, nil
		}
		return exchange.Sentiment{Label: "neutral", Scores: map[string]float64{"neutral": 1}}, nil
	})
	h, err := peer.New(classify, &peer.Opts{Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peerLink.Serve(ctx, func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
		return h.Handle(ctx, req)
	})
	noEcho, err := peer.New(classify, nil)
	if err != nil {
		t.Fatal(err)
	}
	go classifyOnly.Serve(ctx, func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
		return noEcho.Handle(ctx, req)
	})

	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	r, err := New(nc, OverLink(relayLink), &Opts{Peers: []Peer{{"north", 2}, {"south", 3}, {"ghost", 9}}, Timeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	client := natstest.Connect(t, s)
	waitReady(t, r)

	resp, err := client.Request("field.sentiment.north", []byte("Rethink Con is great"), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got Reply
	if err := json.Unmarshal(resp.Data, &got); err != nil || got.Label != "positive" || got.Frames < 2 || got.AirtimeMS <= 0 {
		t.Fatalf("sentiment: %s (%v)", resp.Data, err)
	}

	long := strings.Repeat("field report line with some detail; ", 60) // ~2 KiB: many frames
	resp, err = client.Request("field.send.north", []byte(long), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(resp.Data, &got); err != nil || string(got.Data) != long {
		t.Fatalf("echo of %d bytes came back as %d bytes (%v; %s)", len(long), len(got.Data), err, resp.Header.Get(micro.ErrorHeader))
	}
	if got.Frames < 10 {
		t.Errorf("a 2 KiB echo took %d frames, want at least 10", got.Frames)
	}

	// The peer's own failures, by class.
	for _, tc := range []struct {
		subject, body, wantCode string
	}{
		{"field.sentiment.north", "boom", "502"}, // its classifier failed
		{"field.send.south", "ping", "422"},      // it does not echo
	} {
		resp, err := client.Request(tc.subject, []byte(tc.body), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Header.Get(micro.ErrorCodeHeader); code != tc.wantCode {
			t.Errorf("%s %q: got code %q (%s), want %s", tc.subject, tc.body, code, resp.Header.Get(micro.ErrorHeader), tc.wantCode)
		}
	}

	// A peer nobody answers for: the relay gives up and says so.
	resp, err = client.Request("field.sentiment.ghost", []byte("anyone?"), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "504" {
		t.Errorf("unreachable peer: got code %q (%s), want 504", code, resp.Header.Get(micro.ErrorHeader))
	}
	cancel()
	<-done
}

// TestErrorClassesOverSimulatedAir: each way a peer fails an exchange,
// found by its handler or by its link, reaches the relay over the
// simulated air as its class, which the relay's error table turns into
// its code.
func TestErrorClassesOverSimulatedAir(t *testing.T) {
	classes := []error{ErrPeerUnreachable, ErrPeerBusy, ErrRefused, ErrHandler}
	for _, tc := range []struct {
		name     string
		to       Peer
		kind     exchange.Kind
		body     []byte
		want     error
		wantCode string
	}{
		{"handler failure", Peer{"north", 2}, exchange.KindSentiment, []byte("boom"), ErrHandler, "502"},
		{"refused", Peer{"north", 2}, exchange.KindRaw, []byte("ping"), ErrRefused, "422"},
		{"link handler failure", Peer{"south", 3}, exchange.KindSentiment, []byte("hi"), ErrHandler, "502"},
		{"busy", Peer{"east", 4}, exchange.KindSentiment, []byte("second"), ErrPeerBusy, "503"},
		{"too large", Peer{"west", 5}, exchange.KindRaw, make([]byte, 2000), ErrRefused, "413"},
		{"unreachable", Peer{"ghost", 9}, exchange.KindSentiment, []byte("anyone?"), ErrPeerUnreachable, "504"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				exch := errorRig(t)
				err := exch(t.Context(), tc.to, tc.kind, tc.body)
				for _, c := range classes {
					if got := errors.Is(err, c); got != (c == tc.want) {
						t.Errorf("errors.Is(%v, %v) = %v, want %v", err, c, got, c == tc.want)
					}
				}
				if code := errorCode(err, codeInternal); code != tc.wantCode {
					t.Errorf("%v: code %s, want %s", err, code, tc.wantCode)
				}
			})
		})
	}
}

// errorRig puts the relay's link on a simulated air with peers that each
// fail in their own way, and returns an exchange through OverLink that
// decodes the peer's reply as the relay does.
func errorRig(t *testing.T) func(ctx context.Context, to Peer, kind exchange.Kind, body []byte) error {
	t.Helper()
	air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 500000}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	relayLink := airLink(t, air, "relay", 1)
	// north: the stock peer handler, which does not echo.
	north := airLink(t, air, "north", 2)
	h, err := peer.New(peer.ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
		if text == "boom" {
			return exchange.Sentiment{}, errors.New("model not loaded")
		}
		return exchange.Sentiment{Label: "neutral", Scores: map[string]float64{"neutral": 1}}, nil
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	go north.Serve(t.Context(), func(ctx context.Context, _ chunking.Addr, req []byte) ([]byte, error) {
		return h.Handle(ctx, req)
	})
	// south: a link whose handler fails outright.
	south := airLink(t, air, "south", 3)
	go south.Serve(t.Context(), func(context.Context, chunking.Addr, []byte) ([]byte, error) {
		return nil, errors.New("out of memory")
	})
	// east: nobody serves it, and its backlog holds one request.
	airLink(t, air, "east", 4, &chunking.Opts{Backlog: 1})
	// west: takes messages of 1 KiB at most.
	west := airLink(t, air, "west", 5, &chunking.Opts{EngineOpts: chunking.EngineOpts{MaxMessage: 1024}})
	go west.Serve(t.Context(), func(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return req, nil })

	link := OverLink(relayLink)
	exch := func(ctx context.Context, to Peer, kind exchange.Kind, body []byte) error {
		res, err := link.Exchange(ctx, to, exchange.EncodeRequest(kind, body))
		if err == nil {
			_, err = exchange.DecodeReply(res.Reply)
		}
		return err
	}
	// east's one backlog slot goes to a request nobody answers.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := exch(ctx, Peer{"east", 4}, exchange.KindSentiment, []byte("first")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first request to east: got %v, want the deadline", err)
	}
	return exch
}
