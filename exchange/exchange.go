// Package exchange defines the application messages the relay and the peer
// trade over the radio link. They are compact on purpose: every byte costs
// airtime at 5 kbit/s, so a sentiment answer is 7 bytes, not a JSON document.
//
// Request:  kind (1 byte) | body
// Reply:    status (1 byte) | body (ok) or UTF-8 message (error)
// Status:   0 ok, else the error's class, a chunking.Code: 1 the handler
// failed, 2 the peer is busy, 3 the peer refuses the request.
// Sentiment reply body: label (1 byte) | negative, neutral, positive scores,
// each a big-endian uint16 fraction of 65535.
//
// An error reply decodes to the link's own *chunking.RemoteError, so a
// caller tells a busy peer from a refusal or a failed handler the same way
// whether the link or the peer's application answered: errors.Is with
// chunking.ErrPeerBusy, ErrRefused or ErrHandler.
package exchange

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/nexfield/nexfield/chunking"
)

// Kind says what the peer should do with a request.
type Kind byte

const (
	// KindSentiment asks the peer to classify the UTF-8 text in the body.
	KindSentiment Kind = 's'
	// KindRaw is delivered to the peer's raw handler; the stock peer echoes it,
	// which makes it a link test.
	KindRaw Kind = 'r'
)

func (k Kind) String() string {
	switch k {
	case KindSentiment:
		return "sentiment"
	case KindRaw:
		return "raw"
	}
	return fmt.Sprintf("kind(%#x)", byte(k))
}

// Errors returned by the decoders.
var (
	ErrEmpty       = errors.New("exchange: empty message")
	ErrUnknownKind = errors.New("exchange: unknown request kind")
	ErrMalformed   = errors.New("exchange: malformed message")
)

// EncodeRequest frames body as a request of kind k.
func EncodeRequest(k Kind, body []byte) []byte {
	out := make([]byte, 1+len(body))
	out[0] = byte(k)
	copy(out[1:], body)
	return out
}

// DecodeRequest splits a request into its kind and body. The body aliases b.
func DecodeRequest(b []byte) (Kind, []byte, error) {
	if len(b) == 0 {
		return 0, nil, ErrEmpty
	}
	k := Kind(b[0])
	switch k {
	case KindSentiment, KindRaw:
		return k, b[1:], nil
	}
	return 0, nil, fmt.Errorf("%w %#x", ErrUnknownKind, b[0])
}

// statusOK marks a successful reply; any other status is a chunking.Code.
const statusOK = 0

// EncodeReply frames a successful answer.
func EncodeReply(body []byte) []byte {
	out := make([]byte, 1+len(body))
	out[0] = statusOK
	copy(out[1:], body)
	return out
}

// maxErrorLen keeps error replies to one short frame.
const maxErrorLen = 120

// EncodeError frames an error answer of class code; long messages are cut
// on a rune boundary.
func EncodeError(code chunking.Code, msg string) []byte {
	if len(msg) > maxErrorLen {
		cut := maxErrorLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return append([]byte{byte(code)}, msg...)
}

// DecodeReply returns the body of a successful reply, or the peer's error
// answer as a *chunking.RemoteError.
func DecodeReply(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	switch c := chunking.Code(b[0]); c {
	case statusOK:
		return b[1:], nil
	case chunking.CodeHandler, chunking.CodeBusy, chunking.CodeRefused:
		return nil, &chunking.RemoteError{Code: c, Msg: string(b[1:])}
	}
	return nil, fmt.Errorf("%w: status %#x", ErrMalformed, b[0])
}

// Labels in the order their scores are encoded.
var labels = [...]string{"negative", "neutral", "positive"}

// Sentiment is a classifier's answer as it crosses the air.
type Sentiment struct {
	Label  string
	Scores map[string]float64 // "negative", "neutral", "positive"
}

// SentimentSize is the encoded size of a Sentiment.
const SentimentSize = 7

// EncodeSentiment packs s into SentimentSize bytes. Scores are clamped to
// [0,1]; a score resolution of 1/65535 is far finer than the model's.
func EncodeSentiment(s Sentiment) ([]byte, error) {
	idx := -1
	for i, l := range labels {
		if l == s.Label {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("exchange: unknown label %q", s.Label)
	}
	out := make([]byte, SentimentSize)
	out[0] = byte(idx)
	for i, l := range labels {
		v := s.Scores[l]
		if math.IsNaN(v) {
			return nil, fmt.Errorf("exchange: score %s is NaN", l)
		}
		v = math.Max(0, math.Min(1, v))
		binary.BigEndian.PutUint16(out[1+2*i:], uint16(math.Round(v*65535)))
	}
	return out, nil
}

// DecodeSentiment unpacks what EncodeSentiment produced.
func DecodeSentiment(b []byte) (Sentiment, error) {
	if len(b) != SentimentSize {
		return Sentiment{}, fmt.Errorf("%w: sentiment answer is %d bytes, want %d", ErrMalformed, len(b), SentimentSize)
	}
	if int(b[0]) >= len(labels) {
		return Sentiment{}, fmt.Errorf("%w: label %d", ErrMalformed, b[0])
	}
	s := Sentiment{Label: labels[b[0]], Scores: make(map[string]float64, len(labels))}
	for i, l := range labels {
		s.Scores[l] = float64(binary.BigEndian.Uint16(b[1+2*i:])) / 65535
	}
	return s, nil
}
