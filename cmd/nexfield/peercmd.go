package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/peer"
)

// peerConfig is what "nexfield peer" reads.
type peerConfig struct {
	model               string
	echo                bool
	logFormat, logLevel string
	radio               *radioConfig
	link                *linkConfig
}

func peerFlags() (*flag.FlagSet, *peerConfig) {
	c := &peerConfig{}
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "YAML configuration file (section \"peer:\")")
	fs.StringVar(&c.model, "model", "", "sentiment model file (default: the embedded model)")
	fs.BoolVar(&c.echo, "echo", false, "answer raw messages with their own bytes (a link test)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	c.radio = addRadioFlags(fs)
	c.link = addLinkFlags(fs, 2)
	return fs, c
}

// runPeer serves the air-gapped side forever: radio -> link -> classifier ->
// reply. A radio that fails is reopened with back-off instead of ending the
// process, so a module reset or a loose cable heals by itself.
func runPeer(ctx context.Context, e env, args []string) error {
	fs, c := peerFlags()
	fs.SetOutput(e.stderr)
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "peer"}); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	classifier, err := newClassifier(c.model)
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	h, err := peer.New(classifier, &peer.Opts{Echo: c.echo, Logger: log.With("component", "peer")})
	if err != nil {
		return err
	}
	backoff := time.Second
	for {
		started := time.Now()
		err := servePeerOnce(ctx, c, h, log)
		if ctx.Err() != nil {
			st := h.Stats()
			log.Info("peer stopped", "served", st.Served, "failed", st.Failed)
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		log.Error("radio link down; reopening", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func servePeerOnce(ctx context.Context, c *peerConfig, h *peer.Handler, log *slog.Logger) error {
	r, err := c.radio.open(ctx, "peer", log.With("component", "radio"))
	if err != nil {
		return err
	}
	defer r.Close()
	l, err := c.link.open(r, log.With("component", "link"))
	if err != nil {
		return err
	}
	defer l.Close()
	log.Info("peer listening", "address", c.link.address, "radio", fmt.Sprint(r), "mtu", r.MTU())
	return l.Serve(ctx, func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
		return h.Handle(ctx, req)
	})
}
