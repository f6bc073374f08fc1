package inference

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

func FuzzFeaturize(f *testing.F) {
	for _, s := range []string{"", "Great job :)", "not bad at all!!!", "\xff\xfe\x00", "😀👎 no way", "xd :-( <3 ^_^",
		"don't NOT never... ok?", "a’b '' '"} {
		f.Add(s)
	}
	m, err := onnxmodel.Parse(defaultModel, features.VADER())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs := m.Featurize(s)
		for i, k := range fs.Idx {
			if k < 0 || int(k) >= m.Dim {
				t.Fatalf("index %d out of range %d", k, m.Dim)
			}
			if i > 0 && k <= fs.Idx[i-1] {
				t.Fatalf("indices not increasing: %v", fs.Idx)
			}
		}
		p := m.ScoreGo(fs)
		if s := p[0] + p[1] + p[2]; s < 0.9999 || s > 1.0001 || p[0] != p[0] {
			t.Fatalf("scores %v", p)
		}
	})
}

func FuzzLoadModel(f *testing.F) {
	f.Add(defaultModel[:200])
	f.Add([]byte{0x08, 0x06, 0x3a, 0x02, 0x0a, 0x00})
	f.Add([]byte{})
	// A valid model of the smallest featurizer, all weights zero.
	cfg := FeaturizerConfig{Version: 1, HashBits: 4, NegationScope: 3}
	meta, err := json.Marshal(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(onnxmodel.Encode(make([]float32, 3*cfg.Dim()), make([]float32, 3), cfg.Dim(), 3, string(meta)))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(&Opts{Model: b, Instances: 1})
		if err != nil {
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("error %v does not wrap ErrBadModel", err)
			}
			return
		}
		defer c.Close()
		if _, err := c.Classify(context.Background(), "great"); err != nil {
			t.Fatal(err)
		}
	})
}
