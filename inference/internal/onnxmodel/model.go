package onnxmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// Labels in the order of the model's output columns.
var Labels = [3]string{"negative", "neutral", "positive"}

// ErrBadModel wraps every reason a model file is rejected.
var ErrBadModel = errors.New("inference: bad model")

// MaxModelBytes bounds what the loader reads; the default model is ~140 KB.
const MaxModelBytes = 64 << 20

// Model is a validated linear model: the ONNX bytes for onnx-go and the same
// weights for the plain-Go scorer. It is read-only after Parse.
type Model struct {
	Raw    []byte
	Config features.Config
	Dim    int
	W      []float32 // Dim×3, row-major, as in the ONNX initializer
	B      [3]float32
	feat   *features.Featurizer
}

// Parse checks everything onnx-go does not: opset, graph shape, names,
// operators and the featurizer config, so a wrong file fails with a reason.
// vader is the lexicon a config with Lexicon "vader" uses.
func Parse(raw []byte, vader features.Lexicon) (*Model, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadModel}, a...)...)
	}
	if len(raw) == 0 {
		return nil, bad("empty file")
	}
	if len(raw) > MaxModelBytes {
		return nil, bad("%d bytes, limit %d", len(raw), MaxModelBytes)
	}
	info, err := inspectONNX(raw)
	if err != nil {
		return nil, bad("not an ONNX model: %v", err)
	}
	if info.opset < 7 || info.opset > 13 {
		return nil, bad("opset %d, want 7..13 (default domain)", info.opset)
	}
	metaJSON, ok := info.meta[metaFeaturizer]
	if !ok {
		return nil, bad("no featurizer config (metadata key %q)", metaFeaturizer)
	}
	var cfg features.Config
	if err := json.Unmarshal([]byte(metaJSON), &cfg); err != nil {
		return nil, bad("featurizer config: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, bad("featurizer config: %v", err)
	}
	dim := cfg.Dim()
	if len(info.inputs) != 1 {
		return nil, bad("%d graph inputs, want 1 (%q)", len(info.inputs), InputName)
	}
	in, ok := info.inputs[InputName]
	if !ok {
		return nil, bad("graph input is not named %q", InputName)
	}
	if !slices.Equal(in, []int64{1, int64(dim)}) {
		return nil, bad("input %q has shape %v, want [1 %d] for this featurizer config", InputName, in, dim)
	}
	out, ok := info.outputs[OutputName]
	if !ok || len(info.outputs) != 1 {
		return nil, bad("want exactly one output named %q", OutputName)
	}
	if !slices.Equal(out, []int64{1, 3}) {
		return nil, bad("output %q has shape %v, want [1 3] (negative, neutral, positive)", OutputName, out)
	}
	if !slices.Equal(info.ops, []string{"MatMul", "Add", "Softmax"}) {
		return nil, bad("operators %v, want [MatMul Add Softmax] (Gemm is not accepted: the runtime's Gemm corrupts its bias)", info.ops)
	}
	w, okW := info.inits["W"]
	b, okB := info.inits["B"]
	if !okW || !okB {
		return nil, bad("initializers W and B are required")
	}
	if !slices.Equal(w.dims, []int64{int64(dim), 3}) || len(w.data) != dim*3 {
		return nil, bad("W has shape %v with %d values, want [%d 3]", w.dims, len(w.data), dim)
	}
	if !slices.Equal(b.dims, []int64{3}) || len(b.data) != 3 {
		return nil, bad("B has shape %v with %d values, want [3]", b.dims, len(b.data))
	}
	for _, v := range append(slices.Clip(w.data), b.data...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, bad("weights contain NaN or Inf")
		}
	}
	feat, err := features.New(cfg, vader)
	if err != nil {
		return nil, bad("featurizer: %v", err)
	}
	m := &Model{Raw: raw, Config: cfg, Dim: dim, W: w.data, feat: feat}
	copy(m.B[:], b.data)
	return m, nil
}

// Featurize is the model's input vector for text, with the featurizer the
// model file names.
func (m *Model) Featurize(text string) features.Vector { return m.feat.Featurize(text) }

// ScoreGo is the plain-Go forward pass: the oracle for onnx-go and the
// fallback backend. Sparse input makes it a few dozen multiply-adds.
func (m *Model) ScoreGo(fs features.Vector) [3]float64 {
	var l [3]float32
	for i, k := range fs.Idx {
		v := fs.Val[i]
		row := m.W[int(k)*3 : int(k)*3+3]
		l[0] += v * row[0]
		l[1] += v * row[1]
		l[2] += v * row[2]
	}
	for j := range l {
		l[j] += m.B[j]
	}
	return softmax(l)
}

func softmax(l [3]float32) [3]float64 {
	mx := math.Max(float64(l[0]), math.Max(float64(l[1]), float64(l[2])))
	var p [3]float64
	var s float64
	for j := range l {
		p[j] = math.Exp(float64(l[j]) - mx)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
	return p
}

// Argmax is the output column of the label; ties go to the lower column.
func Argmax(p [3]float64) int {
	best := 0
	for j := 1; j < 3; j++ {
		if p[j] > p[best] {
			best = j
		}
	}
	return best
}
