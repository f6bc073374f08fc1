//go:build !field

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/nexfield/nexfield/demo"
)

func runDemo(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var messages multiFlag
	fs.Var(&messages, "message", "send this text instead of the samples (repeatable; PEER:TEXT picks the peer)")
	asJSON := fs.Bool("json", false, "print one JSON object per answer")
	keep := fs.Bool("keep", false, "keep everything running after the samples and print commands to try")
	migrate := fs.Bool("migrate", false, "run two agents and move the relay between them while requests flow")
	loss := fs.Float64("loss", 0.05, "simulated frame loss on the channel (0-1)")
	radioKind := fs.String("radio", "rylr", "rylr: every station drives an emulated RYLR998 module on a pseudo-terminal through the UART driver; sim: radios straight on the simulated channel")
	seed := fs.Int64("seed", 1, "seed of the simulated channel")
	verbose := fs.Bool("v", false, "show the logs of every process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := "warn"
	if *verbose {
		level = "debug"
	}
	log, _ := newLogger(e.stderr, "text", level)
	var samples []demo.Sample
	for _, m := range messages {
		s := demo.Sample{Text: m}
		if p, t, ok := strings.Cut(m, ":"); ok && (p == "north" || p == "south") {
			s = demo.Sample{Peer: p, Text: strings.TrimSpace(t)}
		}
		samples = append(samples, s)
	}
	if e.self == "" {
		return errors.New("demo: cannot find the nexfield executable")
	}
	if *radioKind != "rylr" && *radioKind != "sim" {
		return usageError{"demo: --radio must be rylr or sim"}
	}
	fmt.Fprintln(e.stdout, "nexfield demo: NATS + JetStream, a Nex node stand-in, the agent, the relay pulled from the object store, two air-gapped peers on a simulated 915 MHz channel")
	_, err := demo.Run(ctx, demo.Opts{Self: e.self, Samples: samples, JSON: *asJSON, Keep: *keep, Migrate: *migrate,
		RYLR: *radioKind == "rylr", Loss: *loss, Seed: *seed, Out: e.stdout, Logger: log, Verbose: *verbose})
	return err
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
