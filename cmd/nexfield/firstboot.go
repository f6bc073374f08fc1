package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/packaging/firstboot"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/systemd"
)

// fileKeys are the flags whose values name files. A relative value in the
// boot partition's nexfield.yaml names a file next to it; firstboot imports
// it into /etc/nexfield and rewrites the value to the new absolute path.
func fileKeys() []string { return []string{"psk-file", "creds", "secrets", "model"} }

// runFirstboot imports nexfield.yaml and the key files it names from the SD
// card's boot partition into /etc/nexfield (packaging/firstboot), validated
// as the commands will read them.
func runFirstboot(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "notify-selftest" {
		return runNotifySelftest(ctx, e, args[1:])
	}
	o := &firstboot.Opts{FileKeys: fileKeys(), Check: checkImport}
	fs := flag.NewFlagSet("firstboot", flag.ContinueOnError)
	fs.StringVar(&o.BootDir, "boot-dir", "", "boot partition (default /boot/firmware, else /boot)")
	fs.StringVar(&o.EtcDir, "etc-dir", filepath.Dir(cliconf.DefaultConfigPath), "where the configuration is installed")
	fs.StringVar(&o.User, "user", "nexfield", "service user that owns the imported key files")
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: nexfield firstboot [flags]\n       nexfield firstboot notify-selftest [flags]  (a stand-in daemon for the systemd checks)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("firstboot: unexpected arguments %q", fs.Args())}
	}
	o.Logger = slog.New(slog.NewTextHandler(e.stderr, nil)).With("component", "firstboot")
	res, err := firstboot.Import(o)
	if err != nil {
		return err
	}
	if len(res.Imported) == 0 {
		fmt.Fprintf(e.stdout, "firstboot: no %s in %s, nothing to import\n", firstboot.ConfigName, res.BootDir)
		return nil
	}
	fmt.Fprintf(e.stdout, "firstboot: imported %s\n", strings.Join(res.Imported, ", "))
	return nil
}

// checkImport validates the configuration firstboot would install.
func checkImport(raw []byte, name string, read firstboot.ReadFunc) []string {
	tmp, err := os.CreateTemp("", "nexfield-firstboot-*.yaml")
	if err != nil {
		return []string{err.Error()}
	}
	defer os.Remove(tmp.Name())
	tmp.Close()
	if err := os.WriteFile(tmp.Name(), raw, 0o600); err != nil {
		return []string{err.Error()}
	}
	// Unknown keys and bad values, as "nexfield config check" reports them.
	problems, err := checkConfig(tmp.Name(), commandFlagSets())
	if err != nil {
		return []string{err.Error()}
	}
	// What each command will actually read, defaults included.
	sections, _ := cliconf.Sections(raw)
	for _, sec := range sections {
		mk, ok := commandFlagSets()[sec]
		if !ok {
			continue
		}
		fs := mk()
		fs.SetOutput(io.Discard)
		if err := cliconf.Parse(fs, []string{"--config", tmp.Name()}, cliconf.Options{Section: sec,
			LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
			continue // reported by checkConfig
		}
		for _, key := range fileKeys() {
			f := fs.Lookup(key)
			if f == nil || f.Value.String() == "" {
				continue
			}
			problems = append(problems, checkFileValue(sec, key, f.Value.String(), read)...)
		}
		if sec == "peer" || sec == "relay" {
			if err := checkRadioFlags(fs); err != nil {
				problems = append(problems, fmt.Sprintf("%s: radio: %v", sec, err))
			}
		}
	}
	return problems
}

// checkFileValue checks a file a command will open. A link key must be hex
// of at least 16 bytes.
func checkFileValue(sec, key, val string, read firstboot.ReadFunc) []string {
	data, _, err := read(val)
	if err != nil {
		return []string{fmt.Sprintf("%s.%s: %v", sec, key, err)}
	}
	if key == "psk-file" {
		k, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			return []string{fmt.Sprintf("%s.%s: %s is not hex (make one with: openssl rand -hex 32)", sec, key, filepath.Base(val))}
		}
		if len(k) < 16 {
			return []string{fmt.Sprintf("%s.%s: %s holds %d bytes, want at least 16", sec, key, filepath.Base(val), len(k))}
		}
	}
	return nil
}

// checkRadioFlags rejects radio settings the driver would refuse at start,
// without touching hardware.
func checkRadioFlags(fs *flag.FlagSet) error {
	get := func(n string) string {
		if f := fs.Lookup(n); f != nil {
			return f.Value.String()
		}
		return ""
	}
	atoi := func(n string) int { v, _ := strconv.Atoi(get(n)); return v }
	region, err := lora.ParseRegion(get("region"))
	if err != nil {
		return err
	}
	p := lora.Params{SpreadingFactor: atoi("sf"), BandwidthHz: atoi("bandwidth"), CodingRate: atoi("coding-rate"), PreambleSymbols: atoi("preamble")}
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := lora.NewRegulator(region, &lora.RegulatorOpts{FrequencyHz: atoi("frequency")}); err != nil {
		return err
	}
	switch d := get("driver"); d {
	case "rylr":
		if _, err := rylr.ParseModel(get("module")); err != nil {
			return err
		}
		if _, err := rylr.ParseEncoding(get("encoding")); err != nil {
			return err
		}
	case "sx127x":
		if get("dio0-pin") == "" {
			return errors.New("driver sx127x needs dio0-pin (the GPIO wired to the radio's DIO0)")
		}
		if v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(get("sync-word")), "0x"), 16, 8); err != nil || v == 0 {
			return fmt.Errorf("sync-word %q: want a non-zero hex byte like 0x12", get("sync-word"))
		}
	case "sim":
		if get("hub") == "" {
			return errors.New("driver sim needs hub HOST:PORT")
		}
	default:
		return fmt.Errorf("unknown driver %q (want rylr, sx127x or sim)", d)
	}
	return nil
}

// runNotifySelftest is a stand-in daemon for checking the units under a real
// systemd (make test-system): it sends READY=1 and a status line, pings the
// watchdog while its loop beats, and its loop stalls on purpose while the
// file --stall-file exists, so systemd's watchdog restart can be observed.
func runNotifySelftest(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("firstboot notify-selftest", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	stall := fs.String("stall-file", filepath.Join(os.Getenv("STATE_DIRECTORY"), "stall"), "the loop hangs while this file exists")
	period := fs.Duration("period", 200*time.Millisecond, "loop period")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil)).With("component", "selftest")
	n := systemd.New(&systemd.Opts{Logger: log})
	hb := systemd.NewHeartbeat("selftest loop", nil)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		t := time.NewTicker(*period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := os.Stat(*stall); err == nil {
				continue // stuck on purpose: no beat
			}
			hb.Beat()
		}
	}()
	log.Info("selftest starting", "notify", n.String(), "stall_file", *stall)
	if err := n.Ready(fmt.Sprintf("selftest serving as uid %d, loop every %s", os.Getuid(), *period)); err != nil {
		return err
	}
	wdDone := make(chan error, 1)
	go func() { wdDone <- n.Watchdog(ctx, hb.Check(5**period)) }()
	<-ctx.Done()
	_ = n.Stopping("selftest stopping")
	<-loopDone
	return <-wdDone
}
