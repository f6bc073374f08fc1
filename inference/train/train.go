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
func Run(ctx context.Context, opts *Opts) (*Trained, error) {
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
	base := features.Config{Version: 1, HashBits: o.HashBits, Bigrams: true, NegationScope: 3,
		Lexicon: "vader", MaxInputBytes: features.DefaultMaxInputBytes, Stems: !o.NoStems}
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

	var rep Report
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
		cfg     features.Config
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
				m := fitCandidate(tx, ty, tw, dim, nh, h, o.Epochs)
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
	lin := fitCandidate(tx, ty, tw, dim, nh, best, o.Epochs)
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
	rep.HeldOutThreeWay = rated.Summary()
	return &Trained{Model: raw, Report: rep}, nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
