// Package classify is the classifier behind package inference: a validated
// model, a pool of onnx-go instances (or the plain-Go pass) shared by
// concurrent callers, and Classify. Package inference is its public face,
// with the embedded default model; the bench uses this package directly so
// it can time featurisation and one forward pass on the very model and
// instance it classifies with.
package classify
