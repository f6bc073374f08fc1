package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/internal/natstest"
	"github.com/nexfield/nexfield/peer"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// BenchmarkRequestOverhead measures what the software adds to a NATS request
// that crosses the simulated air: end-to-end latency as the caller sees it
// minus the airtime of the frames (which the half-duplex channel serialises).
// The channel is lossless and real-time, SF7/BW125 as in the field. Each
// size runs with the link's default turnaround guard (10 ms, meant for real
// radios and their drivers) and with 1 ms, which is all a simulated radio
// needs: the difference is the guard, the rest is software.
func BenchmarkRequestOverhead(b *testing.B) {
	for _, size := range []int{100, 16 << 10} {
		for _, turnaround := range []time.Duration{10 * time.Millisecond, time.Millisecond} {
			b.Run(fmt.Sprintf("size=%d/turnaround=%s", size, turnaround), func(b *testing.B) {
				benchmarkRequestOverhead(b, size, turnaround)
			})
		}
	}
}

func benchmarkRequestOverhead(b *testing.B, size int, turnaround time.Duration) {
	air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}})
	if err != nil {
		b.Fatal(err)
	}
	o := &chunking.Opts{EngineOpts: chunking.EngineOpts{Turnaround: turnaround}}
	relayLink, peerLink := airLink(b, air, "relay", 1, o), airLink(b, air, "peer", 2, o)
	h, _ := peer.New(peer.ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
		return exchange.Sentiment{Label: "neutral", Scores: map[string]float64{"neutral": 1}}, nil
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peerLink.Serve(ctx, func(ctx context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return h.Handle(ctx, req) })
	s := natstest.RunServer(b)
	r, err := New(natstest.Connect(b, s), OverLink(relayLink), &Opts{Timeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	go r.Run(ctx)
	client := natstest.Connect(b, s)
	waitReady(b, r)
	text := []byte(strings.Repeat("x", size))
	var overhead, airtime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := client.Request("field.sentiment", text, 5*time.Minute)
		lat := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		var rep Reply
		if err := json.Unmarshal(resp.Data, &rep); err != nil || rep.Label == "" {
			b.Fatalf("reply %s: %v", resp.Data, err)
		}
		at := time.Duration(rep.AirtimeMS * float64(time.Millisecond))
		airtime += at
		overhead += lat - at
	}
	b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead_ms/op")
	b.ReportMetric(float64(airtime.Microseconds())/1000/float64(b.N), "airtime_ms/op")
}
