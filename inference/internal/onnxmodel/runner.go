package onnxmodel

import (
	"fmt"

	onnx "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// Runner is one onnx-go instance of a model with its reusable input buffer.
// A gorgonnx graph is not goroutine-safe, so a Runner serves one caller at
// a time; its outputs alias internal buffers, so Run copies them out.
type Runner struct {
	backend *gorgonnx.Graph
	model   *onnx.Model
	x       []float32
	in      tensor.Tensor
	last    []int32
}

// NewRunner builds an onnx-go instance of m and runs it once, so a file
// onnx-go cannot execute fails here (wrapping ErrBadModel), not later.
func NewRunner(m *Model) (r *Runner, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%w: onnx-go: %v", ErrBadModel, p)
		}
	}()
	backend := gorgonnx.NewGraph()
	om := onnx.NewModel(backend)
	if err := om.UnmarshalBinary(m.Raw); err != nil {
		return nil, fmt.Errorf("%w: onnx-go: %v", ErrBadModel, err)
	}
	x := make([]float32, m.Dim)
	r = &Runner{backend: backend, model: om, x: x,
		in: tensor.New(tensor.WithShape(1, m.Dim), tensor.WithBacking(x))}
	// One run proves the graph executes before anyone depends on it.
	if _, err := r.Run(features.Vector{}); err != nil {
		return nil, err
	}
	return r, nil
}

// Run scores fs; the output is copied out of onnx-go's buffers. Only the
// inputs the previous call set are zeroed, not the whole vector.
func (r *Runner) Run(fs features.Vector) (p [3]float64, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("inference: onnx-go: %v", e)
		}
	}()
	for _, k := range r.last {
		r.x[k] = 0
	}
	fs.Scatter(r.x)
	r.last = append(r.last[:0], fs.Idx...)
	if err := r.model.SetInput(0, r.in); err != nil {
		return p, fmt.Errorf("inference: set input: %w", err)
	}
	if err := r.backend.Run(); err != nil {
		return p, fmt.Errorf("inference: run: %w", err)
	}
	out, err := r.model.GetOutputTensors()
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
