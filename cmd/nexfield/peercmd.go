package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/gpio"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/peer"
	"github.com/nexfield/nexfield/systemd"
)

// peerConfig is what "nexfield peer" reads.
type peerConfig struct {
	model string
	echo  bool
	log   *logFlags
	radio *radioConfig
	link  *linkConfig
	led   *ledConfig
}

func peerFlags() (*flag.FlagSet, *peerConfig) {
	c := &peerConfig{}
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "YAML configuration file (section \"peer:\")")
	fs.StringVar(&c.model, "model", "", "sentiment model file (default: the embedded model)")
	fs.BoolVar(&c.echo, "echo", false, "answer raw messages with their own bytes (a link test)")
	c.log = addLogFlags(fs)
	c.radio = addRadioFlags(fs)
	c.link = addLinkFlags(fs, 2)
	c.led = addLEDFlags(fs)
	return fs, c
}

// runPeer serves the air-gapped side forever: radio -> link -> classifier ->
// reply. A radio that fails is reopened with back-off instead of ending the
// process, so a module reset or a loose cable heals by itself; a
// configuration that cannot work ends it at once (configFault), before and
// after the radio first came up.
func runPeer(ctx context.Context, e env, args []string) error {
	fs, c := peerFlags()
	fs.SetOutput(e.stderr)
	src, err := cliconf.ParseSources(fs, args, cliconf.Options{Section: "peer"})
	if err != nil {
		return err
	}
	if err := mustWork(fs, src, c.check(readDisk)); err != nil {
		return err
	}
	log, err := c.log.logger(e.stderr)
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
	led, err := c.led.start(ctx)
	if err != nil {
		return explain(fs, src, err)
	}
	defer led.Close()
	p := &peerRun{cfg: c, fs: fs, src: src, h: h, log: log, led: led, ready: make(chan struct{}), hb: systemd.NewHeartbeat("radio link", nil)}
	return runUnderSystemd(ctx, log, p.run, p.ready, p.status, p.hb.Check(30*time.Second))
}

// peerRun is the peer's main loop and what systemd is told about it.
type peerRun struct {
	cfg   *peerConfig
	fs    *flag.FlagSet // where cfg's values came from, for explain
	src   cliconf.Sources
	h     *peer.Handler
	log   *slog.Logger
	led   *statusLED
	ready chan struct{} // closed when the radio is up and the model loaded
	once  sync.Once
	hb    *systemd.Heartbeat

	mu   sync.Mutex
	link *chunking.Link // nil while the radio is being reopened
	down string         // why the radio is down
}

func (p *peerRun) run(ctx context.Context) error {
	go p.watch(ctx)
	backoff := time.Second
	for {
		started := time.Now()
		err := p.serveOnce(ctx)
		if ctx.Err() != nil {
			st := p.h.Stats()
			p.log.Info("peer stopped", "served", st.Served, "failed", st.Failed)
			return nil
		}
		if configFault(err) {
			return explain(p.fs, p.src, err) // reopening cannot help: a driver refused the settings, or the key went
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		p.mu.Lock()
		p.down = err.Error()
		p.mu.Unlock()
		p.led.Set(gpio.Fault)
		p.log.Error("radio link down; reopening", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// watch beats the heartbeat only while the link's loop answers: a link stuck
// on a wedged radio stops the beats, the watchdog pings and so, after
// WatchdogSec, the process. While the radio is being reopened the loop above
// is alive and the beats go on.
func (p *peerRun) watch(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		p.mu.Lock()
		l := p.link
		p.mu.Unlock()
		if l != nil {
			l.Stats() // takes the link's lock: blocks if its loop is stuck
		}
		p.hb.Beat()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *peerRun) status() string {
	st := p.h.Stats()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link == nil {
		return fmt.Sprintf("radio down (%s); %d answered", p.down, st.Served)
	}
	ls := p.link.Stats()
	return fmt.Sprintf("listening as %d; %d answered, %d failed; frames sent %d, accepted %d, dropped %d",
		p.cfg.link.address, st.Served, st.Failed, ls.Sent, ls.Accepted, ls.Dropped)
}

func (p *peerRun) serveOnce(ctx context.Context) error {
	c, h, log := p.cfg, p.h, p.log
	st, err := openStation(ctx, c.radio, c.link, "peer", log)
	if err != nil {
		return err
	}
	defer st.Close()
	r, l := st.radio, st.link
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.link = nil
		p.mu.Unlock()
	}()
	log.Info("peer listening", "address", c.link.address, "radio", fmt.Sprint(r), "mtu", r.MTU())
	p.once.Do(func() { close(p.ready) })
	p.led.Set(gpio.Registered)
	lctx, stopLED := context.WithCancel(ctx)
	defer stopLED()
	p.led.follow(lctx, l)
	return l.Serve(ctx, func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
		return h.Handle(ctx, req)
	})
}
