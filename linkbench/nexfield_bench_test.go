package linkbench_test

import (
	"fmt"
	"testing"

	"github.com/nexfield/nexfield/chunking/chunkbench"
	"github.com/nexfield/nexfield/linkbench"
)

// BenchmarkNexfieldVsSCHC runs the nexfield link and the SCHC baselines on
// the same seeds in the same run, and reports nexfield's goodput ratio,
// SCHC's, and nexfield's as a multiple of each SCHC variant's.
func BenchmarkNexfieldVsSCHC(b *testing.B) {
	for _, size := range []int{2048, 16384} {
		for _, ch := range []linkbench.NamedChannel{linkbench.IID(0), linkbench.IID(0.1), linkbench.IID(0.3), linkbench.Bursty(nil)} {
			b.Run(fmt.Sprintf("size=%d/channel=%s/loss=%.2f", size, ch.Name, ch.Loss), func(b *testing.B) {
				b.ReportAllocs()
				var nf, schc, comp linkbench.Summary
				seed := uint64(0)
				for b.Loop() {
					seed++
					cfg := linkbench.Config{Channel: ch.Channel, Seed: seed}
					add(&nf, linkbench.Summarize(chunkbench.Scheme{}, cfg, size, 1))
					add(&schc, linkbench.Summarize(linkbench.SCHC{}, cfg, size, 1))
					add(&comp, linkbench.Summarize(linkbench.SCHC{Compound: true}, cfg, size, 1))
				}
				g := func(s linkbench.Summary) float64 {
					return float64(s.Delivered) / s.Airtime.Seconds() / linkbench.PHYLimit(linkbench.Config{}.Params)
				}
				b.ReportMetric(g(nf), "goodput_ratio")
				b.ReportMetric(g(schc), "schc_goodput_ratio")
				b.ReportMetric(g(nf)/g(schc), "x_schc")
				b.ReportMetric(g(nf)/g(comp), "x_schc_compound")
				b.ReportMetric(float64(nf.Failures), "failures")
			})
		}
	}
}

func add(to *linkbench.Summary, s linkbench.Summary) {
	to.Delivered += s.Delivered
	to.Airtime += s.Airtime
	to.Failures += s.Failures
	to.Runs += s.Runs
}
