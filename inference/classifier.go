package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// ErrClosed is returned by Classify after Close.
var ErrClosed = errors.New("inference: classifier closed")

// ErrInvalidOpts wraps option errors.
var ErrInvalidOpts = errors.New("inference: invalid options")

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

// Opts configures a Classifier. The zero value runs the embedded model
// through onnx-go with one instance per CPU.
type Opts struct {
	// Model is an ONNX model written by Train (or compatible). Nil uses the
	// embedded default model.
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
type Classifier struct {
	m        *onnxmodel.Model
	pool     chan *onnxmodel.Runner
	plainGo  bool
	n        int
	loadTime time.Duration
	closed   chan struct{}
	once     sync.Once
}

// New loads and validates the model and builds the instance pool.
func New(opts *Opts) (*Classifier, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Instances < 0 {
		return nil, fmt.Errorf("%w: instances %d", ErrInvalidOpts, o.Instances)
	}
	if o.Instances == 0 {
		o.Instances = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	raw := o.Model
	if raw == nil {
		raw = defaultModel
	}
	start := time.Now()
	m, err := onnxmodel.Parse(raw, features.VADER())
	if err != nil {
		return nil, err
	}
	c := &Classifier{m: m, plainGo: o.PlainGo, closed: make(chan struct{})}
	if !o.PlainGo {
		c.n = o.Instances
		c.pool = make(chan *onnxmodel.Runner, o.Instances)
		for range o.Instances {
			r, err := onnxmodel.NewRunner(m)
			if err != nil {
				return nil, err
			}
			c.pool <- r
		}
	}
	c.loadTime = time.Since(start)
	o.Logger.Debug("model loaded", "dim", m.Dim, "model_bytes", len(raw),
		"instances", c.n, "load_ms", float64(c.loadTime.Microseconds())/1000)
	return c, nil
}

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

// Classify labels text. Any string is accepted: input beyond the model's
// byte limit is ignored, invalid UTF-8 and control characters are dropped,
// and text with no words comes out neutral. It blocks only while every
// instance is busy, and returns ctx.Err() if ctx ends first.
func (c *Classifier) Classify(ctx context.Context, text string) (Result, error) {
	p, err := c.scores(ctx, text)
	if err != nil {
		return Result{}, err
	}
	return resultOf(p), nil
}

func (c *Classifier) scores(ctx context.Context, text string) ([3]float64, error) {
	select {
	case <-c.closed:
		return [3]float64{}, ErrClosed
	default:
	}
	fs := c.m.Featurize(text)
	if c.plainGo {
		return c.m.ScoreGo(fs), nil
	}
	var r *onnxmodel.Runner
	select {
	case r = <-c.pool:
	case <-ctx.Done():
		return [3]float64{}, ctx.Err()
	case <-c.closed:
		return [3]float64{}, ErrClosed
	}
	p, err := r.Run(fs)
	c.pool <- r
	return p, err
}

// Config returns the featurizer configuration carried by the model.
func (c *Classifier) Config() FeaturizerConfig { return c.m.Config }

// ModelSize is the model file's size in bytes.
func (c *Classifier) ModelSize() int { return len(c.m.Raw) }

// LoadTime is how long New took to validate the model and build the pool.
func (c *Classifier) LoadTime() time.Duration { return c.loadTime }

func (c *Classifier) String() string {
	be := "onnx-go"
	if c.plainGo {
		be = "go"
	}
	return fmt.Sprintf("inference{%s, dim=%d, %d bytes}", be, c.m.Dim, len(c.m.Raw))
}

// Close makes later Classify calls fail with ErrClosed. Idempotent.
func (c *Classifier) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
