//go:build !field

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/internal/footprint"
)

// runBenchRSS measures the resident memory of the agent and the peer run
// from each binary given (default: this one), side by side.
func runBenchRSS(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("bench rss", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	services := fs.Int("services", 50, "sleeping services the agent runs for its second figure")
	settle := fs.Duration("settle", 3*time.Second, "how long each process idles after its work before it is read")
	var envs multiFlag
	fs.Var(&envs, "env", "KEY=VALUE added to the measured processes' environment, e.g. GOMEMLIMIT=12MiB (repeatable)")
	asJSON := fs.Bool("json", false, "print one JSON object per binary")
	verbose := fs.Bool("v", false, "log progress")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: nexfield bench rss [flags] [BINARY ...]   (default: this binary)")
		fs.PrintDefaults()
	}
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "bench-rss"}); err != nil {
		return err
	}
	if *services < 1 {
		return usageError{"bench rss: --services must be at least 1"}
	}
	bins := fs.Args()
	if len(bins) == 0 {
		bins = []string{e.self}
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	log, _ := newLogger(e.stderr, "text", level)
	var reps []*footprint.Report
	for _, b := range bins {
		rep, err := footprint.Measure(ctx, &footprint.Opts{Bin: b, Services: *services, Env: envs, Settle: *settle,
			Logger: log.With("bin", filepath.Base(b))})
		if err != nil {
			return fmt.Errorf("bench rss: %s: %w", b, err)
		}
		reps = append(reps, rep)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range reps {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	writeRSSTable(e, reps, envs, *settle)
	return nil
}

func writeRSSTable(e env, reps []*footprint.Report, envs []string, settle time.Duration) {
	fmt.Fprintf(e.stdout, "resident memory in MiB: VmRSS / VmHWM (RssAnon + RssFile), each read after %s idle", settle)
	if len(envs) > 0 {
		fmt.Fprintf(e.stdout, ", environment %v", envs)
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "\t")
	for _, r := range reps {
		fmt.Fprintf(tw, "%s\t", filepath.Base(r.Bin))
	}
	fmt.Fprintln(tw)
	rows := []struct {
		name string
		mem  func(*footprint.Report) footprint.Memory
	}{
		{"agent, registered, idle", func(r *footprint.Report) footprint.Memory { return r.AgentIdle }},
		{fmt.Sprintf("agent, %d sleeping services", reps[0].Services), func(r *footprint.Report) footprint.Memory { return r.AgentServices }},
		{fmt.Sprintf("peer, sim radio, %d classified", reps[0].Messages), func(r *footprint.Report) footprint.Memory { return r.Peer }},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row.name)
		for _, r := range reps {
			m := row.mem(r)
			fmt.Fprintf(tw, "%.1f / %.1f (%.1f + %.1f)\t", mib(m.RSS), mib(m.HWM), mib(m.Anon), mib(m.File))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
