package train

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// The two corpora, embedded: data/NOTICE gives their origin and licences.
//
//go:embed data/uci_sentences.tsv
var sentencesTSV []byte

// Gzip keeps the ~2 MB of rated sentences to ~0.8 MB in the binary.
//
//go:embed data/vader_groundtruth.tsv.gz
var groundTruthGz []byte

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
	uci, err := readUCI()
	if err != nil {
		return nil, err
	}
	rated, err := readGroundTruth()
	if err != nil {
		return nil, err
	}
	return dedupAndFold(append(uci, rated...)), nil
}

// readUCI is the UCI sentences, all polar, in file order.
func readUCI() ([]Example, error) {
	var out []Example
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
		out = append(out, Example{Corpus: CorpusUCI, Source: parts[0], Label: lab, Text: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inference: uci sentences: %w", err)
	}
	return out, nil
}

// readGroundTruth is the VADER ground-truth sentences that the rating
// thresholds label, in file order.
func readGroundTruth() ([]Example, error) {
	zr, err := gzip.NewReader(bytes.NewReader(groundTruthGz))
	if err != nil {
		return nil, fmt.Errorf("inference: vader ground truth: %w", err)
	}
	var out []Example
	sc := bufio.NewScanner(zr)
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
		out = append(out, Example{Corpus: CorpusVADER, Source: parts[0], Label: lab, Rating: r, Text: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inference: vader ground truth: %w", err)
	}
	return out, nil
}

// dedupAndFold drops every sentence whose normalised text is empty or came
// before, and puts the rest in fold FNV-1a(normalised text) mod 5.
func dedupAndFold(ex []Example) []Example {
	var out []Example
	seen := map[string]bool{}
	for _, e := range ex {
		key := strings.Join(strings.Fields(features.Normalize(e.Text, 1<<20)), " ")
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		h := fnv.New32a()
		h.Write([]byte(key))
		e.Fold = int(h.Sum32() % numFolds)
		out = append(out, e)
	}
	return out
}
