package inference

import (
	"bytes"
	"context"
	"testing"
)

func TestBenchReport(t *testing.T) {
	r, err := Bench(context.Background(), &BenchOpts{Rounds: 1})
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
}
