package inference

import (
	"bufio"
	"bytes"
	"compress/gzip"
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

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// Example is one labelled sentence of the shipped data.
type Example struct {
	Corpus string // CorpusUCI or CorpusVADER
	// Source is amazon, imdb or yelp (UCI); products, movies or tweets
	// (VADER ground truth).
	Source string
	Label  int     // LabelNegative, LabelPositive or LabelNeutral
	Rating float64 // mean human rating, -4..+4 (VADER ground truth only)
	Text   string
	Fold   int // 0..4 by hash of the normalised text; fold 0 is held out
}

// Labels of an Example. UCI sentences are all polar.
const (
	LabelNegative = 0
	LabelPositive = 1
	LabelNeutral  = 2
)

// The two corpora of the shipped data.
const (
	// CorpusUCI is the UCI Sentiment Labelled Sentences: review sentences
	// labelled positive or negative. The accuracy goal is measured on it.
	CorpusUCI = "uci"
	// CorpusVADER is the VADER ground truth (Hutto & Gilbert 2014): product
	// review, movie review and tweet sentences, each with the mean rating of
	// about 20 people.
	CorpusVADER = "vader"
)

// Rating thresholds of the VADER ground truth, fixed before any model was
// trained on it: a mean rating of at least +1 (the scale's "slightly
// positive" point or more) is positive, at most -1 negative, and one that
// rounds to the scale's neutral point (|rating| < 0.5) neutral. Sentences in
// between are left out: their raters leaned one way, but too weakly to
// serve as either a polar or a neutral example.
const (
	PolarRating   = 1.0
	NeutralRating = 0.5
)

// col is the model's output column of a label.
func col(label int) int {
	switch label {
	case LabelNegative:
		return 0
	case LabelNeutral:
		return 1
	}
	return 2
}

// HeldOutFold is never used for training, model selection or calibration.
const HeldOutFold = 0

const numFolds = 5

// Examples returns the shipped labelled sentences in file order, UCI first,
// deduplicated by their normalised text (first occurrence kept), so a
// sentence in both corpora keeps its UCI label and fold.
func Examples() ([]Example, error) {
	var out []Example
	seen := map[string]bool{}
	add := func(e Example) {
		key := strings.Join(strings.Fields(features.Normalize(e.Text, 1<<20)), " ")
		if key == "" || seen[key] {
			return
		}
		seen[key] = true
		h := fnv.New32a()
		h.Write([]byte(key))
		e.Fold = int(h.Sum32() % numFolds)
		out = append(out, e)
	}
	sc := bufio.NewScanner(bytes.NewReader(sentencesTSV))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			continue
		}
		lab, err := strconv.Atoi(parts[1])
		if err != nil || (lab != LabelNegative && lab != LabelPositive) {
			continue
		}
		add(Example{Corpus: CorpusUCI, Source: parts[0], Label: lab, Text: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inference: uci sentences: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(groundTruthGz))
	if err != nil {
		return nil, fmt.Errorf("inference: vader ground truth: %w", err)
	}
	sc = bufio.NewScanner(zr)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			continue
		}
		r, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			continue
		}
		var lab int
		switch {
		case r >= PolarRating:
			lab = LabelPositive
		case r <= -PolarRating:
			lab = LabelNegative
		case math.Abs(r) < NeutralRating:
			lab = LabelNeutral
		default:
			continue
		}
		add(Example{Corpus: CorpusVADER, Source: parts[0], Label: lab, Rating: r, Text: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inference: vader ground truth: %w", err)
	}
	return out, nil
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
	// cross-validation preferred them (0.875 vs 0.872 on UCI alone).
	NoStems bool
}

// hyper is one candidate of the model-selection grid.
type hyper struct {
	NB  bool    // naive-Bayes log-count-ratio scaling of hashed features
	L2  float64 // L2 strength per example
	Avg bool    // average the weights of LR and NB-LR (still one linear model)
	// VW is the training weight of a polar VADER ground-truth sentence
	// relative to a UCI sentence; 0 trains on UCI alone.
	VW float64
}

func (h hyper) String() string {
	kind := "LR"
	if h.NB {
		kind = "NB-LR"
	}
	if h.Avg {
		kind = "LR+NB-LR"
	}
	return fmt.Sprintf("%s l2=%g vader=%g", kind, h.L2, h.VW)
}

// grid is every learner at every weight of the VADER ground truth.
func grid() []hyper {
	var g []hyper
	for _, vw := range []float64{0, 0.1, 0.2, 0.5, 1} {
		for _, l := range []hyper{
			{NB: false, L2: 1e-5}, {NB: false, L2: 1e-4},
			{NB: true, L2: 1e-5}, {NB: true, L2: 1e-4},
			{Avg: true, L2: 1e-5}, {Avg: true, L2: 1e-4},
		} {
			l.VW = vw
			g = append(g, l)
		}
	}
	return g
}

// variantName names a grid row: the featurizer variant and the learner.
func variantName(norm bool, h hyper) string {
	if norm {
		return "norm " + h.String()
	}
	return "raw  " + h.String()
}

// train fits one candidate.
func train(xs []features.Vector, ys []int, ws []float64, dim, nh int, h hyper, epochs int) *linear {
	if !h.Avg {
		return fit(xs, ys, ws, dim, nh, h, epochs)
	}
	a := fit(xs, ys, ws, dim, nh, hyper{NB: false, L2: h.L2}, epochs)
	b := fit(xs, ys, ws, dim, nh, hyper{NB: true, L2: h.L2}, epochs)
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

// linear is a binary model: z = w·x + b, positive when z > 0.
type linear struct {
	w []float64
	b float64
}

func (l *linear) z(fs features.Vector) float64 {
	s := l.b
	for i, k := range fs.Idx {
		s += float64(l.w[k] * float64(fs.Val[i]))
	}
	return s
}

// fit trains a weighted logistic regression (ys: 1 positive, 0 negative)
// with AdaGrad in a fixed order, so the result is the same on every run.
func fit(xs []features.Vector, ys []int, ws []float64, dim, nHashed int, h hyper, epochs int) *linear {
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
			for _, k := range fs.Idx {
				if int(k) >= nHashed {
					continue
				}
				if ys[n] == 1 {
					p[k] += ws[n]
					sp += ws[n]
				} else {
					q[k] += ws[n]
					sq += ws[n]
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
			for i, k := range fs.Idx {
				s += float64(w[k] * float64(fs.Val[i]) * r[k])
			}
			g := float64(ws[n] * (1/(1+math.Exp(-s)) - float64(ys[n])))
			for i, k := range fs.Idx {
				gk := float64(g*float64(fs.Val[i])*r[k]) + float64(h.L2*w[k])
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

// confusion counts sentences by true and predicted output column
// (negative, neutral, positive).
type confusion [3][3]int

// ThreeWay summarises 3-way labelling of rated sentences.
type ThreeWay struct {
	N        int
	Accuracy float64    // share labelled as their raters did
	Recall   [3]float64 // per true class: negative, neutral, positive
	Count    [3]int     // sentences per true class
	// Macro is the mean of the recalls of the classes present, so the
	// smaller neutral class counts as much as each pole.
	Macro float64
}

func (c *confusion) summary() ThreeWay {
	var t ThreeWay
	ok, classes := 0, 0
	for i := range 3 {
		for j := range 3 {
			t.Count[i] += c[i][j]
		}
		t.N += t.Count[i]
		ok += c[i][i]
		if t.Count[i] > 0 {
			t.Recall[i] = float64(c[i][i]) / float64(t.Count[i])
			t.Macro += t.Recall[i]
			classes++
		}
	}
	if t.N > 0 {
		t.Accuracy = float64(ok) / float64(t.N)
		t.Macro /= float64(classes)
	}
	return t
}

// neutralRule is the 3-way decision the exported logits encode: neutral
// when |z| < band + scale·u, plus gate without sentiment evidence.
func neutralRule(z, u float64, noEvidence bool, band, gate, scale float64) int {
	t := band + float64(scale*u)
	if noEvidence {
		t += gate
	}
	switch {
	case math.Abs(z) < t:
		return 1
	case z > 0:
		return 2
	}
	return 0
}

// oofPoint is a rated sentence's out-of-fold log-odds: z positive vs
// negative, u neutral vs polar.
type oofPoint struct {
	z, u  float64
	noEv  bool
	truth int // output column
}

// calibrateNeutral returns the scale (0..2 in steps of 0.25), band (-2..5
// in steps of 0.05) and gate (0..5 in steps of 0.1) that maximise the
// macro-averaged 3-way recall of out-of-fold predictions; ties keep the
// smaller scale, then band, then gate.
func calibrateNeutral(pts []oofPoint) (band, gate, scale float64, best ThreeWay) {
	best.Macro = -1
	for si := 0; si <= 8; si++ {
		s := float64(si) * 0.25
		for i := -40; i <= 100; i++ {
			c := float64(i) * 0.05
			for j := 0; j <= 50; j++ {
				g := float64(j) * 0.1
				var cf confusion
				for _, p := range pts {
					cf[p.truth][neutralRule(p.z, p.u, p.noEv, c, g, s)]++
				}
				if t := cf.summary(); t.Macro > best.Macro {
					band, gate, scale, best = c, g, s, t
				}
			}
		}
	}
	return band, gate, scale, best
}

// TrainReport is the accuracy report of a training run. Every figure comes
// from sentences the scored model never saw.
type TrainReport struct {
	Sentences, TrainSentences, HeldOut int // UCI
	// Rated sentences of the VADER ground truth kept by the thresholds:
	// all, folds 1-4, fold 0; and neutral ones among those of folds 1-4.
	Rated, RatedTrain, RatedHeldOut, RatedNeutralTrain int
	Chosen                                             string
	Grid                                               []GridRow
	NeutralBand, EvidenceGate, NeutralScale            float64
	// InnerThreeWay is the calibrated rule on the out-of-fold predictions
	// of the rated sentences of folds 1-4.
	InnerThreeWay              ThreeWay
	HeldOutBinary              float64            // UCI: argmax of P(pos) vs P(neg)
	HeldOutBySource            map[string]float64 // same, per review source
	HeldOutNeutralShare        float64            // UCI share labelled neutral (all are polar)
	HeldOutAccuracyOutsideBand float64            // UCI accuracy where not neutral
	// HeldOutThreeWay is the rated sentences of fold 0, by source and
	// overall (key "all").
	HeldOutThreeWay map[string]ThreeWay
	ModelBytes      int
}

// GridRow is one candidate's inner cross-validation accuracy on the UCI
// sentences of folds 1..4.
type GridRow struct {
	Hyper    string
	InnerAcc float64
}

// WriteTo prints the report; the text is identical across runs.
func (r *TrainReport) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "data: %d unique UCI sentences (Sentiment Labelled Sentences), %d for training (folds 1-4), %d held out (fold 0)\n",
		r.Sentences, r.TrainSentences, r.HeldOut)
	fmt.Fprintf(&b, "      %d rated VADER ground-truth sentences (positive >= %g, negative <= -%g, neutral |rating| < %g), %d in folds 1-4 (%d neutral, not trained on), %d held out\n",
		r.Rated, PolarRating, PolarRating, NeutralRating, r.RatedTrain, r.RatedNeutralTrain, r.RatedHeldOut)
	fmt.Fprintf(&b, "model selection by 4-fold cross-validation inside folds 1-4 (accuracy on the UCI sentences):\n")
	for _, g := range r.Grid {
		mark := " "
		if g.Hyper == r.Chosen {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %s %-36s inner accuracy %.4f\n", mark, g.Hyper, g.InnerAcc)
	}
	it := r.InnerThreeWay
	fmt.Fprintf(&b, "neutral: |z| < %.2f + %.2f·noEvidence + %.2f·u (log-odds; u: neutral-vs-polar LR), chosen for inner-CV macro recall %.4f on rated sentences (negative %.4f, neutral %.4f, positive %.4f)\n",
		r.NeutralBand, r.EvidenceGate, r.NeutralScale, it.Macro, it.Recall[0], it.Recall[1], it.Recall[2])
	fmt.Fprintf(&b, "held-out binary accuracy (UCI): %.4f\n", r.HeldOutBinary)
	srcs := make([]string, 0, len(r.HeldOutBySource))
	for s := range r.HeldOutBySource {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		fmt.Fprintf(&b, "  %-8s %.4f\n", s, r.HeldOutBySource[s])
	}
	fmt.Fprintf(&b, "held-out UCI 3-way: %.1f%% labelled neutral, accuracy %.4f on the rest\n",
		100*r.HeldOutNeutralShare, r.HeldOutAccuracyOutsideBand)
	fmt.Fprintf(&b, "held-out rated sentences, 3-way:  n     acc     macro   recall neg  neu     pos\n")
	for _, s := range threeWayKeys(r.HeldOutThreeWay) {
		t := r.HeldOutThreeWay[s]
		fmt.Fprintf(&b, "  %-31s %-5d %.4f  %.4f  %.4f      %.4f  %.4f\n", s, t.N, t.Accuracy, t.Macro, t.Recall[0], t.Recall[1], t.Recall[2])
	}
	fmt.Fprintf(&b, "model: %d bytes\n", r.ModelBytes)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// threeWayKeys lists "all" first, then the sources in order.
func threeWayKeys(m map[string]ThreeWay) []string {
	var keys []string
	for k := range m {
		if k != "all" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return append([]string{"all"}, keys...)
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
	base := FeaturizerConfig{Version: 1, HashBits: o.HashBits, Bigrams: true, NegationScope: 3,
		Lexicon: "vader", MaxInputBytes: DefaultMaxInputBytes, Stems: !o.NoStems}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("inference: train: %w", err)
	}
	vader := features.VADER()
	ex, err := Examples()
	if err != nil {
		return nil, fmt.Errorf("inference: train: %w", err)
	}
	nh := 1 << base.HashBits
	dim := nh + features.NumDense
	noEv := int32(nh + features.NoEvidence)
	hasNoEv := func(fs features.Vector) bool { return len(fs.Idx) > 0 && fs.Idx[len(fs.Idx)-1] == noEv }

	var rep TrainReport
	var trainIdx []int
	for i, e := range ex {
		uci := e.Corpus == CorpusUCI
		switch {
		case uci && e.Fold == HeldOutFold:
			rep.Sentences++
			rep.HeldOut++
		case uci:
			rep.Sentences++
			rep.TrainSentences++
		case e.Fold == HeldOutFold:
			rep.Rated++
			rep.RatedHeldOut++
		default:
			rep.Rated++
			rep.RatedTrain++
			if e.Label == LabelNeutral {
				rep.RatedNeutralTrain++
			}
		}
		if e.Fold != HeldOutFold {
			trainIdx = append(trainIdx, i)
		}
	}

	// trainingSet is the polar sentences of folds 1..4 outside fold skip
	// (HeldOutFold: none beyond it), weighted for candidate h.
	trainingSet := func(fx []features.Vector, skip int, h hyper) ([]features.Vector, []int, []float64) {
		var tx []features.Vector
		var ty []int
		var tw []float64
		for _, i := range trainIdx {
			e := ex[i]
			w := 1.0
			if e.Corpus == CorpusVADER {
				w = h.VW
			}
			if e.Fold == skip || e.Label == LabelNeutral || w == 0 {
				continue
			}
			tx, ty, tw = append(tx, fx[i]), append(ty, e.Label), append(tw, w)
		}
		return tx, ty, tw
	}

	// Inner cross-validation: folds 1..4, each left out once, for every
	// featurizer variant (raw or length-normalised hashed features) and
	// every learner of the grid. The goal is measured on UCI sentences, so
	// candidates are compared on them only; the out-of-fold log-odds of
	// the rated sentences serve the neutral calibration.
	var (
		bestAcc = -1.0
		best    hyper
		bestOOF []float64
		bestVoc [numFolds][]uint32 // each inner fold's kept buckets
		cfg     FeaturizerConfig
		xs      []features.Vector
	)
	for _, norm := range []bool{false, true} {
		fc := base
		fc.Norm = norm
		feat, err := features.New(fc, vader)
		if err != nil {
			return nil, err
		}
		fx := make([]features.Vector, len(ex))
		for i, e := range ex {
			fx[i] = feat.Featurize(e.Text)
		}
		for _, h := range grid() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			oof := make([]float64, len(ex))
			var voc [numFolds][]uint32
			correct := 0
			for f := 1; f < numFolds; f++ {
				tx, ty, tw := trainingSet(fx, f, h)
				m := train(tx, ty, tw, dim, nh, h, o.Epochs)
				voc[f] = prune(m, nh, o.MaxColumns)
				for _, i := range trainIdx {
					if ex[i].Fold != f {
						continue
					}
					oof[i] = m.z(fx[i])
					if ex[i].Corpus == CorpusUCI && (oof[i] > 0) == (ex[i].Label == LabelPositive) {
						correct++
					}
				}
			}
			acc := float64(correct) / float64(rep.TrainSentences)
			rep.Grid = append(rep.Grid, GridRow{Hyper: variantName(norm, h), InnerAcc: round4(acc)})
			if acc > bestAcc {
				bestAcc, best, bestOOF, bestVoc, cfg, xs = acc, h, oof, voc, fc, fx
			}
		}
	}
	rep.Chosen = variantName(cfg.Norm, best)

	// Neutral. The rated sentences are the only ones with neutral labels.
	// A second logistic regression, neutral vs polar on them, gives each
	// sentence neutral log-odds u, using only the columns the polar model
	// kept so both share one vocabulary. The neutral logit is then
	// c + g·noEvidence + s·u; band c, gate g and scale s are set on the
	// out-of-fold z and u of the rated sentences of folds 1..4 (s = 0 is
	// the band-and-gate rule alone).
	neutralSet := func(skip int, voc []uint32) ([]features.Vector, []int, []float64) {
		keep := make([]bool, nh)
		for _, k := range voc {
			keep[k] = true
		}
		var tx []features.Vector
		var ty []int
		var tw []float64
		for _, i := range trainIdx {
			e := ex[i]
			if e.Corpus != CorpusVADER || e.Fold == skip {
				continue
			}
			var r features.Vector
			for j, k := range xs[i].Idx {
				if int(k) >= nh || keep[k] {
					r.Idx = append(r.Idx, k)
					r.Val = append(r.Val, xs[i].Val[j])
				}
			}
			y := 0
			if e.Label == LabelNeutral {
				y = 1
			}
			tx, ty, tw = append(tx, r), append(ty, y), append(tw, 1)
		}
		return tx, ty, tw
	}
	neutralHyper := hyper{L2: 1e-4}
	var pts []oofPoint
	for f := 1; f < numFolds; f++ {
		tx, ty, tw := neutralSet(f, bestVoc[f])
		nm := fit(tx, ty, tw, dim, nh, neutralHyper, o.Epochs)
		for _, i := range trainIdx {
			if ex[i].Fold == f && ex[i].Corpus == CorpusVADER {
				pts = append(pts, oofPoint{z: bestOOF[i], u: nm.z(xs[i]), noEv: hasNoEv(xs[i]), truth: col(ex[i].Label)})
			}
		}
	}
	band, gate, scale, inner := calibrateNeutral(pts)
	rep.NeutralBand, rep.EvidenceGate, rep.NeutralScale, rep.InnerThreeWay = round4(band), round4(gate), round4(scale), inner
	cfg.NeutralBand, cfg.EvidenceGate, cfg.NeutralScale = rep.NeutralBand, rep.EvidenceGate, rep.NeutralScale

	// Final model on folds 1..4.
	tx, ty, tw := trainingSet(xs, HeldOutFold, best)
	lin := train(tx, ty, tw, dim, nh, best, o.Epochs)
	vocab := prune(lin, nh, o.MaxColumns)
	cfg.Vocab = features.EncodeVocab(vocab)
	ntx, nty, ntw := neutralSet(HeldOutFold, vocab)
	neu := fit(ntx, nty, ntw, dim, nh, neutralHyper, o.Epochs)
	raw, err := exportModel(lin, neu, vocab, cfg)
	if err != nil {
		return nil, err
	}
	m, err := onnxmodel.Parse(raw, vader)
	if err != nil {
		return nil, fmt.Errorf("inference: train: exported model does not load: %w", err)
	}
	rep.ModelBytes = len(raw)
	bySrc, nSrc := map[string]int{}, map[string]int{}
	correct, neutral, polarOK := 0, 0, 0
	rated := map[string]*confusion{"all": {}}
	for _, e := range ex {
		if e.Fold != HeldOutFold {
			continue
		}
		p := m.ScoreGo(m.Featurize(e.Text))
		pred := onnxmodel.Argmax(p)
		if e.Corpus == CorpusVADER {
			if rated[e.Source] == nil {
				rated[e.Source] = &confusion{}
			}
			rated[e.Source][col(e.Label)][pred]++
			rated["all"][col(e.Label)][pred]++
			continue
		}
		nSrc[e.Source]++
		if (p[2] > p[0]) == (e.Label == LabelPositive) {
			correct++
			bySrc[e.Source]++
		}
		switch pred {
		case 1:
			neutral++
		case col(e.Label):
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
	rep.HeldOutThreeWay = map[string]ThreeWay{}
	for s, c := range rated {
		rep.HeldOutThreeWay[s] = c.summary()
	}
	return &Trained{Model: raw, Report: rep}, nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// exportModel folds the binary log-odds z = l(x), the neutral log-odds
// u = neu(x), band c, gate g and scale s into three logits (−z/2,
// (c+g·noEvidence+s·u)/2, +z/2): softmax then picks neutral exactly when
// |z| < c+g·noEvidence+s·u, and P(pos)/(P(pos)+P(neg)) stays sigmoid(z).
func exportModel(l, neu *linear, vocab []uint32, cfg FeaturizerConfig) ([]byte, error) {
	dim := cfg.Dim()
	w := make([]float32, dim*3)
	nh := 1 << cfg.HashBits
	cols := cfg.Columns()
	for i := range dim {
		src := nh + i - cols // dense features
		if i < cols {
			src = i
			if vocab != nil {
				src = int(vocab[i])
			}
		}
		w[3*i] = float32(-l.w[src] / 2)
		w[3*i+1] = float32(float64(cfg.NeutralScale*neu.w[src]) / 2)
		w[3*i+2] = float32(l.w[src] / 2)
	}
	noEv := cols + features.NoEvidence
	w[3*noEv+1] = float32((float64(cfg.NeutralScale*neu.w[nh+features.NoEvidence]) + cfg.EvidenceGate) / 2)
	b := []float32{float32(-l.b / 2), float32((cfg.NeutralBand + float64(cfg.NeutralScale*neu.b)) / 2), float32(l.b / 2)}
	meta, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return onnxmodel.Encode(w, b, dim, 3, string(meta)), nil
}
