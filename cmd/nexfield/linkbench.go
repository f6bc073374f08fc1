//go:build !field

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nexfield/nexfield/chunking/chunkbench"
	"github.com/nexfield/nexfield/internal/atomicfile"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/linkbench"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

type benchRadioConfig struct {
	sizes, losses, schemes, ge string
	geStep                     time.Duration
	outage                     string
	burst                      bool
	runs                       int
	seed                       uint64
	sf, bwHz, cr               int
	json                       bool
	plot                       string
	exchange                   bool
}

func benchRadioFlags() (*flag.FlagSet, *benchRadioConfig) {
	fs := flag.NewFlagSet("bench radio", flag.ContinueOnError)
	c := &benchRadioConfig{}
	fs.StringVar(&c.sizes, "sizes", "2048,16384", "message sizes in bytes, comma-separated")
	fs.StringVar(&c.losses, "loss", "0,0.1,0.3", "i.i.d. frame loss rates, comma-separated")
	fs.BoolVar(&c.burst, "burst", true, "also run the bursty (Gilbert-Elliott) channel")
	fs.StringVar(&c.ge, "ge", "0.05,0.3,0.3,0.99", "Gilbert-Elliott p,r,h,k: P(good->bad), P(bad->good), delivery in bad, delivery in good")
	fs.DurationVar(&c.geStep, "ge-step", 0, "clock the Gilbert-Elliott state by time, one move per this duration (a fade then lasts 1/r steps whatever is sent); 0: one move per frame")
	fs.StringVar(&c.outage, "outage", "", "also run a channel with outages: FOR,EVERY (e.g. 60s,100s: a 60 s outage once every 100 s, at a random phase)")
	fs.StringVar(&c.schemes, "schemes", "", "schemes to run, comma-separated (default all: "+strings.Join(schemeNames(), ",")+")")
	fs.IntVar(&c.runs, "runs", 200, "runs per cell")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (equal seeds give equal results)")
	fs.IntVar(&c.sf, "sf", 7, "LoRa spreading factor (5-12)")
	fs.IntVar(&c.bwHz, "bandwidth", 125_000, "LoRa bandwidth in Hz")
	fs.IntVar(&c.cr, "coding-rate", 1, "LoRa coding rate 1-4 (4/5 .. 4/8)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per cell instead of a table")
	fs.StringVar(&c.plot, "plot", "", "also write an SVG plot of goodput vs loss to this file")
	fs.BoolVar(&c.exchange, "exchange", true, "also measure a 100-byte request with a 50-byte answer")
	return fs, c
}

// benchSchemes are the schemes compared: the baselines, then the nexfield
// link (chunking, adapted by chunkbench).
func benchSchemes() []linkbench.Scheme {
	return append(linkbench.Schemes(), chunkbench.Scheme{})
}

func schemeNames() []string {
	var n []string
	for _, s := range benchSchemes() {
		n = append(n, s.Name())
	}
	return n
}

func runBenchRadio(ctx context.Context, e env, args []string) error {
	fs, c := benchRadioFlags()
	fs.SetOutput(e.stderr)
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "bench-radio"}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("bench radio: unexpected arguments %q", fs.Args())}
	}
	g, err := c.grid()
	if err != nil {
		return err
	}
	var cells []linkbench.Cell
	g.Sizes = nil
	sizes, _ := parseInts(c.sizes)
	// One size at a time so that an interrupt stops between cells.
	for _, size := range sizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.Sizes = []int{size}
		cells = append(cells, g.Run(nil)...)
	}
	var ex []linkbench.ExchangeCell
	if c.exchange {
		ex = g.Exchanges(100, 50)
	}
	if c.json {
		err = linkbench.WriteJSON(e.stdout, cells, ex)
	} else {
		err = linkbench.WriteTable(e.stdout, g.Params, cells, ex)
	}
	if err != nil {
		return err
	}
	if c.plot != "" {
		title := fmt.Sprintf("Link goodput vs frame loss, %v, %d runs per point", g.Params, g.Runs)
		var svg bytes.Buffer
		if err := linkbench.WriteSVG(&svg, title, cells); err != nil {
			return fmt.Errorf("bench radio: plot: %w", err)
		}
		if err := atomicfile.WriteFile(c.plot, svg.Bytes(), 0o644); err != nil {
			return fmt.Errorf("bench radio: plot: %w", err)
		}
	}
	return nil
}

func (c *benchRadioConfig) grid() (linkbench.Grid, error) {
	p := lora.Params{SpreadingFactor: c.sf, BandwidthHz: c.bwHz, CodingRate: c.cr}
	if err := p.Validate(); err != nil {
		return linkbench.Grid{}, usageError{"bench radio: " + err.Error()}
	}
	if c.runs < 1 {
		return linkbench.Grid{}, usageError{"bench radio: --runs must be at least 1"}
	}
	sizes, err := parseInts(c.sizes)
	if err != nil || len(sizes) == 0 {
		return linkbench.Grid{}, usageError{fmt.Sprintf("bench radio: --sizes %q: want positive byte counts", c.sizes)}
	}
	g := linkbench.Grid{Sizes: sizes, Runs: c.runs, Params: p, Seed: c.seed}
	losses, err := parseFloats(c.losses)
	if err != nil {
		return g, usageError{fmt.Sprintf("bench radio: --loss %q: %v", c.losses, err)}
	}
	for _, l := range losses {
		if l < 0 || l >= 1 {
			return g, usageError{fmt.Sprintf("bench radio: loss %v not in [0,1)", l)}
		}
		g.Channels = append(g.Channels, linkbench.IID(l))
	}
	if c.burst {
		v, err := parseFloats(c.ge)
		if err != nil || len(v) != 4 {
			return g, usageError{fmt.Sprintf("bench radio: --ge %q: want four probabilities p,r,h,k", c.ge)}
		}
		if c.geStep < 0 {
			return g, usageError{fmt.Sprintf("bench radio: --ge-step %v: want a positive duration, or 0 for one move per frame", c.geStep)}
		}
		ge := sim.GilbertElliott{P: v[0], R: v[1], H: v[2], K: v[3], Step: c.geStep}
		g.Channels = append(g.Channels, linkbench.Bursty(&ge))
	}
	if c.outage != "" {
		o, err := parseOutage(c.outage)
		if err != nil {
			return g, usageError{fmt.Sprintf("bench radio: --outage %q: %v", c.outage, err)}
		}
		g.Channels = append(g.Channels, linkbench.Outages(o))
	}
	all := benchSchemes()
	if c.schemes == "" {
		g.Schemes = all
	} else {
		for _, name := range strings.Split(c.schemes, ",") {
			found := false
			for _, s := range all {
				if s.Name() == strings.TrimSpace(name) {
					g.Schemes, found = append(g.Schemes, s), true
				}
			}
			if !found {
				return g, usageError{fmt.Sprintf("bench radio: unknown scheme %q (have %s)", name, strings.Join(schemeNames(), ", "))}
			}
		}
	}
	// Validate the channels once, before minutes of runs.
	for _, ch := range g.Channels {
		if _, err := sim.NewMedium(&sim.Opts{Params: p, Channel: ch.Channel}); err != nil {
			return g, usageError{"bench radio: " + err.Error()}
		}
	}
	return g, nil
}

// parseOutage reads FOR,EVERY: two durations, the outage shorter than its
// period.
func parseOutage(s string) (sim.Outage, error) {
	f := strings.Split(s, ",")
	if len(f) != 2 {
		return sim.Outage{}, errors.New("want FOR,EVERY, e.g. 60s,100s")
	}
	var d [2]time.Duration
	for i, v := range f {
		x, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return sim.Outage{}, fmt.Errorf("want FOR,EVERY, e.g. 60s,100s: %w", err)
		}
		d[i] = x
	}
	if d[0] <= 0 || d[1] <= d[0] {
		return sim.Outage{}, errors.New("want a positive outage shorter than its period")
	}
	return sim.Outage{For: d[0], Every: d[1]}, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
