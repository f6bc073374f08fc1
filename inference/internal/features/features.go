package features

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxInputBytes is the text length the featurizer reads; the rest is
// ignored. A LoRa message is at most a few hundred bytes, and a review
// sentence rarely passes 300, so 2 KiB loses nothing real and bounds the
// cost of a hostile megabyte to microseconds.
const DefaultMaxInputBytes = 2048

// Config describes how text becomes the model's input vector. It
// travels inside the model file (metadata key "nexfield.featurizer") so a
// model is never run with features it was not trained on.
type Config struct {
	Version int `json:"version"`
	// HashBits: 1<<HashBits buckets for hashed unigrams and bigrams.
	HashBits int `json:"hash_bits"`
	// Bigrams adds adjacent-token pairs to the hashed features.
	Bigrams bool `json:"bigrams"`
	// Stems adds the first five letters of longer words as extra hashed
	// features, so "disappointing" also counts as "disap".
	Stems bool `json:"stems,omitempty"`
	// Norm scales hashed features by 1/sqrt(1+words) so long sentences do
	// not dominate.
	Norm bool `json:"norm,omitempty"`
	// NegationScope is how many tokens after a negator get the NOT_ mark
	// (stopping at clause punctuation).
	NegationScope int `json:"negation_scope"`
	// Lexicon is "vader" (the shipped VADER lexicon) or "" for none.
	Lexicon string `json:"lexicon"`
	// Vocab, when set, lists the hash buckets (sorted) that have a weight;
	// bucket Vocab[i] is input column i and other buckets are ignored. It
	// lets a wide, nearly collision-free hash space fit a small model. It is
	// stored as base64 of little-endian uint32s.
	Vocab string `json:"vocab,omitempty"`
	// MaxInputBytes truncates input; 0 means DefaultMaxInputBytes.
	MaxInputBytes int `json:"max_input_bytes"`
	// NeutralBand, EvidenceGate and NeutralScale are the calibrated neutral
	// parameters in log-odds (already folded into the weights; kept for
	// reports).
	NeutralBand  float64 `json:"neutral_band"`
	EvidenceGate float64 `json:"evidence_gate"`
	NeutralScale float64 `json:"neutral_scale,omitempty"`
}

// Dense features after the hashed columns, in this order. NoEvidence (no
// lexicon word, emoticon or emoji) is the one the neutral rule gates on;
// NumDense is how many there are.
const (
	fLexPos = iota
	fLexNeg
	fLexPosN
	fLexNegN
	fExclaim
	NoEvidence
	NumDense
)

// Dim is the length of the input vector.
func (c Config) Dim() int {
	if c.Vocab != "" {
		return base64.StdEncoding.DecodedLen(len(c.Vocab))/4 + NumDense
	}
	return 1<<c.HashBits + NumDense
}

// Columns is the number of hashed columns before the dense features.
func (c Config) Columns() int { return c.Dim() - NumDense }

func decodeVocab(s string, bits int) ([]uint32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("vocab: %w", err)
	}
	if len(b)%4 != 0 || len(b) == 0 {
		return nil, fmt.Errorf("vocab: %d bytes, want a positive multiple of 4", len(b))
	}
	v := make([]uint32, len(b)/4)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[4*i:])
		if v[i] >= 1<<bits || (i > 0 && v[i] <= v[i-1]) {
			return nil, fmt.Errorf("vocab: entry %d (%d) out of order or beyond 2^%d", i, v[i], bits)
		}
	}
	return v, nil
}

// EncodeVocab is the Config.Vocab form of sorted buckets.
func EncodeVocab(v []uint32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Validate says which field is out of range, if one is.
func (c Config) Validate() error {
	if c.Version != 1 {
		return fmt.Errorf("featurizer version %d, want 1", c.Version)
	}
	if c.HashBits < 4 || c.HashBits > 24 {
		return fmt.Errorf("hash_bits %d out of range 4..24", c.HashBits)
	}
	if c.Vocab == "" && c.HashBits > 20 {
		return fmt.Errorf("hash_bits %d without a vocab: the model would be too wide", c.HashBits)
	}
	if c.Vocab != "" {
		if _, err := decodeVocab(c.Vocab, c.HashBits); err != nil {
			return err
		}
	}
	if c.NegationScope < 0 || c.NegationScope > 10 {
		return fmt.Errorf("negation_scope %d out of range 0..10", c.NegationScope)
	}
	if c.Lexicon != "" && c.Lexicon != "vader" {
		return fmt.Errorf("unknown lexicon %q (want \"vader\" or \"\")", c.Lexicon)
	}
	if c.MaxInputBytes < 0 || c.MaxInputBytes > 1<<20 {
		return fmt.Errorf("max_input_bytes %d out of range", c.MaxInputBytes)
	}
	return nil
}

// Featurizer turns text into sparse features. It is read-only after
// construction and safe for concurrent use.
type Featurizer struct {
	cfg   Config
	lex   Lexicon
	max   int
	vocab map[uint32]int32 // bucket -> column; nil: the bucket is the column
	cols  int32
}

// New builds the featurizer of cfg; vader is the lexicon that Lexicon
// "vader" names (see VADER).
func New(cfg Config, vader Lexicon) (*Featurizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Featurizer{cfg: cfg, max: cfg.MaxInputBytes}
	if f.max == 0 {
		f.max = DefaultMaxInputBytes
	}
	if cfg.Lexicon == "vader" {
		f.lex = vader
	}
	f.cols = int32(cfg.Columns())
	if cfg.Vocab != "" {
		v, err := decodeVocab(cfg.Vocab, cfg.HashBits)
		if err != nil {
			return nil, err
		}
		f.vocab = make(map[uint32]int32, len(v))
		for i, b := range v {
			f.vocab[b] = int32(i)
		}
	}
	return f, nil
}

// token is a normalised token; punct marks clause punctuation.
type token struct {
	s     string
	punct bool
}

// emoticons are matched before word splitting; the VADER lexicon scores many
// of them, the rest map to a polarity token.
var emoticons = []string{
	":-)", ":)", ":-(", ":(", ":-d", ":d", ";-)", ";)", ":'(", ":/", ":-/", ":p", ":-p",
	"<3", "=)", "=(", ":o", ":-o", "xd", ":|", ":-|", "^_^", "-_-", ">:(",
}

var emojiPolarity = map[rune]string{
	'😀': "pos", '😁': "pos", '😂': "pos", '😃': "pos", '😄': "pos", '😊': "pos", '🙂': "pos",
	'😍': "pos", '👍': "pos", '❤': "pos", '💯': "pos", '🎉': "pos", '✅': "pos", '😎': "pos",
	'😞': "neg", '😢': "neg", '😭': "neg", '😡': "neg", '😠': "neg", '👎': "neg", '🙁': "neg",
	'☹': "neg", '💔': "neg", '😩': "neg", '😫': "neg", '❌': "neg", '😒': "neg",
}

// Normalize truncates to the byte limit at a rune boundary, replaces invalid
// UTF-8, drops control characters and lower-cases.
func Normalize(s string, limit int) string {
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		if unicode.IsControl(r) || r == '\uFFFD' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '’'
}

// tokenize splits normalised text into words, emoticons, emoji and clause
// punctuation. Numbers collapse to "<num>" so digits do not leak meaning.
func tokenize(s string) []token {
	toks := make([]token, 0, 16)
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == ' ' {
			i += n
			continue
		}
		if (i == 0 || s[i-1] == ' ') && strings.IndexByte(":;<=^->x", s[i]) >= 0 {
			matched := ""
			for _, e := range emoticons {
				if strings.HasPrefix(s[i:], e) && (len(s) == i+len(e) || s[i+len(e)] == ' ' || !isWordRune(rune(s[i+len(e)]))) {
					if len(e) > len(matched) {
						matched = e
					}
				}
			}
			if matched != "" && !(matched == "xd" && i+2 < len(s) && isWordRune(rune(s[i+2]))) {
				toks = append(toks, token{s: matched})
				i += len(matched)
				continue
			}
		}
		if isWordRune(r) {
			j := i
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !isWordRune(r2) {
					break
				}
				j += n2
			}
			w := strings.Trim(strings.ReplaceAll(s[i:j], "’", "'"), "'")
			if w != "" {
				if isNumber(w) {
					w = "<num>"
				}
				toks = append(toks, token{s: w})
			}
			i = j
			continue
		}
		switch {
		case r == '.' || r == ',' || r == ';' || r == ':' || r == '?' || r == '!':
			toks = append(toks, token{s: string(r), punct: true})
		case emojiPolarity[r] != "":
			toks = append(toks, token{s: "emoji:" + emojiPolarity[r]})
		}
		i += n
	}
	return toks
}

func isNumber(w string) bool {
	for _, r := range w {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func isNegator(w string) bool {
	switch w {
	case "not", "no", "never", "cannot", "nothing", "nobody", "none", "neither", "nor",
		"without", "hardly", "barely", "nowhere", "cant", "dont", "wont", "isnt", "doesnt",
		"didnt", "wasnt", "arent", "werent", "couldnt", "shouldnt", "wouldnt", "aint":
		return true
	}
	return strings.HasSuffix(w, "n't")
}

// Vector is a sparse input vector: strictly increasing indices.
type Vector struct {
	Idx []int32
	Val []float32
}

// bucket hashes a token or token pair with FNV-1a.
func bucket(a, b string, bits int) uint32 {
	const off, prime = 2166136261, 16777619
	h := uint32(off)
	for i := 0; i < len(a); i++ {
		h = (h ^ uint32(a[i])) * prime
	}
	if b != "" {
		h *= prime // FNV-1a of a 0 separator byte (h ^ 0 is h)
		for i := 0; i < len(b); i++ {
			h = (h ^ uint32(b[i])) * prime
		}
	}
	return h & (1<<bits - 1)
}

// add sets the column of a hashed feature, if the model has one.
func (f *Featurizer) add(set map[int32]float32, a, b string) {
	k := bucket(a, b, f.cfg.HashBits)
	if f.vocab == nil {
		set[int32(k)] = 1
	} else if c, ok := f.vocab[k]; ok {
		set[c] = 1
	}
}

// Featurize returns the sparse features of text. It never fails: empty or
// unreadable text yields only the no-evidence feature.
func (f *Featurizer) Featurize(text string) Vector {
	toks := tokenize(Normalize(text, f.max))
	nb := f.cols
	if f.vocab == nil {
		nb = int32(1 << f.cfg.HashBits)
	}
	set := map[int32]float32{}
	var lexPos, lexNeg, nPos, nNeg, excl float64
	evidence := false
	nwords := 0
	scope := 0
	prev := "<s>"
	for _, t := range toks {
		if t.punct {
			scope = 0
			if t.s == "!" {
				excl++
			}
			prev = t.s
			continue
		}
		w := t.s
		nwords++
		neg := scope > 0
		if neg {
			scope--
		}
		if isNegator(w) {
			scope = f.cfg.NegationScope
			neg = false
		}
		tok := w
		if neg {
			tok = "NOT_" + w
		}
		f.add(set, tok, "")
		if f.cfg.Stems && len(w) > 6 && !strings.HasPrefix(w, "emoji:") {
			st := w
			if n := stemLen(w); n < len(w) {
				st = w[:n]
			}
			if neg {
				st = "NOT_" + st
			}
			f.add(set, "stem:"+st, "")
		}
		if f.cfg.Bigrams {
			f.add(set, prev, tok)
		}
		prev = tok
		if strings.HasPrefix(w, "emoji:") {
			evidence = true
			if w == "emoji:pos" {
				lexPos += 2
				nPos++
			} else {
				lexNeg += 2
				nNeg++
			}
			continue
		}
		if f.lex != nil {
			if v, ok := f.lex[w]; ok && v != 0 {
				evidence = true
				if neg {
					v = -0.74 * v // VADER's negation scalar
				}
				f.add(set, "lex:"+strconv.Itoa(int(math.Round(v))), "")
				if v > 0 {
					f.add(set, "lex:pos", "")
					lexPos += v
					nPos++
				} else {
					f.add(set, "lex:neg", "")
					lexNeg -= v
					nNeg++
				}
			}
		}
	}
	if f.cfg.Bigrams && prev != "<s>" {
		f.add(set, prev, "</s>")
	}
	out := Vector{Idx: make([]int32, 0, len(set)+NumDense), Val: make([]float32, 0, len(set)+NumDense)}
	for k := range set {
		out.Idx = append(out.Idx, k)
	}
	slices.Sort(out.Idx)
	hv := float32(1)
	if f.cfg.Norm {
		hv = float32(1 / math.Sqrt(float64(1+nwords)))
	}
	for range out.Idx {
		out.Val = append(out.Val, hv)
	}
	dense := [NumDense]float64{
		fLexPos: lexPos / 4, fLexNeg: lexNeg / 4, fLexPosN: min(nPos, 3) / 3, fLexNegN: min(nNeg, 3) / 3,
		fExclaim: min(excl, 3) / 3,
	}
	if !evidence {
		dense[NoEvidence] = 1
	}
	for i, v := range dense {
		if v != 0 {
			out.Idx = append(out.Idx, nb+int32(i))
			out.Val = append(out.Val, float32(v))
		}
	}
	return out
}

// Scatter writes the features into x (len Dim), which must be zero on entry.
func (fs Vector) Scatter(x []float32) {
	for i, k := range fs.Idx {
		x[k] = fs.Val[i]
	}
}

// stemLen is the byte length of the first five runes of w.
func stemLen(w string) int {
	n := 0
	for i := range w {
		if n == 5 {
			return i
		}
		n++
	}
	return len(w)
}
