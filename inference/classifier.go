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

	onnx "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"
)

// ErrClosed is returned by Classify after Close.
var ErrClosed = errors.New("inference: classifier closed")

// ErrInvalidOpts wraps option errors.
var ErrInvalidOpts = errors.New("inference: invalid options")

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
	m        *model
	pool     chan *instance
	plainGo  bool
	n        int
	loadTime time.Duration
	closed   chan struct{}
	once     sync.Once
}

// instance is one onnx-go model with its reusable input buffer.
type instance struct {
	backend *gorgonnx.Graph
	model   *onnx.Model
	x       []float32
	in      tensor.Tensor
	last    []int32
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
	m, err := parseModel(raw, parseLexicon(vaderTSV))
	if err != nil {
		return nil, err
	}
	c := &Classifier{m: m, plainGo: o.PlainGo, closed: make(chan struct{})}
	if !o.PlainGo {
		c.n = o.Instances
		c.pool = make(chan *instance, o.Instances)
		for range o.Instances {
			in, err := newInstance(m)
			if err != nil {
				return nil, err
			}
			c.pool <- in
		}
	}
	c.loadTime = time.Since(start)
	o.Logger.Debug("model loaded", "dim", m.dim, "model_bytes", len(raw),
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

func newInstance(m *model) (in *instance, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("%w: onnx-go: %v", ErrBadModel, r)
		}
	}()
	backend := gorgonnx.NewGraph()
	om := onnx.NewModel(backend)
	if err := om.UnmarshalBinary(m.raw); err != nil {
		return nil, fmt.Errorf("%w: onnx-go: %v", ErrBadModel, err)
	}
	x := make([]float32, m.dim)
	in = &instance{backend: backend, model: om, x: x,
		in: tensor.New(tensor.WithShape(1, m.dim), tensor.WithBacking(x))}
	// One run proves the graph executes before anyone depends on it.
	if _, err := in.run(m, features{}); err != nil {
		return nil, err
	}
	return in, nil
}

// run scores fs; the output is copied out of onnx-go's buffers.
func (in *instance) run(m *model, fs features) (p [3]float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("inference: onnx-go: %v", r)
		}
	}()
	for _, k := range in.last {
		in.x[k] = 0
	}
	fs.scatter(in.x)
	in.last = append(in.last[:0], fs.idx...)
	if err := in.model.SetInput(0, in.in); err != nil {
		return p, fmt.Errorf("inference: set input: %w", err)
	}
	if err := in.backend.Run(); err != nil {
		return p, fmt.Errorf("inference: run: %w", err)
	}
	out, err := in.model.GetOutputTensors()
	if err != nil {
		return p, fmt.Errorf("inference: output: %w", err)
	}
	if len(out) != 1 {
		return p, fmt.Errorf("inference: %d outputs, want 1", len(out))
	}
	d, ok := out[0].Data().([]float32)
	if !ok || len(d) != 3 {
		return p, fmt.Errorf("inference: output is %T of wrong size", out[0].Data())
	}
	for j := range p {
		p[j] = float64(d[j])
	}
	return p, nil
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
	fs := c.m.feat.featurize(text)
	if c.plainGo {
		return c.m.scoreGo(fs), nil
	}
	var in *instance
	select {
	case in = <-c.pool:
	case <-ctx.Done():
		return [3]float64{}, ctx.Err()
	case <-c.closed:
		return [3]float64{}, ErrClosed
	}
	p, err := in.run(c.m, fs)
	c.pool <- in
	return p, err
}

// Config returns the featurizer configuration carried by the model.
func (c *Classifier) Config() FeaturizerConfig { return c.m.cfg }

// ModelSize is the model file's size in bytes.
func (c *Classifier) ModelSize() int { return len(c.m.raw) }

// LoadTime is how long New took to validate the model and build the pool.
func (c *Classifier) LoadTime() time.Duration { return c.loadTime }

func (c *Classifier) String() string {
	be := "onnx-go"
	if c.plainGo {
		be = "go"
	}
	return fmt.Sprintf("inference{%s, dim=%d, %d bytes}", be, c.m.dim, len(c.m.raw))
}

// Close makes later Classify calls fail with ErrClosed. Idempotent.
func (c *Classifier) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
