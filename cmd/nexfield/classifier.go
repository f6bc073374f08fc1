package main

import (
	"context"

	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/inference"
	"github.com/nexfield/nexfield/peer"
)

// newClassifier loads the sentiment model for the peer: the embedded default,
// or the file given with --model.
func newClassifier(modelPath string) (peer.Classifier, error) {
	var o inference.Opts
	if modelPath != "" {
		b, err := inference.ReadModelFile(modelPath)
		if err != nil {
			return nil, err
		}
		o.Model = b
	}
	c, err := inference.New(&o)
	if err != nil {
		return nil, err
	}
	return peer.ClassifierFunc(func(ctx context.Context, text string) (exchange.Sentiment, error) {
		r, err := c.Classify(ctx, text)
		return exchange.Sentiment(r), err
	}), nil
}
