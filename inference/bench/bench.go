package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nexfield/nexfield/inference"
	"github.com/nexfield/nexfield/inference/baseline"
	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
	"github.com/nexfield/nexfield/inference/train"
)

// Opts configures Run.
type Opts struct {
	// Model is the model under test; nil is the embedded default.
	Model []byte
	// Rounds is how many times every held-out sentence is timed; 0 means 10.
	Rounds int
}

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

// Run measures the classifier on the held-out fold, next to the AFINN and
// VADER baselines on the same sentences, in one run.
func Run(ctx context.Context, opts *Opts) (*Report, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Rounds <= 0 {
		o.Rounds = 10
	}
	raw := o.Model
	if raw == nil {
		raw = inference.DefaultModel()
	}
	c, err := inference.New(&inference.Opts{Model: raw, Instances: 1})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	g, err := inference.New(&inference.Opts{Model: raw, PlainGo: true})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	// The model again, outside a Classifier, to time its parts alone.
	m, err := onnxmodel.Parse(raw, features.VADER())
	if err != nil {
		return nil, err
	}
	run, err := onnxmodel.NewRunner(m)
	if err != nil {
		return nil, err
	}
	ex, err := train.Examples()
	if err != nil {
		return nil, err
	}
	var held, rated []train.Example
	for _, e := range ex {
		switch {
		case e.Fold != train.HeldOutFold:
		case e.Corpus == train.CorpusUCI:
			held = append(held, e)
		default:
			rated = append(rated, e)
		}
	}
	rep := &Report{HeldOut: len(held), Rated: len(rated), ModelBytes: c.ModelSize(), Dim: m.Dim, LoadTime: c.LoadTime()}
	af := baseline.NewAFINN()
	vd := baseline.NewVADER()
	type tally struct{ ok, n, neutral map[string]int }
	newT := func() tally { return tally{map[string]int{}, map[string]int{}, map[string]int{}} }
	tm, ta, tv := newT(), newT(), newT()
	count := func(t tally, src string, pos bool, label int, neutral bool) {
		for _, k := range []string{src, ""} {
			t.n[k]++
			if pos == (label == 1) {
				t.ok[k]++
			}
			if neutral {
				t.neutral[k]++
			}
		}
	}
	// score classifies a held-out sentence through onnx-go and holds the
	// scores against the plain-Go pass of the same weights.
	score := func(text string) ([3]float64, error) {
		if err := ctx.Err(); err != nil {
			return [3]float64{}, err
		}
		r, err := c.Classify(ctx, text)
		if err != nil {
			return [3]float64{}, err
		}
		rg, err := g.Classify(ctx, text)
		if err != nil {
			return [3]float64{}, err
		}
		p, q := columns(r), columns(rg)
		for j := range p {
			rep.MaxDiff = max(rep.MaxDiff, abs(p[j]-q[j]))
		}
		return p, nil
	}
	for _, e := range held {
		p, err := score(e.Text)
		if err != nil {
			return nil, err
		}
		count(tm, e.Source, p[2] > p[0], e.Label, onnxmodel.Argmax(p) == 1)
		a := af.Score(e.Text)
		count(ta, e.Source, a >= 0, e.Label, a == 0)
		v := vd.Compound(e.Text)
		count(tv, e.Source, v >= 0, e.Label, v > -0.05 && v < 0.05)
	}
	acc := func(t tally) Accuracy {
		a := Accuracy{All: float64(t.ok[""]) / float64(t.n[""]), Neutral: float64(t.neutral[""]) / float64(t.n[""]),
			BySource: map[string]float64{}}
		for k, n := range t.n {
			if k != "" {
				a.BySource[k] = float64(t.ok[k]) / float64(n)
			}
		}
		return a
	}
	rep.Model, rep.AFINN, rep.VADER = acc(tm), acc(ta), acc(tv)

	// 3-way on rated sentences. VADER's standard thresholds: compound
	// >= 0.05 positive, <= -0.05 negative; AFINN: the sign of the score.
	cm, ca, cv := train.ThreeWayTally{}, train.ThreeWayTally{}, train.ThreeWayTally{}
	sign := func(v, eps float64) int {
		switch {
		case v >= eps:
			return 2
		case v <= -eps:
			return 0
		}
		return 1
	}
	for _, e := range rated {
		p, err := score(e.Text)
		if err != nil {
			return nil, err
		}
		cm.Add(e, onnxmodel.Argmax(p))
		ca.Add(e, sign(af.Score(e.Text), 1))
		cv.Add(e, sign(vd.Compound(e.Text), 0.05))
	}
	rep.ModelThreeWay, rep.AFINNThreeWay, rep.VADERThreeWay = cm.Summary(), ca.Summary(), cv.Summary()

	var lat, glat, fo, fg, ft []time.Duration
	for range o.Rounds {
		for _, e := range held {
			t0 := time.Now()
			if _, err := c.Classify(ctx, e.Text); err != nil {
				return nil, err
			}
			t1 := time.Now()
			if _, err := g.Classify(ctx, e.Text); err != nil {
				return nil, err
			}
			t2 := time.Now()
			fs := m.Featurize(e.Text)
			t3 := time.Now()
			if _, err := run.Run(fs); err != nil {
				return nil, err
			}
			t4 := time.Now()
			m.ScoreGo(fs)
			t5 := time.Now()
			lat, glat = append(lat, t1.Sub(t0)), append(glat, t2.Sub(t1))
			ft, fo, fg = append(ft, t3.Sub(t2)), append(fo, t4.Sub(t3)), append(fg, t5.Sub(t4))
		}
	}
	rep.P50, rep.P99 = pct(lat, 0.5), pct(lat, 0.99)
	rep.GoP50, rep.GoP99 = pct(glat, 0.5), pct(glat, 0.99)
	rep.ForwardONNX, rep.ForwardGo, rep.Featurize = pct(fo, 0.5), pct(fg, 0.5), pct(ft, 0.5)
	return rep, nil
}

// columns is a result's probability per output column (negative, neutral,
// positive), as the model wrote it.
func columns(r inference.Result) [3]float64 {
	var p [3]float64
	for j, l := range onnxmodel.Labels {
		p[j] = r.Scores[l]
	}
	return p
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func pct(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
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
