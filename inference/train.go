package inference

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Example is one labelled sentence of the shipped data.
type Example struct {
	Source string // amazon, imdb or yelp
	Label  int    // 1 positive, 0 negative
	Text   string
	Fold   int // 0..4 by hash of the normalised text; fold 0 is held out
}

// HeldOutFold is never used for training, model selection or calibration.
const HeldOutFold = 0

const numFolds = 5

// Examples returns the shipped labelled sentences, deduplicated by their
// normalised text (first occurrence kept), in file order.
func Examples() []Example {
	var out []Example
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sentencesTSV))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			continue
		}
		lab, err := strconv.Atoi(parts[1])
		if err != nil || (lab != 0 && lab != 1) {
			continue
		}
		key := strings.Join(strings.Fields(normalize(parts[2], 1<<20)), " ")
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		h := fnv.New32a()
		h.Write([]byte(key))
		out = append(out, Example{Source: parts[0], Label: lab, Text: parts[2], Fold: int(h.Sum32() % numFolds)})
	}
	return out
}

// TrainOpts are the trainer's knobs. The zero value reproduces the default
// model.
type TrainOpts struct {
	// HashBits for the featurizer; 0 means 20.
	HashBits int
	// Epochs of AdaGrad; 0 means 12.
	Epochs int
	// MaxColumns bounds the hashed columns kept; 0 means 8000.
	MaxColumns int
	// NoStems drops the stem features (see FeaturizerConfig); inner
	// cross-validation preferred them (0.875 vs 0.872).
	NoStems bool
	// GateAccuracy is the cross-validated accuracy that messages without
	// sentiment evidence must reach before they may leave neutral (at least
	// the accuracy of messages with evidence); 0 means 0.92.
	GateAccuracy float64
	// NeutralShare is the share of inner cross-validation predictions on
	// sentences with lexicon evidence that the neutral band absorbs; 0 means
	// 0.10.
	NeutralShare float64
}

// hyper is one candidate of the model-selection grid.
type hyper struct {
	NB       bool    // naive-Bayes log-count-ratio scaling of hashed features
	L2       float64 // L2 strength per example
	MinCount int     // a bucket needs this many training sentences to get a column
	Avg      bool    // average the weights of LR and NB-LR (still one linear model)
	PureNB   bool    // multinomial naive Bayes on presence features, no LR
}

func (h hyper) String() string {
	kind := "LR"
	if h.NB {
		kind = "NB-LR"
	}
	if h.Avg {
		kind = "LR+NB-LR"
	}
	if h.PureNB {
		return fmt.Sprintf("NB min=%d", h.MinCount)
	}
	return fmt.Sprintf("%s l2=%g min=%d", kind, h.L2, h.MinCount)
}

var grid = []hyper{
	{false, 1e-5, 1, false, false}, {false, 1e-4, 1, false, false}, {false, 1e-4, 2, false, false},
	{true, 1e-5, 1, false, false}, {true, 1e-4, 1, false, false}, {true, 1e-4, 2, false, false},
	{false, 1e-4, 1, true, false},
	{MinCount: 1, PureNB: true},
}

// variantName names a grid row: the featurizer variant and the learner.
func variantName(norm bool, h hyper) string {
	if norm {
		return "norm " + h.String()
	}
	return "raw  " + h.String()
}

// train fits one candidate.
func train(xs []features, ys []int, dim, nh int, h hyper, epochs int) *linear {
	if h.PureNB {
		return naiveBayes(xs, ys, dim, nh)
	}
	if !h.Avg {
		return fit(xs, ys, dim, nh, h, epochs)
	}
	a := fit(xs, ys, dim, nh, hyper{NB: false, L2: h.L2}, epochs)
	b := fit(xs, ys, dim, nh, hyper{NB: true, L2: h.L2}, epochs)
	for i := range a.w {
		a.w[i] = (a.w[i] + b.w[i]) / 2
	}
	a.b = (a.b + b.b) / 2
	return a
}

// prune keeps the max hashed weights of largest magnitude (ties: lower
// bucket first) and returns their buckets, sorted. The model's width, and so
// its size and onnx-go time, is bounded by max, whatever the data.
func prune(l *linear, nh, max int) []uint32 {
	var nz []uint32
	for k := range nh {
		if l.w[k] != 0 {
			nz = append(nz, uint32(k))
		}
	}
	if len(nz) > max {
		sort.SliceStable(nz, func(a, b int) bool { return math.Abs(l.w[nz[a]]) > math.Abs(l.w[nz[b]]) })
		for _, k := range nz[max:] {
			l.w[k] = 0
		}
		nz = nz[:max]
		slices.Sort(nz)
	}
	return nz
}

// keepBuckets returns the hashed buckets present in at least min sentences.
func keepBuckets(xs []features, nh int32, min int) map[int32]bool {
	n := map[int32]int{}
	for _, fs := range xs {
		for _, k := range fs.idx {
			if k < nh {
				n[k]++
			}
		}
	}
	keep := map[int32]bool{}
	for k, c := range n {
		if c >= min {
			keep[k] = true
		}
	}
	return keep
}

// restrict drops hashed buckets outside keep (dense features stay).
func restrict(xs []features, nh int32, keep map[int32]bool) []features {
	out := make([]features, len(xs))
	for i, fs := range xs {
		var r features
		for j, k := range fs.idx {
			if k >= nh || keep[k] {
				r.idx = append(r.idx, k)
				r.val = append(r.val, fs.val[j])
			}
		}
		out[i] = r
	}
	return out
}

// linear is a binary model: z = w·x + b, positive when z > 0.
type linear struct {
	w []float64
	b float64
}

func (l *linear) z(fs features) float64 {
	s := l.b
	for i, k := range fs.idx {
		s += float64(l.w[k] * float64(fs.val[i]))
	}
	return s
}

// fit trains a logistic regression with AdaGrad in a fixed order, so the
// result is the same on every run.
func fit(xs []features, ys []int, dim, nHashed int, h hyper, epochs int) *linear {
	r := make([]float64, dim)
	for i := range r {
		r[i] = 1
	}
	if h.NB {
		p := make([]float64, nHashed)
		q := make([]float64, nHashed)
		for i := range p {
			p[i], q[i] = 1, 1
		}
		var sp, sq float64 = float64(nHashed), float64(nHashed)
		for n, fs := range xs {
			for _, k := range fs.idx {
				if int(k) >= nHashed {
					continue
				}
				if ys[n] == 1 {
					p[k]++
					sp++
				} else {
					q[k]++
					sq++
				}
			}
		}
		for i := range nHashed {
			r[i] = math.Log((p[i] / sp) / (q[i] / sq))
		}
	}
	w := make([]float64, dim)
	g2 := make([]float64, dim)
	var b, gb float64
	const eta = 0.5
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	seed := uint64(0x9e3779b97f4a7c15)
	for range epochs {
		for i := len(order) - 1; i > 0; i-- { // Fisher-Yates with splitmix64
			seed += 0x9e3779b97f4a7c15
			z := seed
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			z ^= z >> 31
			j := int(z % uint64(i+1))
			order[i], order[j] = order[j], order[i]
		}
		for _, n := range order {
			fs := xs[n]
			s := b
			for i, k := range fs.idx {
				s += float64(w[k] * float64(fs.val[i]) * r[k])
			}
			g := 1/(1+math.Exp(-s)) - float64(ys[n])
			for i, k := range fs.idx {
				gk := float64(g*float64(fs.val[i])*r[k]) + float64(h.L2*w[k])
				g2[k] += float64(gk * gk)
				w[k] -= float64(eta*gk) / math.Sqrt(g2[k]+1e-8)
			}
			gb += float64(g * g)
			b -= eta * g / math.Sqrt(gb+1e-8)
		}
	}
	for i := range w {
		w[i] *= r[i]
	}
	return &linear{w: w, b: b}
}

// TrainReport is the accuracy report of a training run. Every figure comes
// from sentences the scored model never saw.
type TrainReport struct {
	Sentences, TrainSentences, HeldOut int
	Chosen                             string
	Grid                               []GridRow
	NeutralBand, EvidenceGate          float64
	GateAccuracy                       float64            // accuracy the evidence gate was set to reach
	HeldOutBinary                      float64            // argmax of P(pos) vs P(neg)
	HeldOutBySource                    map[string]float64 // same, per review source
	HeldOutNeutralShare                float64            // share labelled neutral (all are polar)
	HeldOutAccuracyOutsideBand         float64            // accuracy where not neutral
	ModelBytes                         int
}

// GridRow is one candidate's inner cross-validation accuracy (folds 1..4).
type GridRow struct {
	Hyper    string
	InnerAcc float64
}

// WriteTo prints the report; the text is identical across runs.
func (r *TrainReport) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "data: %d unique sentences (UCI Sentiment Labelled Sentences), %d for training (folds 1-4), %d held out (fold 0)\n",
		r.Sentences, r.TrainSentences, r.HeldOut)
	fmt.Fprintf(&b, "model selection by 4-fold cross-validation inside folds 1-4:\n")
	for _, g := range r.Grid {
		mark := " "
		if g.Hyper == r.Chosen {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %s %-30s inner accuracy %.4f\n", mark, g.Hyper, g.InnerAcc)
	}
	fmt.Fprintf(&b, "neutral: band |z| < %.4f, no-evidence gate |z| < %.4f (log-odds; without evidence a pole needs %.2f inner-CV accuracy)\n",
		r.NeutralBand, r.NeutralBand+r.EvidenceGate, r.GateAccuracy)
	fmt.Fprintf(&b, "held-out binary accuracy: %.4f\n", r.HeldOutBinary)
	srcs := make([]string, 0, len(r.HeldOutBySource))
	for s := range r.HeldOutBySource {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		fmt.Fprintf(&b, "  %-7s %.4f\n", s, r.HeldOutBySource[s])
	}
	fmt.Fprintf(&b, "held-out 3-way: %.1f%% labelled neutral, accuracy %.4f on the rest\n",
		100*r.HeldOutNeutralShare, r.HeldOutAccuracyOutsideBand)
	fmt.Fprintf(&b, "model: %d bytes\n", r.ModelBytes)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Trained is a model file and its report.
type Trained struct {
	Model  []byte
	Report TrainReport
}

// Train rebuilds the model from the shipped data. The same options give the
// same bytes on every architecture: products are rounded explicitly
// (float64(x*y)) so that arm64 cannot fuse them into multiply-adds.
func Train(ctx context.Context, opts *TrainOpts) (*Trained, error) {
	var o TrainOpts
	if opts != nil {
		o = *opts
	}
	if o.HashBits == 0 {
		o.HashBits = 20
	}
	if o.MaxColumns == 0 {
		o.MaxColumns = 8000
	}
	if o.Epochs == 0 {
		o.Epochs = 12
	}
	if o.NeutralShare == 0 {
		o.NeutralShare = 0.10
	}
	if o.GateAccuracy == 0 {
		o.GateAccuracy = 0.92
	}
	base := FeaturizerConfig{Version: 1, HashBits: o.HashBits, Bigrams: true, NegationScope: 3,
		Lexicon: "vader", MaxInputBytes: DefaultMaxInputBytes, Stems: !o.NoStems}
	if err := base.validate(); err != nil {
		return nil, fmt.Errorf("inference: train: %w", err)
	}
	vader := parseLexicon(vaderTSV)
	ex := Examples()
	nh := 1 << base.HashBits
	dim := nh + numDense
	noEv := int32(nh + fNoEvidence)
	hasNoEv := func(fs features) bool { return len(fs.idx) > 0 && fs.idx[len(fs.idx)-1] == noEv }

	var trainIdx []int
	for i, e := range ex {
		if e.Fold != HeldOutFold {
			trainIdx = append(trainIdx, i)
		}
	}
	rep := TrainReport{Sentences: len(ex), TrainSentences: len(trainIdx), HeldOut: len(ex) - len(trainIdx)}

	// Inner cross-validation: folds 1..4, each left out once, for every
	// featurizer variant (raw or length-normalised hashed features) and
	// every learner of the grid.
	var (
		bestAcc = -1.0
		best    hyper
		bestOOF []float64
		cfg     FeaturizerConfig
		xs      []features
	)
	for _, norm := range []bool{false, true} {
		fc := base
		fc.Norm = norm
		feat, err := newFeaturizer(fc, vader)
		if err != nil {
			return nil, err
		}
		fx := make([]features, len(ex))
		for i, e := range ex {
			fx[i] = feat.featurize(e.Text)
		}
		for _, h := range grid {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			oof := make([]float64, len(ex))
			correct := 0
			for f := 1; f < numFolds; f++ {
				var tx []features
				var ty []int
				for _, i := range trainIdx {
					if ex[i].Fold != f {
						tx, ty = append(tx, fx[i]), append(ty, ex[i].Label)
					}
				}
				keep := keepBuckets(tx, int32(nh), h.MinCount)
				m := train(restrict(tx, int32(nh), keep), ty, dim, nh, h, o.Epochs)
				prune(m, nh, o.MaxColumns)
				for _, i := range trainIdx {
					if ex[i].Fold == f {
						oof[i] = m.z(fx[i]) // unkept buckets have zero weight
						if (oof[i] > 0) == (ex[i].Label == 1) {
							correct++
						}
					}
				}
			}
			acc := float64(correct) / float64(len(trainIdx))
			rep.Grid = append(rep.Grid, GridRow{Hyper: variantName(norm, h), InnerAcc: round4(acc)})
			if acc > bestAcc {
				bestAcc, best, bestOOF, cfg, xs = acc, h, oof, fc, fx
			}
		}
	}
	rep.Chosen = variantName(cfg.Norm, best)

	// Calibrate neutral on the chosen candidate's out-of-fold log-odds.
	var evAbs []float64
	type zy struct {
		a  float64
		ok bool
	}
	var noev []zy
	evCorrect := 0
	for _, i := range trainIdx {
		z := bestOOF[i]
		ok := (z > 0) == (ex[i].Label == 1)
		if hasNoEv(xs[i]) {
			noev = append(noev, zy{math.Abs(z), ok})
		} else {
			evAbs = append(evAbs, math.Abs(z))
			if ok {
				evCorrect++
			}
		}
	}
	slices.Sort(evAbs)
	band := evAbs[int(o.NeutralShare*float64(len(evAbs)))]
	evAcc := math.Max(o.GateAccuracy, float64(evCorrect)/float64(len(evAbs)))
	// The gate is the smallest threshold above which no-evidence sentences
	// are as reliable as sentences with evidence.
	sort.Slice(noev, func(a, b int) bool { return noev[a].a < noev[b].a })
	gateT := noev[len(noev)-1].a
	for s := range noev {
		c := 0
		for _, v := range noev[s:] {
			if v.ok {
				c++
			}
		}
		if float64(c)/float64(len(noev)-s) >= evAcc {
			gateT = noev[s].a
			break
		}
	}
	gate := math.Max(0, gateT-band)
	rep.NeutralBand, rep.EvidenceGate, rep.GateAccuracy = round4(band), round4(gate), round4(evAcc)
	cfg.NeutralBand, cfg.EvidenceGate = rep.NeutralBand, rep.EvidenceGate

	// Final model on folds 1..4.
	var tx []features
	var ty []int
	for _, i := range trainIdx {
		tx, ty = append(tx, xs[i]), append(ty, ex[i].Label)
	}
	keep := keepBuckets(tx, int32(nh), best.MinCount)
	lin := train(restrict(tx, int32(nh), keep), ty, dim, nh, best, o.Epochs)
	vocab := prune(lin, nh, o.MaxColumns)
	cfg.Vocab = encodeVocab(vocab)
	raw, err := exportModel(lin, vocab, cfg)
	if err != nil {
		return nil, err
	}
	m, err := parseModel(raw, vader)
	if err != nil {
		return nil, fmt.Errorf("inference: train: exported model does not load: %w", err)
	}
	rep.ModelBytes = len(raw)
	bySrc, nSrc := map[string]int{}, map[string]int{}
	correct, neutral, polarOK := 0, 0, 0
	for _, e := range ex {
		if e.Fold != HeldOutFold {
			continue
		}
		p := m.scoreGo(m.feat.featurize(e.Text))
		ok := (p[2] > p[0]) == (e.Label == 1)
		nSrc[e.Source]++
		if ok {
			correct++
			bySrc[e.Source]++
		}
		switch resultOf(p).Label {
		case "neutral":
			neutral++
		case labels[2*e.Label]:
			polarOK++
		}
	}
	rep.HeldOutBinary = round4(float64(correct) / float64(rep.HeldOut))
	rep.HeldOutBySource = map[string]float64{}
	for s, n := range nSrc {
		rep.HeldOutBySource[s] = round4(float64(bySrc[s]) / float64(n))
	}
	rep.HeldOutNeutralShare = round4(float64(neutral) / float64(rep.HeldOut))
	rep.HeldOutAccuracyOutsideBand = round4(float64(polarOK) / float64(rep.HeldOut-neutral))
	return &Trained{Model: raw, Report: rep}, nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// exportModel folds the binary log-odds z, the neutral band c and the
// evidence gate g into three logits (−z/2, (c+g·noEvidence)/2, +z/2):
// softmax then picks neutral exactly when |z| < c (+g without evidence),
// and P(pos)/(P(pos)+P(neg)) stays sigmoid(z).
func exportModel(l *linear, vocab []uint32, cfg FeaturizerConfig) ([]byte, error) {
	dim := cfg.Dim()
	w := make([]float32, dim*3)
	nh := 1 << cfg.HashBits
	cols := cfg.columns()
	for i := range dim {
		src := nh + i - cols // dense features
		if i < cols {
			src = i
			if vocab != nil {
				src = int(vocab[i])
			}
		}
		w[3*i] = float32(-l.w[src] / 2)
		w[3*i+2] = float32(l.w[src] / 2)
	}
	noEv := cols + fNoEvidence
	w[3*noEv+1] = float32(cfg.EvidenceGate / 2)
	b := []float32{float32(-l.b / 2), float32(cfg.NeutralBand / 2), float32(l.b / 2)}
	meta, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return encodeONNX(w, b, dim, 3, string(meta)), nil
}

// naiveBayes is multinomial naive Bayes over the hashed presence features
// (Laplace smoothing); the dense lexicon features get no weight.
func naiveBayes(xs []features, ys []int, dim, nh int) *linear {
	p := map[int32]float64{}
	q := map[int32]float64{}
	var sp, sq float64
	npos := 0
	for n, fs := range xs {
		if ys[n] == 1 {
			npos++
		}
		for _, k := range fs.idx {
			if int(k) >= nh {
				continue
			}
			if ys[n] == 1 {
				p[k]++
				sp++
			} else {
				q[k]++
				sq++
			}
		}
	}
	seen := make([]int32, 0, len(p)+len(q))
	for k := range p {
		seen = append(seen, k)
	}
	for k := range q {
		if _, ok := p[k]; !ok {
			seen = append(seen, k)
		}
	}
	slices.Sort(seen)
	v := float64(len(seen))
	l := &linear{w: make([]float64, dim)}
	for _, k := range seen {
		l.w[k] = math.Log((p[k]+1)/(sp+v)) - math.Log((q[k]+1)/(sq+v))
	}
	l.b = math.Log(float64(npos)) - math.Log(float64(len(xs)-npos))
	return l
}
