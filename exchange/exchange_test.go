package exchange

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/chunking"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		body []byte
	}{
		{KindSentiment, []byte("Rethink Con is great")},
		{KindRaw, []byte{0, 1, 2, 0xff}},
		{KindRaw, nil},
	} {
		k, body, err := DecodeRequest(EncodeRequest(tc.kind, tc.body))
		if err != nil || k != tc.kind || !bytes.Equal(body, tc.body) {
			t.Errorf("round trip %v %q: got %v %q %v", tc.kind, tc.body, k, body, err)
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	if _, _, err := DecodeRequest(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: got %v, want ErrEmpty", err)
	}
	if _, _, err := DecodeRequest([]byte("x")); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown: got %v, want ErrUnknownKind", err)
	}
}

func TestReply(t *testing.T) {
	body, err := DecodeReply(EncodeReply([]byte("ok")))
	if err != nil || string(body) != "ok" {
		t.Fatalf("got %q %v", body, err)
	}
	long := strings.Repeat("é", 100) // 200 bytes, cut on a rune boundary
	_, err = DecodeReply(EncodeError(chunking.CodeHandler, long))
	var re *chunking.RemoteError
	if !errors.As(err, &re) || len(re.Msg) > maxErrorLen || !strings.HasPrefix(long, re.Msg) {
		t.Fatalf("got %v, want a RemoteError with a prefix of the message", err)
	}
	for _, tc := range []struct {
		code chunking.Code
		want error
	}{
		{chunking.CodeHandler, chunking.ErrHandler},
		{chunking.CodeBusy, chunking.ErrPeerBusy},
		{chunking.CodeRefused, chunking.ErrRefused},
	} {
		_, err := DecodeReply(EncodeError(tc.code, "no"))
		if !errors.As(err, &re) || re.Code != tc.code || !errors.Is(err, tc.want) {
			t.Errorf("code %v: got %v, want a RemoteError matching %v", tc.code, err, tc.want)
		}
	}
	if _, err := DecodeReply([]byte{9}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad status: got %v", err)
	}
}

func TestSentimentRoundTrip(t *testing.T) {
	in := Sentiment{Label: "positive", Scores: map[string]float64{"negative": 0.05, "neutral": 0.15, "positive": 0.8}}
	b, err := EncodeSentiment(in)
	if err != nil || len(b) != SentimentSize {
		t.Fatalf("encode: %v %d", err, len(b))
	}
	out, err := DecodeSentiment(b)
	if err != nil || out.Label != in.Label {
		t.Fatalf("decode: %+v %v", out, err)
	}
	for k, v := range in.Scores {
		if math.Abs(out.Scores[k]-v) > 1.0/65535 {
			t.Errorf("score %s: got %v, want %v", k, out.Scores[k], v)
		}
	}
	if _, err := EncodeSentiment(Sentiment{Label: "meh"}); err == nil {
		t.Error("unknown label encoded")
	}
	if _, err := EncodeSentiment(Sentiment{Label: "neutral", Scores: map[string]float64{"neutral": math.NaN()}}); err == nil {
		t.Error("NaN score encoded")
	}
	if _, err := DecodeSentiment([]byte{7, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad label index: got %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes from the air to every decoder.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("sRethink Con is great"))
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0xff, 0xff})
	f.Add([]byte{1, 'b', 'u', 's', 'y'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, body, err := DecodeRequest(b); err == nil {
			if !bytes.Equal(EncodeRequest(k, body), b) {
				t.Fatalf("request does not re-encode")
			}
		}
		if body, err := DecodeReply(b); err == nil {
			if s, err := DecodeSentiment(body); err == nil {
				if _, err := EncodeSentiment(s); err != nil {
					t.Fatalf("decoded sentiment does not encode: %v", err)
				}
			}
		}
	})
}
