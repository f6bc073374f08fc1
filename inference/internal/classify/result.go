package classify

import "github.com/nexfield/nexfield/inference/internal/onnxmodel"

// Result is one classification. Its fields match exchange.Sentiment one for
// one, so the peer converts it without copying; keep them so.
type Result struct {
	// Label is "positive", "neutral" or "negative".
	Label string
	// Scores holds the probability of each label; they sum to 1.
	Scores map[string]float64
}

func resultOf(p [3]float64) Result {
	labels := onnxmodel.Labels
	return Result{Label: labels[onnxmodel.Argmax(p)], Scores: map[string]float64{
		labels[0]: p[0], labels[1]: p[1], labels[2]: p[2],
	}}
}
