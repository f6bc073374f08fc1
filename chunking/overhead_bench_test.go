package chunking

import (
	"context"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// BenchmarkRequestOverhead times single-frame requests (101 bytes, answered
// with 8) between two Links over radio/sim's real-time air at SF7/BW125 and
// reports latency minus the exchange's airtime. "isolated" requests start
// after the previous exchange has settled (its RACK sent); "back-to-back"
// ones start as soon as the previous reply is in, which is the baseline's
// worst case: run with -benchtime 20x.
func BenchmarkRequestOverhead(b *testing.B) {
	for _, mode := range []string{"isolated", "back-to-back"} {
		b.Run(mode, func(b *testing.B) {
			air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}})
			if err != nil {
				b.Fatal(err)
			}
			newLink := func(name string, addr Addr) *Link {
				r, err := air.NewRadio(&sim.RadioOpts{Name: name})
				if err != nil {
					b.Fatal(err)
				}
				l, err := New(r, addr, testPSK, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { l.Close(); r.Close() })
				return l
			}
			l1, l2 := newLink("a", 1), newLink("b", 2)
			ctx := b.Context()
			go l2.Serve(ctx, func(context.Context, Addr, []byte) ([]byte, error) { return []byte("12345678"), nil })
			req := make([]byte, 101)
			var overhead, airtime time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if mode == "isolated" {
					b.StopTimer()
					time.Sleep(300 * time.Millisecond) // RackDelay, turnaround and the RACK's airtime
					b.StartTimer()
				}
				start := time.Now()
				_, st, err := l1.Request(ctx, 2, req)
				lat := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				overhead += lat - st.Airtime
				airtime += st.Airtime
			}
			b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead_ms/op")
			b.ReportMetric(float64(airtime.Microseconds())/1000/float64(b.N), "airtime_ms/op")
		})
	}
}
