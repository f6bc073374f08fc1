// Package baseline holds the two lexicon sentiment scorers the model is
// measured against in `nexfield bench inference`: AFINN-165 as the npm
// package sentiment@5.0.2 applies it, and the rules of the reference VADER.
// Neither is used by the classifier; the field binary does not link them.
package baseline
