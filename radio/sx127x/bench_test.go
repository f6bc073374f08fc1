package sx127x_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sx127x"
	"github.com/nexfield/nexfield/radio/sx127x/sx127xsim"
)

// BenchmarkSendReceive sends one frame from one driver to another through
// two emulated chips on a lossless link, in real time. overhead_ms/op is the
// wall time minus the frame's time on air: the SPI transactions (emulated,
// so nearly free), the DIO0 edge wake-ups and the scheduling of both ends.
func BenchmarkSendReceive(b *testing.B) {
	for _, n := range []int{16, 200} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			la, lb := newLink()
			ca := sx127xsim.New(&sx127xsim.Opts{Air: la})
			cb := sx127xsim.New(&sx127xsim.Opts{Air: lb})
			defer ca.Close()
			defer cb.Close()
			o := &sx127x.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 500000}}
			da, err := sx127x.New(ca, ca.Reset(), ca.DIO0(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer da.Halt()
			db, err := sx127x.New(cb, cb.Reset(), cb.DIO0(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Halt()
			payload := make([]byte, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := da.Send(ctx, payload); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Receive(ctx); err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per-da.Airtime(n))/1e6, "overhead_ms/op")
			b.ReportMetric(float64(da.Airtime(n))/1e6, "airtime_ms/op")
		})
	}
}
