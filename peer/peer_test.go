package peer

import (
	"context"
	"errors"
	"testing"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
)

func TestHandle(t *testing.T) {
	calls := 0
	c := ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
		calls++
		if text == "boom" {
			return exchange.Sentiment{}, errors.New("model exploded")
		}
		return exchange.Sentiment{Label: "positive", Scores: map[string]float64{"positive": 0.9, "neutral": 0.05, "negative": 0.05}}, nil
	})
	h, err := New(c, &Opts{Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		req       []byte
		wantLabel string
		wantEcho  string
		wantErr   string
		wantClass error
	}{
		{"sentiment", exchange.EncodeRequest(exchange.KindSentiment, []byte("great")), "positive", "", "", nil},
		{"echo", exchange.EncodeRequest(exchange.KindRaw, []byte("ping")), "", "ping", "", nil},
		{"classifier error", exchange.EncodeRequest(exchange.KindSentiment, []byte("boom")), "", "", "peer: classify: model exploded", chunking.ErrHandler},
		{"invalid utf-8", exchange.EncodeRequest(exchange.KindSentiment, []byte{0xff, 0xfe}), "", "", "peer: text is not valid UTF-8", chunking.ErrRefused},
		{"garbage", []byte("?"), "", "", "peer: exchange: unknown request kind 0x3f", chunking.ErrRefused},
		{"empty", nil, "", "", "peer: exchange: empty message", chunking.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.Handle(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := exchange.DecodeReply(out)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				if !errors.Is(err, tc.wantClass) {
					t.Fatalf("got %v, want class %v", err, tc.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantEcho != "" {
				if string(body) != tc.wantEcho {
					t.Fatalf("echo %q, want %q", body, tc.wantEcho)
				}
				return
			}
			s, err := exchange.DecodeSentiment(body)
			if err != nil || s.Label != tc.wantLabel {
				t.Fatalf("got %+v %v, want %s", s, err, tc.wantLabel)
			}
		})
	}
	if st := h.Stats(); st.Served != 2 || st.Failed != 4 || calls != 2 {
		t.Errorf("stats %+v calls %d, want 2 served 4 failed 2 calls", st, calls)
	}
	noEcho, _ := New(c, nil)
	out, _ := noEcho.Handle(context.Background(), exchange.EncodeRequest(exchange.KindRaw, []byte("x")))
	if _, err := exchange.DecodeReply(out); !errors.Is(err, chunking.ErrRefused) {
		t.Errorf("raw request with echo disabled: got %v, want a refusal", err)
	}
}
