package inference

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// BenchmarkClassify times one message end to end (featurisation included)
// through onnx-go and through the plain-Go scorer of the same weights.
func BenchmarkClassify(b *testing.B) {
	base := "The relay on the north ridge is working great again, but the battery is not good. "
	for _, n := range []int{32, 128, 1024} {
		text := strings.Repeat(base, n/len(base)+1)[:n]
		for _, be := range []struct {
			name    string
			plainGo bool
		}{{"onnx-go", false}, {"go", true}} {
			b.Run(fmt.Sprintf("len=%d/backend=%s", n, be.name), func(b *testing.B) {
				c := newTest(b, &Opts{Instances: 1, PlainGo: be.plainGo})
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Classify(ctx, text); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/msg")
			})
		}
	}
}

func BenchmarkFeaturize(b *testing.B) {
	m, err := onnxmodel.Parse(defaultModel, features.VADER())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Featurize("Great job team, everything works! Not bad at all :)")
	}
}
