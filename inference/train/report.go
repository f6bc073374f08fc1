package train

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Report is the accuracy report of a training run. Every figure comes
// from sentences the scored model never saw.
type Report struct {
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
func (r *Report) WriteTo(w io.Writer) (int64, error) {
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
	for _, s := range ThreeWayKeys(r.HeldOutThreeWay) {
		t := r.HeldOutThreeWay[s]
		fmt.Fprintf(&b, "  %-31s %-5d %.4f  %.4f  %.4f      %.4f  %.4f\n", s, t.N, t.Accuracy, t.Macro, t.Recall[0], t.Recall[1], t.Recall[2])
	}
	fmt.Fprintf(&b, "model: %d bytes\n", r.ModelBytes)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
