package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nexfield/nexfield/inference/train"
)

// Accuracy is binary accuracy on the held-out UCI sentences, overall and
// per source.
type Accuracy struct {
	All      float64
	BySource map[string]float64
	// Neutral is the share the method labels neutral in 3-way mode (every
	// UCI sentence is polar, so this is a cost, not a skill).
	Neutral float64
}

// Report is what `nexfield bench inference` prints.
type Report struct {
	HeldOut             int // UCI sentences of fold 0
	Model, AFINN, VADER Accuracy
	P50, P99            time.Duration // Classify via onnx-go, incl. featurisation
	GoP50, GoP99        time.Duration // Classify via the plain-Go scorer
	ForwardONNX         time.Duration // median forward pass only, onnx-go
	ForwardGo           time.Duration // median forward pass only, plain Go
	Featurize           time.Duration // median featurisation
	ModelBytes, Dim     int
	LoadTime            time.Duration
	MaxDiff             float64 // max |onnx-go - plain Go| over all held-out scores

	// Rated is the number of held-out rated sentences (VADER ground truth,
	// fold 0); the ThreeWay maps hold each method's 3-way result on them by
	// source and overall (key "all").
	Rated                                       int
	ModelThreeWay, VADERThreeWay, AFINNThreeWay map[string]train.ThreeWay
}

// WriteTo prints the report.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1e3) }
	fmt.Fprintf(&b, "held-out UCI sentences (fold 0, never used in training): %d\n", r.HeldOut)
	fmt.Fprintf(&b, "binary accuracy (positive vs negative)     all     amazon  imdb    yelp    3-way neutral share\n")
	for _, row := range []struct {
		name string
		a    Accuracy
	}{{"model (onnx-go)", r.Model}, {"AFINN-165 (sentiment@5 rules, score>=0)", r.AFINN}, {"VADER (compound>=0)", r.VADER}} {
		srcs := make([]string, 0, 3)
		for s := range row.a.BySource {
			srcs = append(srcs, s)
		}
		sort.Strings(srcs)
		fmt.Fprintf(&b, "  %-40s %.4f", row.name, row.a.All)
		for _, s := range srcs {
			fmt.Fprintf(&b, "  %.4f", row.a.BySource[s])
		}
		fmt.Fprintf(&b, "  %.1f%%\n", 100*row.a.Neutral)
	}
	if r.Rated > 0 {
		fmt.Fprintf(&b, "held-out rated sentences (VADER ground truth, fold 0): %d; positive rating >= %g, negative <= -%g, neutral |rating| < %g\n",
			r.Rated, train.PolarRating, train.PolarRating, train.NeutralRating)
		fmt.Fprintf(&b, "3-way (recall per true class)                        n     acc     macro   neg     neu     pos\n")
		for _, row := range []struct {
			name string
			t    map[string]train.ThreeWay
		}{{"model (onnx-go)", r.ModelThreeWay}, {"VADER (compound >=0.05 / <=-0.05)", r.VADERThreeWay}, {"AFINN-165 (sign of score)", r.AFINNThreeWay}} {
			for _, k := range train.ThreeWayKeys(row.t) {
				t := row.t[k]
				name := ""
				if k == "all" {
					name = row.name
				}
				fmt.Fprintf(&b, "  %-40s %-9s %-5d %.4f  %.4f  %.4f  %.4f  %.4f\n", name, k, t.N, t.Accuracy, t.Macro, t.Recall[0], t.Recall[1], t.Recall[2])
			}
		}
	}
	fmt.Fprintf(&b, "latency per message incl. featurisation: onnx-go p50 %s p99 %s; plain Go p50 %s p99 %s\n",
		us(r.P50), us(r.P99), us(r.GoP50), us(r.GoP99))
	ratio := float64(r.ForwardONNX) / float64(max(r.ForwardGo, 1))
	fmt.Fprintf(&b, "forward pass only (median): onnx-go %s, plain Go %s, ratio %.0fx; featurisation %s\n",
		us(r.ForwardONNX), us(r.ForwardGo), ratio, us(r.Featurize))
	fmt.Fprintf(&b, "onnx-go vs plain Go: max score difference %.2g (all held-out sentences)\n", r.MaxDiff)
	fmt.Fprintf(&b, "model: %d bytes, input width %d, load %.2f ms (validate + one onnx-go instance)\n",
		r.ModelBytes, r.Dim, float64(r.LoadTime.Microseconds())/1e3)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
