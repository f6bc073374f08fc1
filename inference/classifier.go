package inference

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/nexfield/nexfield/inference/internal/classify"
	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// ErrClosed is returned by Classify after Close.
var ErrClosed = classify.ErrClosed

// ErrInvalidOpts wraps option errors.
var ErrInvalidOpts = classify.ErrInvalidOpts

// ErrBadModel wraps every reason a model file is rejected.
var ErrBadModel = onnxmodel.ErrBadModel

// MaxModelBytes bounds what the loader reads; the default model is ~140 KB.
const MaxModelBytes = onnxmodel.MaxModelBytes

// DefaultMaxInputBytes is the text length the featurizer reads; the rest is
// ignored (see FeaturizerConfig.MaxInputBytes).
const DefaultMaxInputBytes = features.DefaultMaxInputBytes

// FeaturizerConfig describes how text becomes the model's input vector; it
// travels inside the model file, so a model never runs with features it was
// not trained on.
type FeaturizerConfig = features.Config

// Result is one classification: Label is "positive", "neutral" or
// "negative", and Scores holds the probability of each label (they sum to
// 1). Its fields match exchange.Sentiment one for one, so the peer converts
// it without copying.
type Result = classify.Result

// Opts configures a Classifier. The zero value runs the embedded model
// through onnx-go with one instance per CPU.
type Opts struct {
	// Model is an ONNX model written by `nexfield train` (package train) or
	// compatible. Nil uses the embedded default model.
	Model []byte
	// Instances is the number of onnx-go model instances shared by
	// concurrent callers (an instance is not goroutine-safe). Zero means
	// runtime.GOMAXPROCS(0).
	Instances int
	// PlainGo scores with the Go forward pass of the same weights instead of
	// onnx-go. Zero (false) uses onnx-go.
	PlainGo bool
	// Logger receives load information. Nil discards.
	Logger *slog.Logger
}

// Classifier labels text as positive, neutral or negative. It is safe for
// concurrent use.
type Classifier struct{ c *classify.Classifier }

// New loads and validates the model and builds the instance pool.
func New(opts *Opts) (*Classifier, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	raw := o.Model
	if raw == nil {
		raw = defaultModel
	}
	c, err := classify.New(classify.Opts{Model: raw, Instances: o.Instances, PlainGo: o.PlainGo, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return &Classifier{c: c}, nil
}

// Classify labels text. Any string is accepted: input beyond the model's
// byte limit is ignored, invalid UTF-8 and control characters are dropped,
// and text with no words comes out neutral. It blocks only while every
// instance is busy, and returns ctx.Err() if ctx ends first.
func (c *Classifier) Classify(ctx context.Context, text string) (Result, error) {
	return c.c.Classify(ctx, text)
}

func (c *Classifier) String() string { return c.c.String() }

// Close makes later Classify calls fail with ErrClosed. Idempotent.
func (c *Classifier) Close() error { return c.c.Close() }

// ReadModelFile reads a user model, refusing files over MaxModelBytes.
func ReadModelFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	if st.Size() > MaxModelBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrBadModel, path, st.Size(), MaxModelBytes)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("inference: read %s: %w", path, err)
	}
	return b, nil
}
