// Package demo runs the whole nexfield path on one machine: an embedded NATS
// server with JetStream, a Nex node stand-in, the agent, the relay deployed
// through the Nex protocol from the object store, two air-gapped peers as
// separate processes on a simulated 915 MHz channel, and sample requests.
package demo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"crypto/rand"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/radio/sim"
	"github.com/nexfield/nexfield/relay"
)

// Opts configures a demo run.
type Opts struct {
	// Self is the nexfield executable: uploaded to the object store as the
	// relay workload and started as the peers. Required.
	Self string
	// Samples to send. Nil: Samples().
	Samples []Sample
	// JSON prints one JSON object per answer instead of a table.
	JSON bool
	// Keep leaves everything running until ctx ends and prints how to try it.
	Keep bool
	// Migrate runs two agents and moves the relay between them while requests flow.
	Migrate bool
	// RYLR puts an emulated RYLR998 module on a pseudo-terminal between each
	// station and the simulated channel, so the real UART driver runs.
	// Zero: radios straight on the channel.
	RYLR bool
	// Loss is the simulated channel's i.i.d. frame loss. Zero: none.
	Loss float64
	// Seed makes the simulated channel repeatable.
	Seed int64
	// Dir holds the run's files. Zero: a temporary directory removed at the end.
	Dir string
	// Out receives the report. Nil: io.Discard.
	Out io.Writer
	// Logger receives progress. Nil discards.
	Logger *slog.Logger
	// Verbose copies the child processes' logs to stderr (they always go to
	// files in Dir too).
	Verbose bool
}

// Answer is one request's outcome as the demo reports it.
type Answer struct {
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
	relay.Reply
}

// env is one running demo.
type env struct {
	o      Opts
	log    *slog.Logger
	dir    string
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	hub    string // address of the simulated channel
	air    *sim.Hub
	psk    string // path of the link key file
	res    *Result
	node   *nodesim.Node
	agents []*agentRun

	stopMu   sync.Mutex
	stops    []func()            // run in reverse order at the end
	deployed map[string][]string // agent name -> workload ids
}

// Result is what a demo run produced, with the evidence of how: the relay
// workload as the node saw it and the cached binary the agent ran it from.
type Result struct {
	Answers []Answer
	// Migration is set with Opts.Migrate.
	Migration *MigrationReport
	// Relay is the relay workload as the node's QUERYWORKLOADS reported it.
	Relay nexapi.WorkloadSummary
	// Uploaded is the object store digest of the nexfield binary.
	Uploaded string
	// RelayBinary is the agent's cache file the relay ran from; its SHA-256
	// is Uploaded.
	RelayBinary string
}

// Run runs the demo until the samples are answered (or, with Keep, until ctx
// ends) and stops everything it started.
func Run(ctx context.Context, o Opts) (res *Result, err error) {
	if o.Self == "" {
		return nil, errors.New("demo: the nexfield executable is required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Samples == nil {
		o.Samples = Samples()
	}
	e := &env{o: o, log: o.Logger, res: &Result{}}
	defer e.stopAll()
	if e.dir = o.Dir; e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "nexfield-demo-"); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		e.onStop(func() { os.RemoveAll(e.dir) })
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"start NATS with JetStream", e.startNATS},
		{"write the link key", e.writeKey},
		{"upload nexfield to the object store", e.upload},
		{"open the simulated 915 MHz channel", e.startChannel},
		{"start the emulated RYLR998 modules", e.startModules},
		{"start the air-gapped peers", e.startPeers},
		{"start the node stand-in and the agent", e.startNodeAndAgents},
		{"deploy the relay through the Nex protocol", e.deployRelay},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("demo: %s: %w", s.name, err)
		}
		e.log.Info(s.name, "ms", time.Since(start).Milliseconds())
	}
	if o.Migrate {
		return e.res, e.migrate(ctx)
	}
	answers := e.ask(ctx, o.Samples)
	e.res.Answers = answers
	e.report(answers)
	if o.Keep {
		url := e.ns.ClientURL()
		fmt.Fprintf(o.Out, "\nEverything keeps running; try:\n  nats --server %s req field.sentiment 'Rethink Con is great'\n  nats --server %s req field.sentiment.south 'Copy that, over.'\n  nats --server %s micro ls\n  %s send %s --address 9 --state-dir %s --psk-file %s --to 2 'Battery at 80 percent, moving north.'\nCtrl-C stops it all.\n",
			url, url, url, e.o.Self, strings.Join(e.radioArgs("bench"), " "), filepath.Join(e.dir, "send"), e.psk)
		<-ctx.Done()
	}
	if n := countFailed(answers); n > 0 {
		return e.res, fmt.Errorf("demo: %d of %d requests failed", n, len(answers))
	}
	return e.res, nil
}

func countFailed(as []Answer) int {
	n := 0
	for _, a := range as {
		if a.Error != "" {
			n++
		}
	}
	return n
}

func (e *env) onStop(f func()) {
	e.stopMu.Lock()
	e.stops = append(e.stops, f)
	e.stopMu.Unlock()
}

func (e *env) stopAll() {
	e.stopMu.Lock()
	stops := e.stops
	e.stops = nil
	e.stopMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

func (e *env) startNATS(ctx context.Context) error {
	ns, err := server.NewServer(&server.Options{
		ServerName: "nexfield-demo", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: filepath.Join(e.dir, "jetstream"),
	})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return errors.New("server not ready after 10s")
	}
	e.ns = ns
	e.onStop(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if e.nc, err = nats.Connect(ns.ClientURL(), nats.Name("nexfield-demo")); err != nil {
		return err
	}
	e.onStop(e.nc.Close)
	e.js, err = jetstream.New(e.nc)
	return err
}

func (e *env) writeKey(ctx context.Context) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	e.psk = filepath.Join(e.dir, "link.key")
	return os.WriteFile(e.psk, []byte(hex.EncodeToString(key)+"\n"), 0o600)
}

// Bucket and object the demo uploads nexfield into, as an operator would
// with `nats object put --name nexfield_latest nexfield ./nexfield`.
const (
	Bucket = "nexfield"
	Object = "nexfield_latest"
)

func (e *env) upload(ctx context.Context) error {
	obs, err := e.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: Bucket, Description: "nexfield binaries"})
	if err != nil {
		return err
	}
	f, err := os.Open(e.o.Self)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: Object, Description: "the nexfield binary"}, f)
	if err != nil {
		return err
	}
	e.res.Uploaded = info.Digest
	e.log.Info("uploaded", "object", Bucket+"/"+Object, "bytes", info.Size, "digest", info.Digest)
	return nil
}

// child starts self with args as a process of its own group, logging to a
// file (or Logger with Verbose), and stops it (SIGTERM, then SIGKILL) at the end.
func (e *env) child(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(e.o.Self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logPath := filepath.Join(e.dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	var w io.Writer = lf
	if e.o.Verbose {
		w = io.MultiWriter(lf, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(exited) }()
	e.onStop(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return cmd, nil
}

// logContains reports whether a child's log holds s.
func (e *env) logContains(name, s string) bool {
	b, err := os.ReadFile(filepath.Join(e.dir, name+".log"))
	return err == nil && strings.Contains(string(b), s)
}

// logTail returns the end of a child's log, for error messages.
func (e *env) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return s
}

func (e *env) waitService(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, err := e.nc.Request("$SRV.PING."+name, nil, 250*time.Millisecond); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s did not appear: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ask sends the samples one after another, as NATS requests to the relay.
func (e *env) ask(ctx context.Context, samples []Sample) []Answer {
	var out []Answer
	for _, s := range samples {
		out = append(out, e.askOne(ctx, s))
	}
	return out
}

func (e *env) askOne(ctx context.Context, s Sample) Answer {
	subject := "field.sentiment"
	if s.Peer != "" {
		subject += "." + s.Peer
	}
	a := Answer{Text: s.Text}
	a.Reply.Peer = s.Peer // until the relay says who answered
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	m, err := e.nc.RequestWithContext(ctx, subject, []byte(s.Text))
	if err != nil {
		a.Error = err.Error()
		return a
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		a.Error = code + " " + m.Header.Get(micro.ErrorHeader)
		return a
	}
	if err := json.Unmarshal(m.Data, &a.Reply); err != nil {
		a.Error = err.Error()
	}
	return a
}

func (e *env) report(answers []Answer) {
	if e.o.JSON {
		enc := json.NewEncoder(e.o.Out)
		for _, a := range answers {
			_ = enc.Encode(a)
		}
		return
	}
	tw := tabwriter.NewWriter(e.o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\tlabel\tpos\tneu\tneg\tbytes\tframes\tretries\tairtime ms\tlatency ms\tRSSI\t\ttext")
	for _, a := range answers {
		if a.Error != "" {
			fmt.Fprintf(tw, "%s\tERROR\t\t\t\t%d\t\t\t\t\t\t\t%s: %s\n", a.Reply.Peer, len(a.Text), short(a.Text, 40), a.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t\t%s\n", a.Reply.Peer, a.Label,
			a.Scores["positive"], a.Scores["neutral"], a.Scores["negative"], len(a.Text), a.Frames, a.Retries,
			a.AirtimeMS, a.LatencyMS, a.RSSI, short(a.Text, 48))
	}
	tw.Flush()
}

func short(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
