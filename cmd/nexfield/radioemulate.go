//go:build !field

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
	"github.com/nexfield/nexfield/radio/sim"
)

type emulateConfig struct {
	n          int
	binarySafe bool
	baud       int
	hub, link  string
	level      string
}

// radioEmulateFlags are the flags of "radio emulate" (configuration section
// "radio-emulate").
func radioEmulateFlags() (*flag.FlagSet, *emulateConfig) {
	fs := flag.NewFlagSet("radio emulate", flag.ContinueOnError)
	c := &emulateConfig{}
	fs.String("config", cliconf.DefaultConfigPath, "configuration file")
	fs.IntVar(&c.n, "modules", 2, "number of emulated modules sharing one air")
	fs.BoolVar(&c.binarySafe, "binary-safe", true, "pass CR, LF and NUL inside AT+SEND data (false: text-only firmware, needs --encoding base64 on the driver)")
	fs.IntVar(&c.baud, "baud", 115200, "UART rate whose byte time the modules spend")
	fs.StringVar(&c.hub, "hub", "", "carry frames over the simulated channel at this UDP hub (host:port) instead of an in-process air")
	fs.StringVar(&c.link, "link", "", "also create symlinks LINK0, LINK1, ... (or LINK for one module) to the pseudo-terminals")
	fs.StringVar(&c.level, "log-level", "warn", "log level: debug, info, warn, error")
	return fs, c
}

func runRadioEmulate(ctx context.Context, e env, args []string) error {
	fs, c := radioEmulateFlags()
	fs.SetOutput(e.stderr)
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "radio-emulate"}); err != nil {
		return err
	}
	if c.n < 1 || c.n > 64 {
		return usageError{"radio emulate: --modules must be 1..64"}
	}
	log, err := newLogger(e.stderr, "text", c.level)
	if err != nil {
		return usageError{err.Error()}
	}
	ether := rylrsim.NewEther()
	var links []string
	defer func() {
		for _, l := range links {
			os.Remove(l)
		}
	}()
	for i := 0; i < c.n; i++ {
		var air radio.Radio
		if c.hub != "" {
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			r, err := sim.DialUDP(jctx, c.hub, &sim.RadioOpts{Name: fmt.Sprintf("rylrsim%d", i), Region: lora.RegionNone, Logger: log})
			cancel()
			if err != nil {
				return fmt.Errorf("radio emulate: join simulated channel %s: %w", c.hub, err)
			}
			air = r
		} else {
			air = ether.Radio()
		}
		defer air.Close()
		m, err := rylrsim.New(&rylrsim.Opts{Baud: c.baud, BinarySafe: c.binarySafe, Air: air, Logger: log.With("module", i)})
		if err != nil {
			return fmt.Errorf("radio emulate: %w", err)
		}
		defer m.Close()
		line := m.Path()
		if c.link != "" {
			l := c.link
			if c.n > 1 {
				l += strconv.Itoa(i)
			}
			os.Remove(l)
			if err := os.Symlink(m.Path(), l); err != nil {
				return fmt.Errorf("radio emulate: %w", err)
			}
			links = append(links, l)
			line += " " + l
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintf(e.stderr, "%d emulated RYLR998 module(s) running; Ctrl-C stops\n", c.n)
	<-ctx.Done()
	return nil
}
