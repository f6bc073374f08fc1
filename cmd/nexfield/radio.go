package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/rylr"
)

func runRadio(ctx context.Context, e env, args []string) error {
	subs := map[string]command{
		"probe":  {"find the radio, print what it is and its settings", runRadioProbe},
		"listen": {"print received frames with RSSI and SNR", runRadioListen},
		"send":   {"send TEXT (or --hex bytes) as one frame", runRadioSend},
	}
	maps.Copy(subs, labRadioCommands())
	return subcommands(ctx, e, "radio", args, subs)
}

// radioCmdFlags are the flags of probe, listen and send (one set, so one
// "radio:" section of the configuration file serves all three).
type radioCmdConfig struct {
	radio    *radioConfig
	level    string
	count    int
	hex      bool
	interval time.Duration
}

func radioCmdFlags(name string) (*flag.FlagSet, *radioCmdConfig) {
	fs := flag.NewFlagSet("radio "+name, flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "configuration file")
	c := &radioCmdConfig{radio: addRadioFlags(fs)}
	fs.StringVar(&c.level, "log-level", "warn", "log level: debug, info, warn, error")
	fs.IntVar(&c.count, "count", 0, "listen: stop after this many frames (0: until interrupted); send: send the frame this many times (0: once)")
	fs.BoolVar(&c.hex, "hex", false, "listen: print payloads as hex; send: TEXT is hex-encoded bytes")
	fs.DurationVar(&c.interval, "interval", time.Second, "send: pause between repeated frames")
	return fs, c
}

func openRadioCmd(ctx context.Context, e env, name string, fs *flag.FlagSet, c *radioCmdConfig, args []string) (radio.Radio, error) {
	fs.SetOutput(e.stderr)
	src, err := cliconf.ParseSources(fs, args, cliconf.Options{Section: "radio"})
	if err != nil {
		return nil, err
	}
	if err := mustWork(fs, src, c.check(readDisk)); err != nil {
		return nil, err
	}
	log, err := newLogger(e.stderr, "text", c.level)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	r, err := c.radio.open(ctx, "radio-"+name, log.With("component", "radio"))
	return r, explain(fs, src, err)
}

func describeRadio(w io.Writer, r radio.Radio) {
	fmt.Fprintf(w, "radio:   %v\n", r)
	if d, ok := r.(*rylr.Dev); ok {
		fmt.Fprintf(w, "module:  %v, firmware %q, uid %s\n", d.Model(), d.Version(), d.UID())
		p := d.Params()
		fmt.Fprintf(w, "params:  %v, preamble %d\n", p, p.PreambleSymbols)
	}
	if d, ok := r.(*spiRadio); ok {
		p := d.Params()
		fmt.Fprintf(w, "params:  %v, preamble %d, LDRO %v\n", p, p.PreambleSymbols, p.LowDataRateOptimize())
	}
	fmt.Fprintf(w, "mtu:     %d bytes\n", r.MTU())
	if a, ok := r.(radio.Airtimer); ok && r.MTU() > 0 {
		fmt.Fprintf(w, "airtime: %s for 1 byte, %s for %d bytes\n", fmtMs(a.Airtime(1)), fmtMs(a.Airtime(r.MTU())), r.MTU())
	}
}

func fmtMs(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func runRadioProbe(ctx context.Context, e env, args []string) error {
	fs, c := radioCmdFlags("probe")
	r, err := openRadioCmd(ctx, e, "probe", fs, c, args)
	if err != nil {
		return err
	}
	defer r.Close()
	describeRadio(e.stdout, r)
	return nil
}

func runRadioListen(ctx context.Context, e env, args []string) error {
	fs, c := radioCmdFlags("listen")
	r, err := openRadioCmd(ctx, e, "listen", fs, c, args)
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(e.stderr, "listening on %v (MTU %d); Ctrl-C stops\n", r, r.MTU())
	for n := 0; c.count == 0 || n < c.count; n++ {
		f, err := r.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		body := strconv.Quote(string(f.Payload))
		if c.hex {
			body = hex.EncodeToString(f.Payload)
		}
		fmt.Fprintf(e.stdout, "%s rssi=%gdBm snr=%gdB len=%d %s\n", f.Time.Format("15:04:05.000"), f.RSSI, f.SNR, len(f.Payload), body)
	}
	return nil
}

func runRadioSend(ctx context.Context, e env, args []string) error {
	fs, c := radioCmdFlags("send")
	r, err := openRadioCmd(ctx, e, "send", fs, c, args)
	if err != nil {
		return err
	}
	defer r.Close()
	text := strings.Join(fs.Args(), " ")
	if text == "" {
		return usageError{"radio send: no TEXT given"}
	}
	payload := []byte(text)
	if c.hex {
		if payload, err = hex.DecodeString(strings.ReplaceAll(text, " ", "")); err != nil {
			return usageError{fmt.Sprintf("radio send: --hex: %v", err)}
		}
	}
	for i := 0; i < max(c.count, 1); i++ {
		if i > 0 {
			select {
			case <-time.After(c.interval):
			case <-ctx.Done():
				return nil
			}
		}
		start := time.Now()
		if err := r.Send(ctx, payload); err != nil {
			return err
		}
		line := fmt.Sprintf("sent %d bytes in %s", len(payload), fmtMs(time.Since(start)))
		if a, ok := r.(radio.Airtimer); ok {
			line += " (time on air " + fmtMs(a.Airtime(len(payload))) + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}
