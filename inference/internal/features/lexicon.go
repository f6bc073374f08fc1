package features

import (
	"bufio"
	"bytes"
	_ "embed"
	"strconv"
	"strings"
)

// vaderTSV is the VADER lexicon (token<TAB>mean valence), the one that
// Config.Lexicon "vader" names; data/NOTICE gives its origin and licence.
//
//go:embed data/vader_lexicon.tsv
var vaderTSV []byte

// Lexicon maps a lower-case word or emoticon to a valence (VADER: -4..+4).
type Lexicon map[string]float64

// VADER parses the shipped VADER lexicon. Each call parses afresh (a few
// milliseconds), so callers that build several featurizers parse once.
func VADER() Lexicon { return ParseLexicon(vaderTSV) }

// ParseLexicon reads token<TAB>valence lines; other lines are skipped.
func ParseLexicon(b []byte) Lexicon {
	l := Lexicon{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err == nil {
			l[k] = f
		}
	}
	return l
}
