//go:build !field

package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/nexfield/nexfield/inference/bench"
	"github.com/nexfield/nexfield/inference/train"
	"github.com/nexfield/nexfield/internal/atomicfile"
	"github.com/nexfield/nexfield/internal/cliconf"
)

// runTrain rebuilds the default model from the shipped data and prints the
// accuracy report; with --out it writes the model atomically.
func runTrain(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("out", "", "write the model here (make model: inference/model/default.onnx); empty: report only")
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "train"}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"train: unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	tr, err := train.Run(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tr.Report.WriteTo(e.stdout); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	if err := atomicfile.WriteFile(*out, tr.Model, 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// runBenchInference prints held-out accuracy next to the AFINN and VADER
// baselines, latency, the onnx-go/plain-Go ratio, model size and load time.
func runBenchInference(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("bench inference", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	model := fs.String("model", "", "ONNX model to measure (default: the embedded model)")
	rounds := fs.Int("rounds", 10, "times every held-out sentence is timed")
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "bench-inference"}); err != nil {
		return err
	}
	raw, err := loadModelFlag(*model)
	if err != nil {
		return err
	}
	r, err := bench.Run(ctx, &bench.Opts{Model: raw, Rounds: *rounds})
	if err != nil {
		return err
	}
	_, err = r.WriteTo(e.stdout)
	return err
}
