package relay

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
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

	classify := peer.ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
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

	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	r, err := New(nc, OverLink(relayLink), &Opts{Peers: []Peer{{"north", 2}, {"ghost", 9}}, Timeout: 6 * time.Second})
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
