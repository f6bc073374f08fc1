package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
	"github.com/nexfield/nexfield/inference/train"
)

func newTest(t testing.TB, opts *Opts) *Classifier {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStatusMessagesAreNeutral(t *testing.T) {
	c := newTest(t, nil)
	for _, tc := range []struct{ text, want string }{
		{"Arrived at checkpoint 3.", "neutral"},
		{"Copy that, over.", "neutral"},
		{"Battery at 80 percent, moving north.", "neutral"},
		{"Meet at the gate at 14:00.", "neutral"},
		{"Roger, holding position.", "neutral"},
		{"", "neutral"},
		{"The relay is broken again, this is terrible.", "negative"},
		{"Great job team, everything works!", "positive"},
		{"I don't like this route.", "negative"},
		{"All good here :)", "positive"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			r, err := c.Classify(context.Background(), tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if r.Label != tc.want {
				t.Errorf("got %s %v, want %s", r.Label, r.Scores, tc.want)
			}
			sum := r.Scores["negative"] + r.Scores["neutral"] + r.Scores["positive"]
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("scores sum to %v", sum)
			}
		})
	}
}

// onnx-go and the plain-Go forward pass must agree on every held-out
// sentence.
func TestONNXMatchesPlainGo(t *testing.T) {
	c := newTest(t, &Opts{Instances: 1})
	worst := 0.0
	n := 0
	ex, err := train.Examples()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		if e.Fold != train.HeldOutFold {
			continue
		}
		fs := c.c.Model().Featurize(e.Text)
		want := c.c.Model().ScoreGo(fs)
		got, err := c.c.Scores(context.Background(), e.Text)
		if err != nil {
			t.Fatal(err)
		}
		for j := range got {
			worst = math.Max(worst, math.Abs(got[j]-want[j]))
		}
		n++
	}
	if worst > 1e-5 {
		t.Fatalf("max |onnx-go - go| = %g over %d sentences, want <= 1e-5", worst, n)
	}
	t.Logf("max |onnx-go - go| = %.3g over %d held-out sentences", worst, n)
}

// gorgonnx's Gemm overwrote its bias on every run; the same input many times
// must keep giving the plain-Go answer.
func TestRepeatedRunsStable(t *testing.T) {
	c := newTest(t, &Opts{Instances: 1})
	for _, text := range []string{"Great job team, everything works!", "Arrived at checkpoint 3."} {
		want := c.c.Model().ScoreGo(c.c.Model().Featurize(text))
		for i := range 200 {
			got, err := c.c.Scores(context.Background(), text)
			if err != nil {
				t.Fatal(err)
			}
			for j := range got {
				if math.Abs(got[j]-want[j]) > 1e-5 {
					t.Fatalf("run %d: got %v, want %v", i, got, want)
				}
			}
		}
	}
}

func TestConcurrentCallers(t *testing.T) {
	c := newTest(t, &Opts{Instances: 2})
	texts := []string{"Great job team, everything works!", "This is terrible.", "Copy that, over."}
	want := make([][3]float64, len(texts))
	for i, s := range texts {
		want[i] = c.c.Model().ScoreGo(c.c.Model().Featurize(s))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := (g + i) % len(texts)
				got, err := c.c.Scores(context.Background(), texts[k])
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if math.Abs(got[j]-want[k][j]) > 1e-5 {
						errs <- errors.New("concurrent result differs from plain Go")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestBadInputHasDefinedResult(t *testing.T) {
	c := newTest(t, nil)
	huge := strings.Repeat("terrible ", 1<<20/9*4) // ~4 MB
	for _, tc := range []struct{ name, text string }{
		{"invalid utf8", "\xff\xfe great \xc3"},
		{"control chars", "\x00\x01\x1b[31mgreat\x7f"},
		{"megabytes", huge},
		{"only punctuation", "!!!???...,,,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Classify(context.Background(), tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if r.Label == "" || len(r.Scores) != 3 {
				t.Fatalf("got %+v", r)
			}
		})
	}
	// Truncation: only the first DefaultMaxInputBytes count.
	a := c.c.Model().Featurize(huge)
	b := c.c.Model().Featurize(huge[:DefaultMaxInputBytes])
	if len(a.Idx) != len(b.Idx) {
		t.Errorf("truncated features differ: %d vs %d", len(a.Idx), len(b.Idx))
	}
}

func TestClassifyAfterCloseAndCancel(t *testing.T) {
	c := newTest(t, &Opts{Instances: 1})
	ctx, cancel := context.WithCancel(context.Background())
	in, err := c.c.Acquire(context.Background()) // every instance busy
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := c.Classify(ctx, "hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	c.c.Release(in)
	c.Close()
	c.Close()
	if _, err := c.Classify(context.Background(), "hello"); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}

func TestLoaderRejectsBadModels(t *testing.T) {
	good := defaultModel
	m, err := onnxmodel.Parse(good, features.VADER())
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(m.Config)
	wrongDim := func() []byte { return onnxmodel.Encode(make([]float32, 30), make([]float32, 3), 10, 3, string(meta)) }
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"garbage", []byte("this is not a model at all"), "not an ONNX model"},
		{"truncated", good[:len(good)/2], "not an ONNX model"},
		{"wrong shape", wrongDim(), "shape"},
		{"no featurizer", onnxmodel.Encode(make([]float32, 30), make([]float32, 3), 10, 3, "{}"), "featurizer version"},
		{"opset", onnxmodel.EncodeAs(m.W, m.B[:], m.Dim, 3, string(meta), 18, onnxmodel.InputName, onnxmodel.OutputName), "opset 18"},
		{"input name", onnxmodel.EncodeAs(m.W, m.B[:], m.Dim, 3, string(meta), 11, "input", onnxmodel.OutputName), "not named"},
		{"output name", onnxmodel.EncodeAs(m.W, m.B[:], m.Dim, 3, string(meta), 11, onnxmodel.InputName, "probabilities"), "output named"},
		{"gemm", bytes.Replace(good, []byte("MatMul"), []byte("Gemm\x00\x00"), 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == nil {
				raw = []byte{}
			}
			_, err := New(&Opts{Model: raw, Instances: 1})
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("got %v, want ErrBadModel", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// A wider set of radio status reports, written for this test. They once set
// the evidence gate's accuracy target; the neutral rule is now calibrated on
// rated sentences only, so they are an independent check. With the current
// model 19 are neutral; "Reached the bridge, waiting for team B." comes out
// positive ("reached" is a VADER lexicon word).
func TestStatusReportsMostlyNeutral(t *testing.T) {
	c := newTest(t, &Opts{PlainGo: true})
	msgs := []string{
		"Arrived at checkpoint 3.", "Copy that, over.", "Battery at 80 percent, moving north.",
		"Meet at the gate at 14:00.", "Roger, holding position.", "Reached the bridge, waiting for team B.",
		"Position 47.3N 8.5E, heading east.", "Relay 2 online, signal strength -92 dBm.", "ETA 15 minutes.",
		"Team two is at the river crossing.", "Switching to channel 4.", "Resupply drop scheduled for 0600.",
		"Standing by for instructions.", "All units report status.", "Moving to waypoint alpha.",
		"Checkpoint 5 clear, continuing.", "Weather: light rain, wind 10 knots.", "Node 7 rebooted at 12:03.",
		"Acknowledged, will do.", "We are at the north entrance.",
	}
	neutral := 0
	for _, m := range msgs {
		r, err := c.Classify(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if r.Label == "neutral" {
			neutral++
		} else {
			t.Logf("%s: %q", r.Label, m)
		}
	}
	if neutral < 16 {
		t.Errorf("got %d of %d status reports neutral, want at least 16", neutral, len(msgs))
	}
}
