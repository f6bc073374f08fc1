// Package features turns a short text into the sparse input vector of the
// sentiment model: normalisation, tokens, emoticons and emoji, negation
// scope, hashed unigrams, bigrams and stems, and VADER lexicon features.
//
// The runtime classifier, the trainer and the bench all featurize through
// this one package, so a model is always run on the features it was trained
// on; the Config that describes them travels inside the model file.
package features
