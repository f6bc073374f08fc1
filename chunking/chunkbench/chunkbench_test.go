package chunkbench

import (
	"testing"

	"github.com/nexfield/nexfield/linkbench"
	"github.com/nexfield/nexfield/radio/lora"
)

func TestGoodput(t *testing.T) {
	for _, tc := range []struct {
		size int
		loss float64
		runs int
	}{{16384, 0, 5}, {16384, 0.1, 50}, {16384, 0.3, 50}, {2048, 0, 5}, {2048, 0.1, 50}, {2048, 0.3, 50}} {
		cfg := linkbench.Config{Channel: linkbench.IID(tc.loss).Channel, Seed: 7}
		for _, s := range []linkbench.Scheme{Scheme{}, linkbench.SCHC{}} {
			sum := linkbench.Summarize(s, cfg, tc.size, tc.runs)
			t.Logf("%s size=%d loss=%.2f goodput=%.4f failures=%d frames/run=%.1f", s.Name(), tc.size, tc.loss, sum.GoodputRatio, sum.Failures, float64(sum.Frames)/float64(sum.Runs))
		}
	}
	r := linkbench.Exchange(Scheme{}, linkbench.Config{Params: lora.Params{}}, make([]byte, 100), make([]byte, 50))
	t.Logf("exchange 100/50: ok=%v airtime=%v frames=%d err=%v", r.OK, r.Airtime, r.Frames, r.Err)
}
