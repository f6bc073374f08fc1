package baseline

import (
	"math"
	"strings"
	"unicode"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// VADER's constants, as in the reference vaderSentiment.
const (
	vBIncr   = 0.293
	vBDecr   = -0.293
	vCIncr   = 0.733
	vNScalar = -0.74
)

func vaderTables() (map[string]bool, map[string]float64) {
	neg := map[string]bool{}
	for _, w := range strings.Fields(`aint arent cannot cant couldnt darent didnt doesnt ain't aren't can't
		couldn't daren't didn't doesn't dont hadnt hasnt havent isnt mightnt mustnt neither don't hadn't
		hasn't haven't isn't mightn't mustn't neednt needn't never none nope nor not nothing nowhere
		oughtnt shant shouldnt uhuh wasnt werent oughtn't shan't shouldn't uh-uh wasn't weren't without
		wont wouldnt won't wouldn't rarely seldom despite`) {
		neg[w] = true
	}
	boost := map[string]float64{}
	for _, w := range strings.Fields(`absolutely amazingly awfully completely considerable considerably
		decidedly deeply effing enormous enormously entirely especially exceptional exceptionally extreme
		extremely fabulously flipping flippin frackin fracking fricking frickin frigging friggin fully
		fuckin fucking fuggin fugging greatly hella highly hugely incredible incredibly intensely major
		majorly more most particularly purely quite really remarkably so substantially thoroughly total
		totally tremendous tremendously uber unbelievably unusually utter utterly very`) {
		boost[w] = vBIncr
	}
	for _, w := range strings.Fields(`almost barely hardly kinda kindof kind-of less little marginal
		marginally occasional occasionally partly scarce scarcely slight slightly somewhat sorta sortof sort-of`) {
		boost[w] = vBDecr
	}
	return neg, boost
}

func isUpperWord(w string) bool {
	hasLetter := false
	for _, r := range w {
		if unicode.IsLower(r) {
			return false
		}
		if unicode.IsLetter(r) {
			hasLetter = true
		}
	}
	return hasLetter
}

// VADER ports the rules of the reference vaderSentiment (Hutto & Gilbert):
// boosters and dampeners, capitalisation emphasis, negation in the three
// preceding words ("never so" intensifies), "least", the "but" shift,
// exclamation and question-mark emphasis, and the compound normalisation
// x/sqrt(x²+15). Its table of idioms is not ported. It scores with the
// lexicon the model's features use, and is read-only and safe for
// concurrent use.
type VADER struct {
	lex   features.Lexicon
	neg   map[string]bool
	boost map[string]float64
}

// NewVADER parses the shipped VADER lexicon and builds the rule tables.
func NewVADER() *VADER {
	n, b := vaderTables()
	return &VADER{lex: features.VADER(), neg: n, boost: b}
}

func (v *VADER) negated(w string) bool {
	w = strings.ToLower(w)
	return v.neg[w] || strings.Contains(w, "n't")
}

func (v *VADER) scalar(word string, valence float64, capDiff bool) float64 {
	s, ok := v.boost[strings.ToLower(word)]
	if !ok {
		return 0
	}
	if valence < 0 {
		s = -s
	}
	if isUpperWord(word) && capDiff {
		if valence > 0 {
			s += vCIncr
		} else {
			s -= vCIncr
		}
	}
	return s
}

// Compound returns VADER's compound score of text in [-1, 1].
func (v *VADER) Compound(text string) float64 {
	var words []string
	for _, t := range strings.Fields(text) {
		s := strings.TrimFunc(t, unicode.IsPunct)
		if len(s) > 2 {
			t = s
		}
		if len(t) > 1 {
			words = append(words, t)
		}
	}
	upper := 0
	for _, w := range words {
		if isUpperWord(w) {
			upper++
		}
	}
	capDiff := upper > 0 && upper < len(words)
	lower := make([]string, len(words))
	for i, w := range words {
		lower[i] = strings.ToLower(w)
	}
	sent := make([]float64, len(words))
	for i, w := range lower {
		if _, ok := v.boost[w]; ok {
			continue
		}
		if w == "kind" && i+1 < len(lower) && lower[i+1] == "of" {
			continue
		}
		val, ok := v.lex[w]
		if !ok {
			continue
		}
		if w == "no" && i+1 < len(lower) {
			if _, ok := v.lex[lower[i+1]]; ok {
				val = 0
			}
		}
		if (i > 0 && lower[i-1] == "no") || (i > 1 && lower[i-2] == "no") ||
			(i > 2 && lower[i-3] == "no" && (lower[i-1] == "or" || lower[i-1] == "nor")) {
			val = v.lex[w] * vNScalar
		}
		if isUpperWord(words[i]) && capDiff {
			if val > 0 {
				val += vCIncr
			} else {
				val -= vCIncr
			}
		}
		for st := 0; st < 3; st++ {
			if i <= st {
				continue
			}
			prev := lower[i-(st+1)]
			if _, inLex := v.lex[prev]; !inLex {
				s := v.scalar(words[i-(st+1)], val, capDiff)
				if st == 1 && s != 0 {
					s *= 0.95
				}
				if st == 2 && s != 0 {
					s *= 0.9
				}
				val += s
			}
			switch st {
			case 0:
				if v.negated(lower[i-1]) {
					val *= vNScalar
				}
			case 1:
				if lower[i-2] == "never" && (lower[i-1] == "so" || lower[i-1] == "this") {
					val *= 1.25
				} else if lower[i-2] == "without" && lower[i-1] == "doubt" {
				} else if v.negated(lower[i-2]) {
					val *= vNScalar
				}
			case 2:
				if lower[i-3] == "never" && (lower[i-2] == "so" || lower[i-2] == "this" || lower[i-1] == "so" || lower[i-1] == "this") {
					val *= 1.25
				} else if lower[i-3] == "without" && (lower[i-2] == "doubt" || lower[i-1] == "doubt") {
				} else if v.negated(lower[i-3]) {
					val *= vNScalar
				}
			}
		}
		if i > 0 && lower[i-1] == "least" {
			if _, inLex := v.lex["least"]; !inLex {
				if i > 1 && (lower[i-2] == "at" || lower[i-2] == "very") {
				} else {
					val *= vNScalar
				}
			}
		}
		sent[i] = val
	}
	for bi, w := range lower {
		if w == "but" {
			for si := range sent {
				if si < bi {
					sent[si] *= 0.5
				} else if si > bi {
					sent[si] *= 1.5
				}
			}
			break
		}
	}
	var sum float64
	for _, s := range sent {
		sum += s
	}
	if sum == 0 {
		return 0
	}
	ep := math.Min(float64(strings.Count(text, "!")), 4) * 0.292
	qm := float64(strings.Count(text, "?"))
	var qa float64
	if qm > 1 {
		qa = 0.96
		if qm <= 3 {
			qa = qm * 0.18
		}
	}
	if sum > 0 {
		sum += ep + qa
	} else {
		sum -= ep + qa
	}
	c := sum / math.Sqrt(sum*sum+15)
	return math.Max(-1, math.Min(1, c))
}
