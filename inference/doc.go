// Package inference classifies the sentiment of short texts (positive,
// neutral, negative) on the device, with a linear model run through onnx-go.
//
// Text becomes a sparse vector in Go (normalisation, tokens, emoticons and
// emoji, negation scope, hashed unigrams and bigrams, VADER lexicon
// features) because the gorgonnx backend has no Gather or Reduce operators.
// The model graph is MatMul + Add + Softmax: gorgonnx's Gemm overwrites its
// bias tensor on every run, so the trainer never emits it and the loader
// refuses it. A plain-Go forward pass of the same weights is the test oracle
// and an optional backend.
//
// This package is what a device needs to classify: the embedded default
// model, its loader, the featurizer and the two forward passes. Training
// (package train, `make model`, `nexfield train`, which rebuilds the default
// model deterministically) and the accuracy bench with its lexicon baselines
// (packages bench and baseline) live in sub-packages with their data, so a
// binary that imports only inference links neither. See README.md for the
// measured figures, the neutral calibration and the data licences.
package inference
