package bench

import (
	"context"
	"slices"
	"time"

	"github.com/nexfield/nexfield/inference"
	"github.com/nexfield/nexfield/inference/baseline"
	"github.com/nexfield/nexfield/inference/internal/classify"
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

// Run measures the classifier on the held-out fold, next to the AFINN and
// VADER baselines on the same sentences, in one run.
//
// The phases: load the model under test, pick the held-out sentences,
// score binary accuracy on the UCI ones and 3-way accuracy on the rated
// ones (every method on the same sentences, onnx-go checked against plain
// Go on each), then time the classifier and its parts.
func Run(ctx context.Context, opts *Opts) (*Report, error) {
	o := withDefaults(opts)
	s, err := load(o.Model)
	if err != nil {
		return nil, err
	}
	defer s.close()
	held, rated, err := heldOutSentences()
	if err != nil {
		return nil, err
	}
	rep := &Report{HeldOut: len(held), Rated: len(rated), ModelBytes: s.onnx.ModelSize(), Dim: s.onnx.Model().Dim, LoadTime: s.onnx.LoadTime()}
	bl := baselines{afinn: baseline.NewAFINN(), vader: baseline.NewVADER()}

	acc, diffBinary, err := s.scoreBinary(ctx, held, bl)
	if err != nil {
		return nil, err
	}
	rep.Model, rep.AFINN, rep.VADER = acc.model, acc.afinn, acc.vader
	tw, diffThreeWay, err := s.scoreThreeWay(ctx, rated, bl)
	if err != nil {
		return nil, err
	}
	rep.ModelThreeWay, rep.AFINNThreeWay, rep.VADERThreeWay = tw.model, tw.afinn, tw.vader
	rep.MaxDiff = max(diffBinary, diffThreeWay)

	lat, err := s.timeParts(ctx, held, o.Rounds)
	if err != nil {
		return nil, err
	}
	rep.P50, rep.P99 = pct(lat.classify, 0.5), pct(lat.classify, 0.99)
	rep.GoP50, rep.GoP99 = pct(lat.classifyGo, 0.5), pct(lat.classifyGo, 0.99)
	rep.ForwardONNX, rep.ForwardGo, rep.Featurize = pct(lat.forwardONNX, 0.5), pct(lat.forwardGo, 0.5), pct(lat.featurize, 0.5)
	return rep, nil
}

// withDefaults fills in the zero fields of opts.
func withDefaults(opts *Opts) Opts {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Rounds <= 0 {
		o.Rounds = 10
	}
	return o
}

// subject is the model under test, loaded as a device runs it: through
// onnx-go with one instance, and through plain Go. The parts are timed on
// the onnx-go classifier's own model and instance.
type subject struct {
	onnx, plain *classify.Classifier
}

// load loads raw, nil meaning the embedded default model.
func load(raw []byte) (*subject, error) {
	if raw == nil {
		raw = inference.DefaultModel()
	}
	c, err := classify.New(classify.Opts{Model: raw, Instances: 1})
	if err != nil {
		return nil, err
	}
	g, err := classify.New(classify.Opts{Model: raw, PlainGo: true})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &subject{onnx: c, plain: g}, nil
}

func (s *subject) close() {
	s.onnx.Close()
	s.plain.Close()
}

// heldOutSentences is fold 0: the UCI sentences and the rated ones.
func heldOutSentences() (uci, rated []train.Example, err error) {
	ex, err := train.Examples()
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ex {
		switch {
		case e.Fold != train.HeldOutFold:
		case e.Corpus == train.CorpusUCI:
			uci = append(uci, e)
		default:
			rated = append(rated, e)
		}
	}
	return uci, rated, nil
}

// baselines are the lexicon methods the model is compared with.
type baselines struct {
	afinn *baseline.AFINN
	vader *baseline.VADER
}

// byMethod holds one figure for each method compared.
type byMethod[T any] struct{ model, afinn, vader T }

// score runs text through onnx-go: the model's scores per output column,
// and how far the plain-Go pass of the same weights is from them.
func (s *subject) score(ctx context.Context, text string) (p [3]float64, diff float64, err error) {
	if err := ctx.Err(); err != nil {
		return p, 0, err
	}
	p, err = s.onnx.Scores(ctx, text)
	if err != nil {
		return p, 0, err
	}
	m := s.onnx.Model()
	q := m.ScoreGo(m.Featurize(text))
	for j := range p {
		diff = max(diff, abs(p[j]-q[j]))
	}
	return p, diff, nil
}

// scoreBinary is each method's binary accuracy on the held-out UCI
// sentences, and the largest onnx-go/plain-Go difference on them. The model
// is positive when P(pos) > P(neg); AFINN when its score is >= 0, VADER
// when its compound is >= 0; each method's neutral share uses its 3-way rule.
func (s *subject) scoreBinary(ctx context.Context, held []train.Example, bl baselines) (byMethod[Accuracy], float64, error) {
	t := byMethod[binaryTally]{newBinaryTally(), newBinaryTally(), newBinaryTally()}
	var maxDiff float64
	for _, e := range held {
		p, diff, err := s.score(ctx, e.Text)
		if err != nil {
			return byMethod[Accuracy]{}, 0, err
		}
		maxDiff = max(maxDiff, diff)
		t.model.add(e, p[2] > p[0], onnxmodel.Argmax(p) == 1)
		a := bl.afinn.Score(e.Text)
		t.afinn.add(e, a >= 0, a == 0)
		v := bl.vader.Compound(e.Text)
		t.vader.add(e, v >= 0, v > -0.05 && v < 0.05)
	}
	return byMethod[Accuracy]{t.model.accuracy(), t.afinn.accuracy(), t.vader.accuracy()}, maxDiff, nil
}

// binaryTally counts, per source and overall (key ""), sentences, right
// polarity calls and neutral calls.
type binaryTally struct{ ok, n, neutral map[string]int }

func newBinaryTally() binaryTally {
	return binaryTally{map[string]int{}, map[string]int{}, map[string]int{}}
}

func (t binaryTally) add(e train.Example, pos, neutral bool) {
	for _, k := range []string{e.Source, ""} {
		t.n[k]++
		if pos == (e.Label == train.LabelPositive) {
			t.ok[k]++
		}
		if neutral {
			t.neutral[k]++
		}
	}
}

func (t binaryTally) accuracy() Accuracy {
	a := Accuracy{All: float64(t.ok[""]) / float64(t.n[""]), Neutral: float64(t.neutral[""]) / float64(t.n[""]),
		BySource: map[string]float64{}}
	for k, n := range t.n {
		if k != "" {
			a.BySource[k] = float64(t.ok[k]) / float64(n)
		}
	}
	return a
}

// scoreThreeWay is each method's 3-way result on the held-out rated
// sentences, and the largest onnx-go/plain-Go difference on them. VADER
// uses its standard thresholds (compound >= 0.05 positive, <= -0.05
// negative), AFINN the sign of its score.
func (s *subject) scoreThreeWay(ctx context.Context, rated []train.Example, bl baselines) (byMethod[map[string]train.ThreeWay], float64, error) {
	t := byMethod[train.ThreeWayTally]{train.ThreeWayTally{}, train.ThreeWayTally{}, train.ThreeWayTally{}}
	var maxDiff float64
	for _, e := range rated {
		p, diff, err := s.score(ctx, e.Text)
		if err != nil {
			return byMethod[map[string]train.ThreeWay]{}, 0, err
		}
		maxDiff = max(maxDiff, diff)
		t.model.Add(e, onnxmodel.Argmax(p))
		t.afinn.Add(e, signColumn(bl.afinn.Score(e.Text), 1))
		t.vader.Add(e, signColumn(bl.vader.Compound(e.Text), 0.05))
	}
	return byMethod[map[string]train.ThreeWay]{t.model.Summary(), t.afinn.Summary(), t.vader.Summary()}, maxDiff, nil
}

// signColumn is the output column of a lexicon score: positive at eps or
// above, negative at -eps or below, neutral between.
func signColumn(v, eps float64) int {
	switch {
	case v >= eps:
		return 2
	case v <= -eps:
		return 0
	}
	return 1
}

// latencies are the timings of timeParts, one per sentence and round.
type latencies struct {
	classify, classifyGo              []time.Duration // Classify, featurisation included
	featurize, forwardONNX, forwardGo []time.Duration // the parts alone
}

// timeParts times, rounds times over the held-out UCI sentences, Classify
// through onnx-go and through plain Go, then featurisation and each
// forward pass alone, on the onnx-go classifier's model and instance.
func (s *subject) timeParts(ctx context.Context, held []train.Example, rounds int) (latencies, error) {
	var l latencies
	m := s.onnx.Model()
	for range rounds {
		for _, e := range held {
			t0 := time.Now()
			if _, err := s.onnx.Classify(ctx, e.Text); err != nil {
				return l, err
			}
			t1 := time.Now()
			if _, err := s.plain.Classify(ctx, e.Text); err != nil {
				return l, err
			}
			t2 := time.Now()
			fs := m.Featurize(e.Text)
			t3 := time.Now()
			in, err := s.onnx.Acquire(ctx)
			if err != nil {
				return l, err
			}
			_, err = in.Run(fs)
			s.onnx.Release(in)
			if err != nil {
				return l, err
			}
			t4 := time.Now()
			m.ScoreGo(fs)
			t5 := time.Now()
			l.classify, l.classifyGo = append(l.classify, t1.Sub(t0)), append(l.classifyGo, t2.Sub(t1))
			l.featurize = append(l.featurize, t3.Sub(t2))
			l.forwardONNX, l.forwardGo = append(l.forwardONNX, t4.Sub(t3)), append(l.forwardGo, t5.Sub(t4))
		}
	}
	return l, nil
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
