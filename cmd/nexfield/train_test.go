//go:build !field

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainWritesLoadableModel(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	p := filepath.Join(t.TempDir(), "m.onnx")
	var out bytes.Buffer
	e := env{stdout: &out, stderr: &bytes.Buffer{}}
	if err := runTrain(context.Background(), e, []string{"--out", p}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "held-out binary accuracy") {
		t.Errorf("report missing accuracy:\n%s", out.String())
	}
	var cls bytes.Buffer
	e = env{stdout: &cls, stderr: &bytes.Buffer{}}
	if err := runClassify(context.Background(), e, []string{"--model", p, "Copy that, over."}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cls.String(), "neutral") {
		t.Errorf("got %q, want neutral", cls.String())
	}
}
