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

// Compound returns VADER's compound score of text in [-1, 1]: each word's
// valence in its context, the "but" shift, then punctuation emphasis and
// the normalisation x/sqrt(x²+15).
func (v *VADER) Compound(text string) float64 {
	t := splitWords(text)
	sent := make([]float64, len(t.words))
	for i := range t.words {
		sent[i] = v.wordValence(t, i)
	}
	butShift(t.lower, sent)
	var sum float64
	for _, s := range sent {
		sum += s
	}
	return normalizeScore(sum, punctuationEmphasis(text))
}

// vaderText is a text split the way VADER reads it.
type vaderText struct {
	words []string // tokens with surrounding punctuation trimmed, as written
	lower []string // the same, lower-cased
	// capDiff is set when some but not all words are upper case: only then
	// does upper case emphasise a word.
	capDiff bool
}

// splitWords splits on white space, trims punctuation from tokens that keep
// more than two characters, and drops one-character tokens.
func splitWords(text string) vaderText {
	var t vaderText
	for _, f := range strings.Fields(text) {
		s := strings.TrimFunc(f, unicode.IsPunct)
		if len(s) > 2 {
			f = s
		}
		if len(f) > 1 {
			t.words = append(t.words, f)
		}
	}
	upper := 0
	for _, w := range t.words {
		if isUpperWord(w) {
			upper++
		}
	}
	t.capDiff = upper > 0 && upper < len(t.words)
	t.lower = make([]string, len(t.words))
	for i, w := range t.words {
		t.lower[i] = strings.ToLower(w)
	}
	return t
}

// wordValence is the valence of word i in its context: its lexicon value
// after the "no" rules and capitalisation, then the boosters and negations
// of the three words before it, then "least". Words outside the lexicon,
// boosters and the "kind" of "kind of" count 0.
func (v *VADER) wordValence(t vaderText, i int) float64 {
	val, ok := v.lexiconValence(t.lower, i)
	if !ok {
		return 0
	}
	val = capsEmphasis(val, t.words[i], t.capDiff)
	for st := 0; st < 3 && st < i; st++ {
		val = v.boosterBefore(t, i, st, val)
		val = v.negationBefore(t.lower, i, st, val)
	}
	return v.leastBefore(t.lower, i, val)
}

// lexiconValence is word i's lexicon value, zeroed when it is "no" before
// a lexicon word and negated after "no" (one or two words back, or three
// with "or"/"nor" between). ok is false for words that carry no valence of
// their own.
func (v *VADER) lexiconValence(lower []string, i int) (val float64, ok bool) {
	w := lower[i]
	if _, ok := v.boost[w]; ok {
		return 0, false
	}
	if w == "kind" && i+1 < len(lower) && lower[i+1] == "of" {
		return 0, false
	}
	val, ok = v.lex[w]
	if !ok {
		return 0, false
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
	return val, true
}

// capsEmphasis pushes val away from 0 when word is upper case among
// mixed-case words.
func capsEmphasis(val float64, word string, capDiff bool) float64 {
	if isUpperWord(word) && capDiff {
		if val > 0 {
			val += vCIncr
		} else {
			val -= vCIncr
		}
	}
	return val
}

// boosterBefore adds the booster or dampener st+1 words before word i,
// weakened with distance (x0.95 two words back, x0.9 three); a word that is
// itself in the lexicon boosts nothing.
func (v *VADER) boosterBefore(t vaderText, i, st int, val float64) float64 {
	prev := t.lower[i-(st+1)]
	if _, inLex := v.lex[prev]; inLex {
		return val
	}
	s := v.scalar(t.words[i-(st+1)], val, t.capDiff)
	if st == 1 && s != 0 {
		s *= 0.95
	}
	if st == 2 && s != 0 {
		s *= 0.9
	}
	return val + s
}

// negationBefore applies a negator st+1 words before word i; "never so" and
// "never this" intensify instead, and "without doubt" is no negation.
func (v *VADER) negationBefore(lower []string, i, st int, val float64) float64 {
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
	return val
}

// leastBefore negates word i after "least", but not after "at least" or
// "very least".
func (v *VADER) leastBefore(lower []string, i int, val float64) float64 {
	if i > 0 && lower[i-1] == "least" {
		if _, inLex := v.lex["least"]; !inLex {
			if i > 1 && (lower[i-2] == "at" || lower[i-2] == "very") {
			} else {
				val *= vNScalar
			}
		}
	}
	return val
}

// butShift halves the words before the first "but" and raises the words
// after it by half, in place.
func butShift(lower []string, sent []float64) {
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
}

// punctuationEmphasis is what "!" (up to 4) and "?" (more than one) add to
// the magnitude of a non-zero sum.
func punctuationEmphasis(text string) float64 {
	ep := math.Min(float64(strings.Count(text, "!")), 4) * 0.292
	qm := float64(strings.Count(text, "?"))
	var qa float64
	if qm > 1 {
		qa = 0.96
		if qm <= 3 {
			qa = qm * 0.18
		}
	}
	return ep + qa
}

// normalizeScore adds emphasis to the magnitude of sum and maps it into
// [-1, 1] with x/sqrt(x²+15); a zero sum stays 0.
func normalizeScore(sum, emphasis float64) float64 {
	if sum == 0 {
		return 0
	}
	if sum > 0 {
		sum += emphasis
	} else {
		sum -= emphasis
	}
	c := sum / math.Sqrt(sum*sum+15)
	return math.Max(-1, math.Min(1, c))
}
