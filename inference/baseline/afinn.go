package baseline

import (
	_ "embed"
	"strings"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// afinnTSV is AFINN-165 (word<TAB>valence); data/NOTICE gives its origin
// and licence.
//
//go:embed data/afinn165.tsv
var afinnTSV []byte

// AFINN reproduces the npm package sentiment@5.0.2 (AFINN-165): its
// tokenizer, its lexicon lookup, and its sign flip when the previous token
// is one of its 12 negators. Its emoji table is not reproduced (the review
// sentences contain no emoji). It is read-only and safe for concurrent use.
type AFINN struct{ lex features.Lexicon }

// NewAFINN parses the embedded AFINN-165 lexicon.
func NewAFINN() *AFINN { return &AFINN{lex: features.ParseLexicon(afinnTSV)} }

var afinnNegators = map[string]bool{"cant": true, "can't": true, "dont": true, "don't": true,
	"doesnt": true, "doesn't": true, "not": true, "non": true, "wont": true, "won't": true,
	"isnt": true, "isn't": true}

// Score is the sum of the valences of text's words, each negated after a
// negator: positive above 0, negative below, 0 without a lexicon word.
func (a *AFINN) Score(text string) float64 {
	s := strings.Map(func(r rune) rune {
		if strings.ContainsRune(".,/#!?$%^&*;:{}=_`\"~()\n", r) {
			return ' '
		}
		return r
	}, strings.ToLower(text))
	toks := strings.Split(strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " "), " ")
	var score float64
	for i, t := range toks {
		v, ok := a.lex[t]
		if !ok {
			continue
		}
		if i > 0 && afinnNegators[toks[i-1]] {
			v = -v
		}
		score += v
	}
	return score
}
