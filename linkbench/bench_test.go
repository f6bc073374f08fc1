package linkbench

import (
	"fmt"
	"testing"

	"github.com/nexfield/nexfield/radio/sim"
)

// BenchmarkTransfer reports each scheme's goodput ratio (fraction of the PHY
// limit) per message size and i.i.d. loss; ns/op is the simulator's cost of
// one transfer.
func BenchmarkTransfer(b *testing.B) {
	for _, s := range Schemes() {
		for _, size := range []int{2048, 16384} {
			for _, loss := range []float64{0, 0.1, 0.3} {
				b.Run(fmt.Sprintf("scheme=%s/size=%d/loss=%.2f", s.Name(), size, loss), func(b *testing.B) {
					b.ReportAllocs()
					var delivered int64
					var airtime float64
					cfg := Config{Channel: sim.Channel{Loss: loss}, Seed: 1}
					i := 0
					for b.Loop() {
						cfg.Seed = runSeed(1, i)
						i++
						r := Transfer(s, cfg, message(size, cfg.Seed))
						delivered += int64(r.Delivered)
						airtime += r.Airtime.Seconds()
					}
					if airtime > 0 {
						b.ReportMetric(float64(delivered)/airtime/PHYLimit(cfg.Params), "goodput_ratio")
						b.ReportMetric(airtime/float64(i), "airtime_s/op")
					}
				})
			}
		}
	}
}
