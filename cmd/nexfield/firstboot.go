package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/packaging/firstboot"
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
