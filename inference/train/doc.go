// Package train rebuilds the sentiment model from the shipped labelled
// sentences (the UCI Sentiment Labelled Sentences and the VADER ground
// truth, embedded from data/) and reports its accuracy on the held-out fold.
//
// Run is deterministic: fixed data order, a splitmix64 shuffle, no map in
// any order-dependent step and products rounded explicitly, so every
// architecture writes the same bytes and `make model` reproduces the model
// embedded in package inference.
package train
