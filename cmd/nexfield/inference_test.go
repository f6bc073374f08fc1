package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/exchange"
)

func TestClassifyJSONFromStdin(t *testing.T) {
	var out bytes.Buffer
	e := env{stdin: strings.NewReader("Arrived at checkpoint 3.\nGreat job team, everything works!\n\xff\x01terrible\n"),
		stdout: &out, stderr: &bytes.Buffer{}}
	if err := runClassify(context.Background(), e, []string{"--json"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, want := range []string{"neutral", "positive", "negative"} {
		var l classifyLine
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if l.Label != want {
			t.Errorf("line %d: got %s, want %s", i, l.Label, want)
		}
		if s := l.Scores.Positive + l.Scores.Neutral + l.Scores.Negative; s < 0.999 || s > 1.001 {
			t.Errorf("line %d: scores sum to %v", i, s)
		}
	}
}

func TestClassifyRejectsBadModelFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.onnx")
	os.WriteFile(p, []byte("not a model"), 0o644)
	e := env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	err := runClassify(context.Background(), e, []string{"--model", p, "hello"})
	if err == nil || !strings.Contains(err.Error(), "bad model") {
		t.Fatalf("got %v, want a bad model error", err)
	}
}

// The peer's classifier answers in the shape that crosses the air.
func TestPeerClassifierEncodesForTheAir(t *testing.T) {
	c, err := newClassifier("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Classify(context.Background(), "Copy that, over.")
	if err != nil {
		t.Fatal(err)
	}
	b, err := exchange.EncodeSentiment(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exchange.DecodeSentiment(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Label != "neutral" {
		t.Errorf("got %s, want neutral", got.Label)
	}
}
