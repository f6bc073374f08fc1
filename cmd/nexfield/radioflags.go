package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// radioConfig holds the flags every command that owns a radio shares
// (relay, peer, send, radio probe|listen|send).
type radioConfig struct {
	driver    string
	hub       string
	name      string
	region    string
	frequency int
	sf, bwHz  int
	cr        int
	preamble  int
	join      time.Duration
	hw        *hardwareConfig // --driver rylr|sx127x: ports and pins (radiohw.go)
}

func addRadioFlags(fs *flag.FlagSet) *radioConfig {
	c := &radioConfig{}
	fs.StringVar(&c.driver, "driver", "rylr", "radio driver: rylr (UART AT module), sx127x (SPI), sim (simulated channel)")
	fs.StringVar(&c.hub, "hub", "", "sim driver: address of the simulated channel's UDP hub (host:port)")
	fs.StringVar(&c.name, "radio-name", "", "sim driver: this radio's name on the channel (default: the command name)")
	fs.StringVar(&c.region, "region", "us915", "regulatory region enforced on every frame: us915 (902-928 MHz), eu868 (863-870 MHz), none")
	fs.IntVar(&c.frequency, "frequency", 915_000_000, "carrier frequency in Hz, inside the region's band")
	fs.IntVar(&c.sf, "sf", 7, "LoRa spreading factor (5-12)")
	fs.IntVar(&c.bwHz, "bandwidth", 125_000, "LoRa bandwidth in Hz (125000, 250000, 500000)")
	fs.IntVar(&c.cr, "coding-rate", 1, "LoRa coding rate 1-4 (4/5 .. 4/8)")
	fs.IntVar(&c.preamble, "preamble", 8, "LoRa preamble length in symbols")
	fs.DurationVar(&c.join, "radio-timeout", 10*time.Second, "how long to wait for the radio to come up")
	c.hw = addHardwareFlags(fs)
	return c
}

func (c *radioConfig) params() lora.Params {
	return lora.Params{SpreadingFactor: c.sf, BandwidthHz: c.bwHz, CodingRate: c.cr, PreambleSymbols: c.preamble}
}

// radioSettings are a radioConfig's values parsed, once check found none
// that cannot work.
type radioSettings struct {
	region lora.Region
	hw     hardwareSettings
}

// check reports the radio settings that cannot work, without touching
// hardware: what a driver would refuse at open, or a radio it could never
// reach. Every command that owns a radio asks it before opening one, and so
// do config check and firstboot.
func (c *radioConfig) check() []cliconf.Problem {
	_, problems := c.resolve()
	return problems
}

func (c *radioConfig) resolve() (radioSettings, []cliconf.Problem) {
	var s radioSettings
	var problems []cliconf.Problem
	bad := func(key string, err error, fix string) {
		problems = append(problems, cliconf.Problem{Key: key, Msg: err.Error(), Fix: fix})
	}
	region, err := lora.ParseRegion(c.region)
	if err != nil {
		bad("region", err, "set region to us915, eu868 or none (lab use only)")
	}
	s.region = region
	// One parameter at a time (the others zero, so at their defaults), so
	// that each problem names its key.
	for _, p := range []struct {
		key    string
		params lora.Params
		fix    string
	}{
		{"sf", lora.Params{SpreadingFactor: c.sf}, "set sf to 5..12 (7 is the default), the same at both ends"},
		{"bandwidth", lora.Params{BandwidthHz: c.bwHz}, "set bandwidth in Hz, e.g. 125000, 250000 or 500000, the same at both ends"},
		{"coding-rate", lora.Params{CodingRate: c.cr}, "set coding-rate to 1..4 (4/5..4/8)"},
		{"preamble", lora.Params{PreambleSymbols: c.preamble}, "set preamble to 6..65535 symbols (8 is the default)"},
	} {
		if err := p.params.Validate(); err != nil {
			bad(p.key, err, p.fix)
		}
	}
	if err == nil {
		// 0 is the drivers' default carrier.
		if err := region.CheckFrequency(cmp.Or(c.frequency, 915_000_000)); err != nil {
			bad("frequency", err, "set frequency (in Hz) inside that band, or region to the one the station is in")
		}
		p := c.params()
		if d := region.Dwell(p); d > 0 && p.Validate() == nil && p.MaxPayload(d) < 1 {
			bad("sf", fmt.Errorf("%v leaves no payload within the %v dwell limit of %v", p, d, region),
				"lower sf or widen bandwidth (500000 has no dwell limit under us915)")
		}
	}
	switch c.driver {
	case "sim":
		if c.hub == "" {
			bad("hub", fmt.Errorf("driver sim needs the simulated channel's hub"), "set hub to HOST:PORT of the hub (nexfield demo --keep prints it)")
		}
	case "rylr", "sx127x":
		hw, hwProblems := c.hw.resolve(c.driver)
		s.hw = hw
		problems = append(problems, hwProblems...)
	default:
		bad("driver", fmt.Errorf("unknown driver %q", c.driver), "set driver to rylr (UART module), sx127x (SPI chip) or sim (simulated channel)")
	}
	return s, problems
}

// open brings the configured radio up; name is the command that opens it,
// and names a simulated radio when --radio-name is not set. Settings that
// cannot work are an *cliconf.Error.
func (c *radioConfig) open(ctx context.Context, name string, log *slog.Logger) (radio.Radio, error) {
	s, problems := c.resolve()
	if len(problems) > 0 {
		return nil, &cliconf.Error{Command: name, Problems: problems}
	}
	ctx, cancel := context.WithTimeout(ctx, c.join)
	defer cancel()
	if c.driver == "sim" {
		rname := c.name
		if rname == "" {
			rname = name
		}
		r, err := sim.DialUDP(ctx, c.hub, &sim.RadioOpts{Name: rname, Region: s.region, FrequencyHz: c.frequency, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("radio: join simulated channel %s: %w", c.hub, err)
		}
		return r, nil
	}
	return openHardware(ctx, c, s, log)
}
