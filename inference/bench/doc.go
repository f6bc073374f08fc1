// Package bench measures the sentiment classifier on the held-out fold of
// the shipped sentences, next to the AFINN and VADER baselines on the same
// sentences: accuracy, latency, the onnx-go/plain-Go ratio, model size and
// load time (`nexfield bench inference`).
package bench
