package inference

import (
	_ "embed"
	"slices"
)

// defaultModel is the model New loads when Opts.Model is nil. `make model`
// rebuilds it from the shipped data (package train), byte for byte.
//
//go:embed model/default.onnx
var defaultModel []byte

// DefaultModel returns a copy of the embedded default model file, the one
// New loads when Opts.Model is nil.
func DefaultModel() []byte { return slices.Clone(defaultModel) }
