package classify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Opts are inference.Opts with the model resolved: Model is required.
type Opts struct {
	Model     []byte
	Instances int // zero: runtime.GOMAXPROCS(0)
	PlainGo   bool
	Logger    *slog.Logger // nil discards
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
func New(o Opts) (*Classifier, error) {
	if o.Instances < 0 {
		return nil, fmt.Errorf("%w: instances %d", ErrInvalidOpts, o.Instances)
	}
	if o.Instances == 0 {
		o.Instances = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	m, err := onnxmodel.Parse(o.Model, features.VADER())
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
	o.Logger.Debug("model loaded", "dim", m.Dim, "model_bytes", len(o.Model),
		"instances", c.n, "load_ms", float64(c.loadTime.Microseconds())/1000)
	return c, nil
}

// Classify labels text. Any string is accepted: input beyond the model's
// byte limit is ignored, invalid UTF-8 and control characters are dropped,
// and text with no words comes out neutral. It blocks only while every
// instance is busy, and returns ctx.Err() if ctx ends first.
func (c *Classifier) Classify(ctx context.Context, text string) (Result, error) {
	p, err := c.Scores(ctx, text)
	if err != nil {
		return Result{}, err
	}
	return resultOf(p), nil
}

// Scores is Classify's probability per output column (negative, neutral,
// positive).
func (c *Classifier) Scores(ctx context.Context, text string) ([3]float64, error) {
	select {
	case <-c.closed:
		return [3]float64{}, ErrClosed
	default:
	}
	fs := c.m.Featurize(text)
	if c.plainGo {
		return c.m.ScoreGo(fs), nil
	}
	r, err := c.Acquire(ctx)
	if err != nil {
		return [3]float64{}, err
	}
	p, err := r.Run(fs)
	c.Release(r)
	return p, err
}

// Acquire takes an onnx-go instance from the pool, waiting while every one
// is busy; the caller owns it until Release. It fails with ctx.Err() or
// ErrClosed; a plain-Go classifier has no pool, so there it only waits for
// ctx or Close.
func (c *Classifier) Acquire(ctx context.Context) (*onnxmodel.Runner, error) {
	select {
	case r := <-c.pool:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closed:
		return nil, ErrClosed
	}
}

// Release returns an instance taken with Acquire.
func (c *Classifier) Release(r *onnxmodel.Runner) { c.pool <- r }

// Model is the validated model: its featurizer, weights and plain-Go pass.
func (c *Classifier) Model() *onnxmodel.Model { return c.m }

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
