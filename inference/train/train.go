package train

import (
	"context"
	"fmt"
	"math"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// Opts are the trainer's knobs. The zero value reproduces the default
// model.
type Opts struct {
	// HashBits for the featurizer; 0 means 20.
	HashBits int
	// Epochs of AdaGrad; 0 means 12.
	Epochs int
	// MaxColumns bounds the hashed columns kept; 0 means 8000.
	MaxColumns int
	// NoStems drops the stem features (the featurizer's Stems); inner
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

// Trained is a model file and its report.
type Trained struct {
	Model  []byte
	Report Report
}

// Run rebuilds the model from the shipped data. The same options give the
// same bytes on every architecture: products are rounded explicitly
// (float64(x*y)) so that arm64 cannot fuse them into multiply-adds.
//
// The phases: count the sentences, choose the featurizer variant and
// learner by inner cross-validation, calibrate the neutral rule on the
// out-of-fold predictions of the chosen candidate, fit the final models on
// folds 1-4 and export them, and score the exported file on fold 0.
func Run(ctx context.Context, opts *Opts) (*Trained, error) {
	o := withDefaults(opts)
	base := features.Config{Version: 1, HashBits: o.HashBits, Bigrams: true, NegationScope: 3,
		Lexicon: "vader", MaxInputBytes: features.DefaultMaxInputBytes, Stems: !o.NoStems}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("inference: train: %w", err)
	}
	ex, err := Examples()
	if err != nil {
		return nil, fmt.Errorf("inference: train: %w", err)
	}
	t := newTrainer(o, ex, base.HashBits)
	rep := countSentences(ex)

	sel, rows, err := t.selectCandidate(ctx, base)
	if err != nil {
		return nil, err
	}
	rep.Grid, rep.Chosen = rows, variantName(sel.cfg.Norm, sel.h)

	cal := t.calibrateNeutral(sel)
	rep.NeutralBand, rep.EvidenceGate, rep.NeutralScale, rep.InnerThreeWay = cal.band, cal.gate, cal.scale, cal.inner
	cfg := sel.cfg
	cfg.NeutralBand, cfg.EvidenceGate, cfg.NeutralScale = cal.band, cal.gate, cal.scale

	raw, err := t.fitFinal(sel, cfg)
	if err != nil {
		return nil, err
	}
	m, err := onnxmodel.Parse(raw, t.vader)
	if err != nil {
		return nil, fmt.Errorf("inference: train: exported model does not load: %w", err)
	}
	rep.ModelBytes = len(raw)
	h := scoreHeldOut(ex, m)
	rep.HeldOutBinary, rep.HeldOutBySource = h.binary, h.bySource
	rep.HeldOutNeutralShare, rep.HeldOutAccuracyOutsideBand = h.neutralShare, h.outsideBand
	rep.HeldOutThreeWay = h.threeWay
	return &Trained{Model: raw, Report: rep}, nil
}

// withDefaults fills in the zero fields of opts.
func withDefaults(opts *Opts) Opts {
	var o Opts
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
	return o
}

// trainer is what every phase reads and none changes: the options, the
// sentences and the shape of the hashed input space.
type trainer struct {
	o        Opts
	ex       []Example
	trainIdx []int // the sentences of folds 1-4, in file order
	trainUCI int   // how many of them are UCI sentences
	nh       int   // hashed buckets, before pruning
	dim      int   // input width before pruning: nh + dense features
	vader    features.Lexicon
}

func newTrainer(o Opts, ex []Example, hashBits int) *trainer {
	t := &trainer{o: o, ex: ex, nh: 1 << hashBits, vader: features.VADER()}
	t.dim = t.nh + features.NumDense
	for i, e := range ex {
		if e.Fold == HeldOutFold {
			continue
		}
		t.trainIdx = append(t.trainIdx, i)
		if e.Corpus == CorpusUCI {
			t.trainUCI++
		}
	}
	return t
}

// countSentences is the report's account of the data: sentences of each
// corpus, for training and held out.
func countSentences(ex []Example) Report {
	var rep Report
	for _, e := range ex {
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
	}
	return rep
}

// dataset is what a learner fits: inputs, 0/1 targets and weights.
type dataset struct {
	xs []features.Vector
	ys []int
	ws []float64
}

// polarSet is the polar sentences of folds 1-4 outside fold skip
// (HeldOutFold: none beyond it), weighted for candidate h, with their
// inputs in xs (indexed like t.ex).
func (t *trainer) polarSet(xs []features.Vector, skip int, h hyper) dataset {
	var d dataset
	for _, i := range t.trainIdx {
		e := t.ex[i]
		w := 1.0
		if e.Corpus == CorpusVADER {
			w = h.VW
		}
		if e.Fold == skip || e.Label == LabelNeutral || w == 0 {
			continue
		}
		d.xs, d.ys, d.ws = append(d.xs, xs[i]), append(d.ys, e.Label), append(d.ws, w)
	}
	return d
}

// selection is the candidate that won the inner cross-validation.
type selection struct {
	cfg features.Config   // the featurizer variant
	h   hyper             // the learner
	xs  []features.Vector // every sentence's input under cfg, indexed like t.ex
	// oof is each sentence's out-of-fold log-odds z (folds 1-4; 0 for fold 0).
	oof []float64
	voc [numFolds][]uint32 // each inner fold's kept buckets
}

// selectCandidate runs the inner cross-validation: folds 1-4, each left
// out once, for every featurizer variant (raw or length-normalised hashed
// features) and every learner of the grid. The goal is measured on UCI
// sentences, so candidates are compared on them only; the out-of-fold
// log-odds of the rated sentences serve the neutral calibration. The first
// candidate with the highest accuracy wins.
func (t *trainer) selectCandidate(ctx context.Context, base features.Config) (selection, []GridRow, error) {
	var (
		best    selection
		bestAcc = -1.0
		rows    []GridRow
	)
	for _, norm := range []bool{false, true} {
		cfg := base
		cfg.Norm = norm
		xs, err := t.featurizeAll(cfg)
		if err != nil {
			return selection{}, nil, err
		}
		for _, h := range grid() {
			if err := ctx.Err(); err != nil {
				return selection{}, nil, err
			}
			cand := selection{cfg: cfg, h: h, xs: xs}
			var correct int
			cand.oof, cand.voc, correct = t.crossValidate(xs, h)
			acc := float64(correct) / float64(t.trainUCI)
			rows = append(rows, GridRow{Hyper: variantName(norm, h), InnerAcc: round4(acc)})
			if acc > bestAcc {
				bestAcc, best = acc, cand
			}
		}
	}
	return best, rows, nil
}

// featurizeAll is the input of every sentence under cfg, indexed like t.ex.
func (t *trainer) featurizeAll(cfg features.Config) ([]features.Vector, error) {
	feat, err := features.New(cfg, t.vader)
	if err != nil {
		return nil, err
	}
	xs := make([]features.Vector, len(t.ex))
	for i, e := range t.ex {
		xs[i] = feat.Featurize(e.Text)
	}
	return xs, nil
}

// crossValidate fits candidate h once per inner fold f (on folds 1-4 but
// f) and scores fold f with it: the out-of-fold log-odds of every sentence,
// each fold's kept buckets, and how many UCI sentences came out right.
func (t *trainer) crossValidate(xs []features.Vector, h hyper) (oof []float64, voc [numFolds][]uint32, correct int) {
	oof = make([]float64, len(t.ex))
	for f := 1; f < numFolds; f++ {
		m := fitCandidate(t.polarSet(xs, f, h), t.dim, t.nh, h, t.o.Epochs)
		voc[f] = prune(m, t.nh, t.o.MaxColumns)
		for _, i := range t.trainIdx {
			e := t.ex[i]
			if e.Fold != f {
				continue
			}
			oof[i] = m.z(xs[i])
			if e.Corpus == CorpusUCI && (oof[i] > 0) == (e.Label == LabelPositive) {
				correct++
			}
		}
	}
	return oof, voc, correct
}

// neutralL2 is the neutral-vs-polar learner's L2, fixed beforehand, not tuned.
const neutralL2 = 1e-4

// neutralSet is the rated sentences of folds 1-4 outside fold skip,
// neutral (1) against polar (0), unweighted, restricted to the buckets voc
// that the polar model kept (and the dense features), so both models share
// one vocabulary.
func (t *trainer) neutralSet(xs []features.Vector, skip int, voc []uint32) dataset {
	keep := make([]bool, t.nh)
	for _, k := range voc {
		keep[k] = true
	}
	var d dataset
	for _, i := range t.trainIdx {
		e := t.ex[i]
		if e.Corpus != CorpusVADER || e.Fold == skip {
			continue
		}
		var r features.Vector
		for j, k := range xs[i].Idx {
			if int(k) >= t.nh || keep[k] {
				r.Idx = append(r.Idx, k)
				r.Val = append(r.Val, xs[i].Val[j])
			}
		}
		y := 0
		if e.Label == LabelNeutral {
			y = 1
		}
		d.xs, d.ys, d.ws = append(d.xs, r), append(d.ys, y), append(d.ws, 1)
	}
	return d
}

// calibration is the neutral rule's parameters, rounded as the model file
// stores them, and the rule's inner-CV result.
type calibration struct {
	band, gate, scale float64
	inner             ThreeWay
}

// calibrateNeutral sets the neutral rule. The rated sentences are the only
// ones with neutral labels. A second logistic regression, neutral vs polar
// on them, gives each sentence neutral log-odds u, using only the columns
// the polar model kept so both share one vocabulary. The neutral logit is
// then c + g·noEvidence + s·u; band c, gate g and scale s are set on the
// out-of-fold z and u of the rated sentences of folds 1-4 (s = 0 is the
// band-and-gate rule alone).
func (t *trainer) calibrateNeutral(sel selection) calibration {
	noEv := int32(t.nh + features.NoEvidence)
	hasNoEv := func(fs features.Vector) bool { return len(fs.Idx) > 0 && fs.Idx[len(fs.Idx)-1] == noEv }
	var pts []oofPoint
	for f := 1; f < numFolds; f++ {
		nm := fit(t.neutralSet(sel.xs, f, sel.voc[f]), t.dim, t.nh, hyper{L2: neutralL2}, t.o.Epochs)
		for _, i := range t.trainIdx {
			e := t.ex[i]
			if e.Fold == f && e.Corpus == CorpusVADER {
				pts = append(pts, oofPoint{z: sel.oof[i], u: nm.z(sel.xs[i]), noEv: hasNoEv(sel.xs[i]), truth: col(e.Label)})
			}
		}
	}
	band, gate, scale, inner := searchNeutralRule(pts)
	return calibration{band: round4(band), gate: round4(gate), scale: round4(scale), inner: inner}
}

// fitFinal fits the chosen candidate and the neutral model on all of folds
// 1-4, keeps the polar model's largest weights, and exports both into one
// model file; cfg carries the calibrated neutral rule.
func (t *trainer) fitFinal(sel selection, cfg features.Config) ([]byte, error) {
	lin := fitCandidate(t.polarSet(sel.xs, HeldOutFold, sel.h), t.dim, t.nh, sel.h, t.o.Epochs)
	vocab := prune(lin, t.nh, t.o.MaxColumns)
	cfg.Vocab = features.EncodeVocab(vocab)
	neu := fit(t.neutralSet(sel.xs, HeldOutFold, vocab), t.dim, t.nh, hyper{L2: neutralL2}, t.o.Epochs)
	return exportModel(lin, neu, vocab, cfg)
}

// heldOut is the exported model's figures on fold 0.
type heldOut struct {
	binary       float64            // UCI: P(pos) vs P(neg)
	bySource     map[string]float64 // same, per review source
	neutralShare float64            // UCI share labelled neutral
	outsideBand  float64            // UCI accuracy where not neutral
	threeWay     map[string]ThreeWay
}

// scoreHeldOut scores fold 0 with the model file as a device would load
// it: binary and 3-way on the UCI sentences, 3-way on the rated ones.
func scoreHeldOut(ex []Example, m *onnxmodel.Model) heldOut {
	bySrc, nSrc := map[string]int{}, map[string]int{}
	n, correct, neutral, polarOK := 0, 0, 0, 0
	rated := ThreeWayTally{}
	for _, e := range ex {
		if e.Fold != HeldOutFold {
			continue
		}
		p := m.ScoreGo(m.Featurize(e.Text))
		pred := onnxmodel.Argmax(p)
		if e.Corpus == CorpusVADER {
			rated.Add(e, pred)
			continue
		}
		n++
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
	h := heldOut{bySource: map[string]float64{}, threeWay: rated.Summary()}
	h.binary = round4(float64(correct) / float64(n))
	for s, k := range nSrc {
		h.bySource[s] = round4(float64(bySrc[s]) / float64(k))
	}
	h.neutralShare = round4(float64(neutral) / float64(n))
	h.outsideBand = round4(float64(polarOK) / float64(n-neutral))
	return h
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
