// Package peer is the air-gapped side of the radio path: it turns requests
// that arrived over the link into answers — sentiment from the on-device
// classifier, or an echo for raw link tests. It never sees NATS or a network.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
)

// Classifier labels text. inference.Classifier satisfies it through Sentiment.
type Classifier interface {
	Classify(ctx context.Context, text string) (exchange.Sentiment, error)
}

// ClassifierFunc adapts a function to Classifier.
type ClassifierFunc func(ctx context.Context, text string) (exchange.Sentiment, error)

func (f ClassifierFunc) Classify(ctx context.Context, text string) (exchange.Sentiment, error) {
	return f(ctx, text)
}

// Opts configures a Handler.
type Opts struct {
	// Logger receives one debug line per request. Nil discards.
	Logger *slog.Logger
	// Echo answers raw requests with their own bytes. Zero (false) answers
	// them with an error, for peers that should only classify.
	Echo bool
}

// Handler answers link requests. It is safe for concurrent use.
type Handler struct {
	classifier Classifier
	opts       Opts
	log        *slog.Logger

	served   atomic.Int64
	failed   atomic.Int64
	inferDur atomic.Int64 // total classification time, ns
}

// New returns a Handler backed by c.
func New(c Classifier, opts *Opts) (*Handler, error) {
	if c == nil {
		return nil, errors.New("peer: a classifier is required")
	}
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{classifier: c, opts: o, log: o.Logger}, nil
}

// Handle returns the encoded reply to one encoded request. Failures become
// error replies of their class so the relay learns what went wrong and
// what to do: a request this peer does not carry out is refused
// (chunking.CodeRefused), a classifier that fails is a handler failure
// (chunking.CodeHandler). Handle itself only returns an error when ctx
// ended.
func (h *Handler) Handle(ctx context.Context, req []byte) ([]byte, error) {
	kind, body, err := exchange.DecodeRequest(req)
	if err != nil {
		return h.fail(chunking.CodeRefused, err.Error()), nil
	}
	switch kind {
	case exchange.KindSentiment:
		if !utf8.Valid(body) {
			return h.fail(chunking.CodeRefused, "text is not valid UTF-8"), nil
		}
		start := time.Now()
		s, err := h.classifier.Classify(ctx, string(body))
		h.inferDur.Add(int64(time.Since(start)))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return h.fail(chunking.CodeHandler, fmt.Sprintf("classify: %v", err)), nil
		}
		out, err := exchange.EncodeSentiment(s)
		if err != nil {
			return h.fail(chunking.CodeHandler, err.Error()), nil
		}
		h.served.Add(1)
		h.log.Debug("classified", "label", s.Label, "bytes", len(body), "infer_us", time.Since(start).Microseconds())
		return exchange.EncodeReply(out), nil
	case exchange.KindRaw:
		if !h.opts.Echo {
			return h.fail(chunking.CodeRefused, "raw requests are disabled on this peer"), nil
		}
		h.served.Add(1)
		return exchange.EncodeReply(body), nil
	}
	return h.fail(chunking.CodeRefused, "unsupported request"), nil
}

// fail counts a failed request and encodes its error answer.
func (h *Handler) fail(code chunking.Code, msg string) []byte {
	h.failed.Add(1)
	return exchange.EncodeError(code, msg)
}

// Stats are the handler's counters since start.
type Stats struct {
	Served, Failed int64
	Inference      time.Duration // total time spent classifying
}

// Stats returns the counters.
func (h *Handler) Stats() Stats {
	return Stats{Served: h.served.Load(), Failed: h.failed.Load(), Inference: time.Duration(h.inferDur.Load())}
}
