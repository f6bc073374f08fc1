package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

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
	fs.StringVar(&c.region, "region", "us915", "regulatory region enforced on every frame: us915, eu868, none")
	fs.IntVar(&c.frequency, "frequency", 915_000_000, "carrier frequency in Hz")
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

// open brings the configured radio up; defaultName names a simulated radio
// when --radio-name is not set.
func (c *radioConfig) open(ctx context.Context, defaultName string, log *slog.Logger) (radio.Radio, error) {
	region, err := lora.ParseRegion(c.region)
	if err != nil {
		return nil, err
	}
	if err := c.params().Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.join)
	defer cancel()
	switch c.driver {
	case "sim":
		if c.hub == "" {
			return nil, usageError{"--driver sim needs --hub HOST:PORT (the simulated channel)"}
		}
		name := c.name
		if name == "" {
			name = defaultName
		}
		r, err := sim.DialUDP(ctx, c.hub, &sim.RadioOpts{Name: name, Region: region, FrequencyHz: c.frequency, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("radio: join simulated channel %s: %w", c.hub, err)
		}
		return r, nil
	}
	return openHardware(ctx, c, region, log)
}
