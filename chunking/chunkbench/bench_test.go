package chunkbench

import (
	"fmt"
	"testing"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/linkbench"
)

// BenchmarkTransfer runs the linkbench harness for the nexfield link and,
// in the same run, the SCHC (RFC 9011) baseline and nexfield with
// ChaCha20-Poly1305, and reports goodput ratios and their ratio to SCHC.
func BenchmarkTransfer(b *testing.B) {
	for _, size := range []int{2048, 16384} {
		for _, loss := range []float64{0, 0.1, 0.3} {
			b.Run(fmt.Sprintf("size=%d/loss=%.2f", size, loss), func(b *testing.B) {
				b.ReportAllocs()
				cfg := linkbench.Config{Channel: linkbench.IID(loss).Channel, Seed: 1}
				var ours, chacha, schc linkbench.Summary
				for b.Loop() {
					ours = linkbench.Summarize(Scheme{}, cfg, size, 20)
					chacha = linkbench.Summarize(Scheme{Opts: chunking.EngineOpts{Cipher: chunking.ChaCha20Poly1305}}, cfg, size, 20)
					schc = linkbench.Summarize(linkbench.SCHC{}, cfg, size, 20)
				}
				b.ReportMetric(ours.GoodputRatio, "goodput_ratio")
				b.ReportMetric(chacha.GoodputRatio, "chacha_goodput_ratio")
				b.ReportMetric(ours.GoodputRatio/schc.GoodputRatio, "vs_schc")
				b.ReportMetric(float64(ours.Failures), "failures")
			})
		}
	}
}
