package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/nexfield/nexfield/inference"
	"github.com/nexfield/nexfield/internal/cliconf"
)

// loadModelFlag reads --model, or returns nil for the embedded model.
func loadModelFlag(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return inference.ReadModelFile(path)
}

type classifyLine struct {
	Text   string         `json:"text"`
	Label  string         `json:"label"`
	Scores classifyScores `json:"scores"`
}

type classifyScores struct {
	Positive float64 `json:"positive"`
	Neutral  float64 `json:"neutral"`
	Negative float64 `json:"negative"`
}

// runClassify labels each argument, or each stdin line when there are none.
func runClassify(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	model := fs.String("model", "", "ONNX model written by `nexfield train` (default: the embedded model)")
	asJSON := fs.Bool("json", false, `one JSON object per line: {"text","label","scores":{"positive","neutral","negative"}}`)
	plainGo := fs.Bool("plain-go", false, "score with the plain-Go forward pass instead of onnx-go")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: nexfield classify [--json] [--model FILE] [TEXT ...]   (no TEXT: one message per stdin line)")
		fs.PrintDefaults()
	}
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "classify"}); err != nil {
		return err
	}
	raw, err := loadModelFlag(*model)
	if err != nil {
		return err
	}
	c, err := inference.New(&inference.Opts{Model: raw, Instances: 1, PlainGo: *plainGo})
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	one := func(text string) error {
		r, err := c.Classify(ctx, text)
		if err != nil {
			return err
		}
		if *asJSON {
			return enc.Encode(classifyLine{Text: text, Label: r.Label, Scores: classifyScores{
				Positive: r.Scores["positive"], Neutral: r.Scores["neutral"], Negative: r.Scores["negative"]}})
		}
		_, err = fmt.Fprintf(w, "%-8s  pos %.3f  neu %.3f  neg %.3f  %s\n", r.Label,
			r.Scores["positive"], r.Scores["neutral"], r.Scores["negative"], printable(text))
		return err
	}
	if fs.NArg() > 0 {
		for _, t := range fs.Args() {
			if err := one(t); err != nil {
				return err
			}
		}
		return nil
	}
	// bufio.Reader, not Scanner: a line of megabytes is classified (the
	// featurizer truncates it), not rejected.
	rd := bufio.NewReader(e.stdin)
	for {
		line, err := rd.ReadString('\n')
		if len(line) > 0 {
			if err := one(strings.TrimRight(line, "\r\n")); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("classify: read stdin: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// printable keeps terminal escapes and invalid UTF-8 out of plain output.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
