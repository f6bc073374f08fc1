package chunkbench

import (
	"testing"

	"github.com/nexfield/nexfield/linkbench"
)

func TestDebug30(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		cfg := linkbench.Config{Channel: linkbench.IID(0.3).Channel, Seed: seed}
		sum := linkbench.Summarize(Scheme{}, cfg, 16384, 300)
		t.Logf("seed %d goodput=%.4f failures=%d frames/run=%.1f elapsed=%v", seed, sum.GoodputRatio, sum.Failures, float64(sum.Frames)/float64(sum.Runs), sum.Elapsed/300)
	}
}
