package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/gpio"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/relay"
)

// relayConfig is what "nexfield relay" reads.
type relayConfig struct {
	server, creds, name, subject, peers, defaultPeer string
	queue, maxMessage                                int
	timeout                                          time.Duration
	log                                              *logFlags
	radio                                            *radioConfig
	link                                             *linkConfig
	led                                              *ledConfig
}

func relayFlags() (*flag.FlagSet, *relayConfig) {
	c := &relayConfig{}
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "YAML configuration file (section \"relay:\")")
	fs.StringVar(&c.server, "server", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated (env NATS_URL; under the agent NEX_WORKLOAD_NATS_SERVERS)")
	cliconf.Alias(fs, "s", "server")
	fs.StringVar(&c.creds, "creds", "", "NATS .creds file (under the agent the workload credentials from the environment are used)")
	fs.StringVar(&c.name, "name", "nexfield-relay", "micro service name (nats micro ls)")
	fs.StringVar(&c.subject, "subject", "field", "subject prefix: PREFIX.sentiment[.PEER], PREFIX.send[.PEER]")
	fs.StringVar(&c.peers, "peers", "peer=2", "peers as name=address,... (addresses 1-254)")
	fs.StringVar(&c.defaultPeer, "default-peer", "", "peer for requests that name none (default: the first of --peers)")
	fs.IntVar(&c.queue, "queue", 16, "requests that may wait for the radio before callers get 503 busy")
	fs.IntVar(&c.maxMessage, "max-message", 64<<10, "largest request in bytes")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "time limit of one request, queueing included")
	c.log = addLogFlags(fs)
	c.radio = addRadioFlags(fs)
	c.link = addLinkFlags(fs, 1)
	c.led = addLEDFlags(fs)
	return fs, c
}

func runRelay(ctx context.Context, e env, args []string) error {
	fs, c := relayFlags()
	fs.SetOutput(e.stderr)
	src, err := cliconf.ParseSources(fs, args, cliconf.Options{Section: "relay",
		EnvAliases: map[string][]string{"server": {"NATS_URL", "NEX_WORKLOAD_NATS_SERVERS"}}})
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
	peers, err := parsePeers(c.peers)
	if err != nil {
		return err // relayConfig.check refused it already
	}
	led, err := c.led.start(ctx)
	if err != nil {
		return explain(fs, src, err)
	}
	defer led.Close()
	nc, err := connectRelay(c.server, c.creds, c.name, os.Getenv)
	if err != nil {
		return err
	}
	defer nc.Close()
	// A relay cut off from NATS serves nobody: say so in the log and on
	// the LED, and again when it is back.
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		log.Warn("nats disconnected; reconnecting", "err", err)
		led.Set(gpio.Fault)
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		log.Info("nats reconnected", "server", redactURLs(nc.ConnectedUrl()))
		led.Set(gpio.Registered)
	})
	st, err := openStation(ctx, c.radio, c.link, "relay", log)
	if err != nil {
		return explain(fs, src, err)
	}
	defer st.Close()
	link := st.link
	rl, err := relay.New(nc, relay.OverLink(link), &relay.Opts{
		Name: c.name, Version: semver(version), Subject: c.subject, Address: uint8(c.link.address), Peers: peers,
		DefaultPeer: c.defaultPeer, QueueDepth: c.queue, Timeout: c.timeout, MaxMessage: c.maxMessage,
		Logger: log.With("component", "relay"),
	})
	if err != nil {
		return err
	}
	run := func(ctx context.Context) error {
		go func() {
			select {
			case <-rl.Ready():
				led.Set(gpio.Registered)
			case <-ctx.Done():
			}
		}()
		led.follow(ctx, link)
		err := rl.Run(ctx)
		// Stay on the air until the peers have their last acknowledgement:
		// a peer that lost our final RACK asks again, and only a running
		// link can answer. The whole stop must fit the agent's
		// SIGTERM-to-SIGKILL grace (5 s).
		dctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
		defer cancel()
		if derr := link.Drain(dctx); derr != nil {
			log.Warn("link not drained before exit", "err", derr)
		}
		return err
	}
	// Each wait of the relay (NATS reconnecting, an exchange on the air)
	// has its own bound and a restart would not shorten it, so the watchdog
	// only asks that the process is alive.
	return runUnderSystemd(ctx, log, run, rl.Ready(), rl.Status, func() error { return nil })
}

// workloadNATSOptions returns the relay's NATS credentials and a phrase
// naming them for errors: the --creds file if given, else what the agent
// put in the workload environment (read through getenv), with the Nex
// connection rule nexapi.WorkloadNATS.Auth applies.
func workloadNATSOptions(creds string, getenv func(string) string) ([]nats.Option, string, error) {
	if creds != "" {
		return []nats.Option{nats.UserCredentials(creds)}, "creds file " + creds, nil
	}
	w, err := nexapi.ParseWorkloadEnv(getenv)
	if err != nil {
		return nil, "", fmt.Errorf("relay: %w", err)
	}
	switch w.Auth() {
	case nexapi.AuthJWT:
		return []nats.Option{nats.UserJWTAndSeed(w.JWT, w.Seed)}, w.Source(), nil
	case nexapi.AuthNkey:
		kp, err := nkeys.FromSeed([]byte(w.Seed))
		if err != nil {
			return nil, "", fmt.Errorf("relay: %s: %w", nexapi.EnvNATSNkey, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, "", fmt.Errorf("relay: %s: %w", nexapi.EnvNATSNkey, err)
		}
		return []nats.Option{nats.Nkey(pub, kp.Sign)}, w.Source() + " (" + pub + ")", nil
	case nexapi.AuthBasic:
		return []nats.Option{nats.UserInfo(w.User, w.Password)}, w.Source(), nil
	}
	return nil, w.Source(), nil
}

// connectRelay dials the relay's connection. A refused connection names
// the credentials that were tried, so the error points at what to fix.
func connectRelay(server, creds, name string, getenv func(string) string) (*nats.Conn, error) {
	opts, source, err := workloadNATSOptions(creds, getenv)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(server, append(opts, nats.Name(name), nats.MaxReconnects(-1))...)
	if err != nil {
		return nil, fmt.Errorf("relay: connect %s with %s: %w", redactURLs(server), source, err)
	}
	return nc, nil
}

// redactURLs hides the token or user and password a server URL may carry.
func redactURLs(servers string) string {
	parts := strings.Split(servers, ",")
	for i, s := range parts {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func parsePeers(s string) ([]relay.Peer, error) {
	var out []relay.Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("peer %q is not name=address", part)
		}
		n, err := strconv.Atoi(addr)
		if err != nil || n < 1 || n > 254 {
			return nil, fmt.Errorf("peer %q: address must be 1-254", part)
		}
		out = append(out, relay.Peer{Name: name, Addr: uint8(n)})
	}
	if len(out) == 0 {
		return nil, errors.New("no peers given")
	}
	return out, nil
}

// describeRE parses `git describe --tags --always --dirty` past a tag:
// v1.2.3[-pre][-N-gHASH][-dirty]. The prerelease is matched lazily, so
// the commit distance git adds is not taken for one.
var describeRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+?)??)(?:-(\d+)-(g[0-9a-f]+))?(-dirty)?$`)

// semver turns the build's version stamp (git describe, see the Makefile)
// into the SemVer a micro service must carry, keeping what it says. What
// git adds past a tag becomes build metadata, which leaves the release's
// precedence alone (a prerelease would rank the build before its tag):
// v1.2.3 is 1.2.3, v1.2.3-4-gabc1234-dirty is 1.2.3+4.gabc1234.dirty. An
// untagged build (abc1234, dev) is 0.0.0+abc1234.
func semver(v string) string {
	if m := describeRE.FindStringSubmatch(v); m != nil {
		var build []string
		if m[2] != "" {
			build = append(build, m[2], m[3])
		}
		if m[4] != "" {
			build = append(build, "dirty")
		}
		if len(build) == 0 {
			return m[1]
		}
		return m[1] + "+" + strings.Join(build, ".")
	}
	// Build metadata is dot-separated [0-9A-Za-z-]+ identifiers.
	var ids []string
	for _, id := range strings.Split(v, ".") {
		id = strings.Map(func(r rune) rune {
			if r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
				return r
			}
			return '-'
		}, id)
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "0.0.0"
	}
	return "0.0.0+" + strings.Join(ids, ".")
}

// sendConfig is what "nexfield send" reads.
type sendConfig struct {
	to       int
	raw      bool
	asJSON   bool
	timeout  time.Duration
	logLevel string
	radio    *radioConfig
	link     *linkConfig
}

func sendFlags() (*flag.FlagSet, *sendConfig) {
	c := &sendConfig{}
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "YAML configuration file (section \"send:\")")
	fs.IntVar(&c.to, "to", 2, "address of the peer to ask")
	fs.BoolVar(&c.raw, "raw", false, "send the text as a raw message (the peer echoes it) instead of asking for its sentiment")
	fs.BoolVar(&c.asJSON, "json", false, "print the answer as JSON")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	c.radio = addRadioFlags(fs)
	c.link = addLinkFlags(fs, 1)
	return fs, c
}

func runSend(ctx context.Context, e env, args []string) error {
	fs, c := sendFlags()
	fs.SetOutput(e.stderr)
	src, err := cliconf.ParseSources(fs, args, cliconf.Options{Section: "send"})
	if err != nil {
		return err
	}
	if err := mustWork(fs, src, c.check(readDisk)); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	if text == "-" || (text == "" && !isTerminal(e.stdin)) {
		b, err := io.ReadAll(io.LimitReader(e.stdin, int64(c.link.maxMessage)+1))
		if err != nil {
			return err
		}
		text = strings.TrimRight(string(b), "\n")
	}
	if text == "" {
		return usageError{"send: nothing to send (give TEXT, or pipe it in)"}
	}
	log, err := newLogger(e.stderr, "text", c.logLevel)
	if err != nil {
		return err
	}
	stn, err := openStation(ctx, c.radio, c.link, "send", log)
	if err != nil {
		return explain(fs, src, err)
	}
	defer stn.Close()
	r, l := stn.radio, stn.link
	kind := exchange.KindSentiment
	if c.raw {
		kind = exchange.KindRaw
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	bar := newProgressBar(e.stderr, r, l.Overhead())
	reply, st, err := l.Request(ctx, chunking.Addr(c.to), exchange.EncodeRequest(kind, []byte(text)), chunking.WithProgress(bar.update))
	bar.done()
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	body, err := exchange.DecodeReply(reply)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	out := relay.Reply{Peer: fmt.Sprint(c.to), Via: c.link.address, RSSI: st.RSSI, SNR: st.SNR,
		AirtimeMS: float64(st.Airtime.Microseconds()) / 1000, Frames: st.Frames + st.Received, Retries: st.Retries,
		LatencyMS: float64(st.Latency.Microseconds()) / 1000}
	if c.raw {
		out.Data = body
	} else {
		s, err := exchange.DecodeSentiment(body)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		out.Label, out.Scores = s.Label, s.Scores
	}
	if c.asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if c.raw {
		fmt.Fprintf(e.stdout, "%s\n", body)
	} else {
		fmt.Fprintf(e.stdout, "%s (positive %.2f, neutral %.2f, negative %.2f)\n", out.Label,
			out.Scores["positive"], out.Scores["neutral"], out.Scores["negative"])
	}
	fmt.Fprintf(e.stdout, "%d frames, %d retries, %.0f ms on air, %.0f ms total, RSSI %.0f dBm, SNR %.1f dB\n",
		out.Frames, out.Retries, out.AirtimeMS, out.LatencyMS, out.RSSI, out.SNR)
	return nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "[#####-----] 12/40 frames acked, ~3.2 s on air left"
// on one terminal line for long messages.
type progressBar struct {
	w        io.Writer
	perFrame int           // payload bytes per frame
	frameToA time.Duration // time on air of a full frame
	drawn    bool
	last     time.Time
}

func newProgressBar(w io.Writer, r radio.Radio, overhead int) *progressBar {
	p := &progressBar{w: w, perFrame: r.MTU() - overhead}
	if at, ok := r.(radio.Airtimer); ok {
		p.frameToA = at.Airtime(r.MTU())
	}
	if p.perFrame < 1 {
		p.perFrame = 1
	}
	return p
}

func (p *progressBar) update(pr chunking.Progress) {
	frames := (pr.Total + p.perFrame - 1) / p.perFrame
	if frames < 4 {
		return // one short exchange needs no bar
	}
	if time.Since(p.last) < 100*time.Millisecond && pr.Acked < pr.Total {
		return
	}
	p.last = time.Now()
	acked := pr.Acked / p.perFrame
	if pr.Acked == pr.Total {
		acked = frames
	}
	const width = 30
	filled := width * acked / frames
	left := time.Duration(frames-acked) * p.frameToA
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d frames acked, ~%.1f s on air left ", strings.Repeat("#", filled),
		strings.Repeat("-", width-filled), acked, frames, left.Seconds())
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
