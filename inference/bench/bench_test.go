package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/nexfield/nexfield/inference/train"
)

func TestBenchReport(t *testing.T) {
	r, err := Run(context.Background(), &Opts{Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTo(&b)
	t.Log("\n" + b.String())
	if r.MaxDiff > 1e-5 {
		t.Errorf("onnx-go vs plain Go differ by %g", r.MaxDiff)
	}
	// The baselines are deterministic functions of the shipped data; their
	// accuracy must be far above chance and below the trained model's.
	for name, a := range map[string]Accuracy{"afinn": r.AFINN, "vader": r.VADER} {
		if a.All < 0.6 || a.All > 0.85 {
			t.Errorf("%s accuracy %.3f outside the plausible 0.6..0.85", name, a.All)
		}
	}
	// 3-way on the held-out rated sentences: every method must beat
	// chance (1/3 macro recall), and the model must label some neutral
	// sentences neutral, since that is what its calibration is for.
	if r.Rated < 2000 {
		t.Errorf("%d held-out rated sentences, want the whole fold 0", r.Rated)
	}
	for name, tw := range map[string]map[string]train.ThreeWay{"model": r.ModelThreeWay, "afinn": r.AFINNThreeWay, "vader": r.VADERThreeWay} {
		if m := tw["all"].Macro; m < 0.4 || m > 0.9 {
			t.Errorf("%s 3-way macro recall %.3f outside the plausible 0.4..0.9", name, m)
		}
	}
	if n := r.ModelThreeWay["all"].Recall[1]; n < 0.3 {
		t.Errorf("model neutral recall %.3f, want at least 0.3", n)
	}
}
