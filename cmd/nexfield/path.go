package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
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
	return fs, c
}

func runRelay(ctx context.Context, e env, args []string) error {
	fs, c := relayFlags()
	fs.SetOutput(e.stderr)
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "relay",
		EnvAliases: map[string][]string{"server": {"NATS_URL", "NEX_WORKLOAD_NATS_SERVERS"}}}); err != nil {
		return err
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	peers, err := parsePeers(c.peers)
	if err != nil {
		return usageError{err.Error()}
	}
	opts, err := workloadNATSOptions(c.creds)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(c.server, append(opts, nats.Name(c.name), nats.MaxReconnects(-1))...)
	if err != nil {
		return fmt.Errorf("relay: connect %s: %w", c.server, err)
	}
	defer nc.Close()
	st, err := openStation(ctx, c.radio, c.link, "relay", log)
	if err != nil {
		return err
	}
	defer st.Close()
	link := st.link
	rl, err := relay.New(nc, relay.OverLink(link), &relay.Opts{
		Name: c.name, Version: semver(), Subject: c.subject, Address: uint8(c.link.address), Peers: peers,
		DefaultPeer: c.defaultPeer, QueueDepth: c.queue, Timeout: c.timeout, MaxMessage: c.maxMessage,
		Logger: log.With("component", "relay"),
	})
	if err != nil {
		return err
	}
	err = rl.Run(ctx)
	// Let the last reply's acknowledgement leave before the radio closes,
	// and stay to repeat it to a peer that missed it. The whole stop must
	// fit the agent's SIGTERM-to-SIGKILL grace (5 s).
	fctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	if ferr := linger(fctx, link, lingerQuiet(st.radio, c.link.turnaround)); ferr != nil {
		log.Warn("link not flushed before exit", "err", ferr)
	}
	return err
}

// flushStatser is the part of a chunking.Link that linger uses.
type flushStatser interface {
	Flush(ctx context.Context) error
	Stats() chunking.EngineStats
}

// linger returns once nothing is left to send and no frame for us has
// arrived for quiet, or when ctx ends. The final RACK of an exchange is the
// one frame nobody acknowledges: if it is lost (a radio without carrier
// sense talking over it, such as the relay that takes over), the peer keeps
// asking for it with RPOLLs for its whole retry budget, tens of seconds
// during which its own transmissions deafen its half-duplex radio to the
// new relay. Staying until the peer falls silent answers those RPOLLs (the
// engine repeats the RACK).
func linger(ctx context.Context, l flushStatser, quiet time.Duration) error {
	if l.Stats().Accepted == 0 {
		return l.Flush(ctx) // no peer ever heard from: none is waiting for us
	}
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		if err := l.Flush(ctx); err != nil {
			return err
		}
		seen := l.Stats().Accepted
		t.Reset(quiet)
		select {
		case <-ctx.Done():
			return nil // nothing pending; only the wait for silence was cut short
		case <-t.C:
		}
		if l.Stats().Accepted == seen {
			return l.Flush(ctx)
		}
	}
}

// lingerQuiet is how long a peer that missed our final RACK may take to ask
// again: its RPOLL timer (the airtime of a whole frame, an ACK, two
// turnarounds and slack, as the engine sets it) with margin.
func lingerQuiet(r radio.Radio, turnaround time.Duration) time.Duration {
	if turnaround == 0 {
		turnaround = driverTurnaround(r)
	}
	q := 400*time.Millisecond + 4*turnaround
	if at, ok := r.(radio.Airtimer); ok {
		q += 2 * (at.Airtime(r.MTU()) + at.Airtime(48))
	} else {
		q += 800 * time.Millisecond
	}
	return max(q, time.Second)
}

// workloadNATSOptions returns the credentials a workload got from the agent
// (NEX_WORKLOAD_NATS_B64_JWT and NEX_WORKLOAD_NATS_NKEY), or a creds file.
func workloadNATSOptions(creds string) ([]nats.Option, error) {
	if creds != "" {
		return []nats.Option{nats.UserCredentials(creds)}, nil
	}
	b64, seed := os.Getenv("NEX_WORKLOAD_NATS_B64_JWT"), os.Getenv("NEX_WORKLOAD_NATS_NKEY")
	if b64 == "" {
		return nil, nil
	}
	jwt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if jwt, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("relay: NEX_WORKLOAD_NATS_B64_JWT is not base64: %w", err)
		}
	}
	if !strings.HasPrefix(seed, "SU") {
		return nil, errors.New("relay: NEX_WORKLOAD_NATS_B64_JWT is set but NEX_WORKLOAD_NATS_NKEY holds no user seed")
	}
	return []nats.Option{nats.UserJWTAndSeed(string(jwt), seed)}, nil
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

// semver is the build version as a micro service accepts it.
func semver() string {
	v := strings.TrimPrefix(version, "v")
	if _, _, ok := strings.Cut(v, "."); !ok {
		return "0.0.0"
	}
	return v
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
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "send"}); err != nil {
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
	if c.to < 1 || c.to > 254 {
		return usageError{"send: --to must be 1-254"}
	}
	log, err := newLogger(e.stderr, "text", c.logLevel)
	if err != nil {
		return err
	}
	stn, err := openStation(ctx, c.radio, c.link, "send", log)
	if err != nil {
		return err
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
