// Package footprint measures the resident memory of nexfield's field roles,
// each run as a separate process from a given binary, the way a Pi runs
// them: the agent registered with a Nex node stand-in on an embedded NATS
// server with JetStream, idle and then with sleeping services deployed
// through the Nex protocol, and the peer on the simulated channel after it
// has classified messages sent over the link. Figures are VmRSS and VmHWM
// from /proc/PID/status (Linux).
package footprint

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// Opts configures one measurement.
type Opts struct {
	// Bin is the nexfield binary whose processes are measured. Required.
	Bin string
	// Services is how many sleeping services the agent runs for its second
	// figure. Zero: 50.
	Services int
	// Messages are the texts the peer classifies before it is measured.
	// Nil: Samples.
	Messages []string
	// Env is added to the environment of the measured processes, e.g.
	// GOGC=50 or GOMEMLIMIT=12MiB to see what a unit's setting would do.
	Env []string
	// Settle is how long a process stays idle after its work before it is
	// read, so the figure is the steady state rather than the moment after
	// a burst. Zero: 3 s.
	Settle time.Duration
	// Logger receives progress. Nil discards.
	Logger *slog.Logger
}

// Samples are the peer's default messages: short status texts like the
// ones a field crew sends.
var Samples = []string{"Rethink Con is great", "The relay is broken again, this is terrible.",
	"Arrived at checkpoint 3.", "Battery at 80 percent, moving north.", "Copy that, over."}

// Memory is a process's resident memory in bytes.
type Memory struct {
	RSS uint64 `json:"rss_bytes"` // VmRSS: resident now
	HWM uint64 `json:"hwm_bytes"` // VmHWM: the most it has been resident
	// Anon is the part of RSS that is the process's own (heap, stacks,
	// runtime data: RssAnon); File is pages of the binary and other mapped
	// files (RssFile), which the kernel can drop and read again.
	Anon uint64 `json:"anon_bytes"`
	File uint64 `json:"file_bytes"`
}

// Report is one binary's figures.
type Report struct {
	Bin string `json:"bin"`
	// AgentIdle is the agent registered with the node and heartbeating.
	AgentIdle Memory `json:"agent_idle"`
	// AgentServices is the same agent with Services running (the agent's
	// own process; the services are processes of their own).
	AgentServices Memory `json:"agent_services"`
	Services      int    `json:"services"`
	// Peer is the peer on the simulated channel after answering Messages.
	Peer     Memory `json:"peer"`
	Messages int    `json:"messages"`
}

// Measure runs the agent, then the peer, from o.Bin and reads their memory.
// It stops every process it started, services included.
func Measure(ctx context.Context, o *Opts) (*Report, error) {
	if o == nil || o.Bin == "" {
		return nil, errors.New("footprint: Opts.Bin (the nexfield binary to measure) is required")
	}
	m := &run{o: *o}
	if m.o.Services == 0 {
		m.o.Services = 50
	}
	if m.o.Messages == nil {
		m.o.Messages = Samples
	}
	if m.o.Settle == 0 {
		m.o.Settle = 3 * time.Second
	}
	if m.o.Logger == nil {
		m.o.Logger = slog.New(slog.DiscardHandler)
	}
	m.log = m.o.Logger
	var err error
	if m.dir, err = os.MkdirTemp("", "nexfield-footprint-"); err != nil {
		return nil, fmt.Errorf("footprint: %w", err)
	}
	defer os.RemoveAll(m.dir)
	defer m.stopAll()
	rep := &Report{Bin: o.Bin, Services: m.o.Services, Messages: len(m.o.Messages)}
	if err := m.agent(ctx, rep); err != nil {
		return nil, fmt.Errorf("footprint: agent: %w", err)
	}
	m.stopAll()
	if err := m.peer(ctx, rep); err != nil {
		return nil, fmt.Errorf("footprint: peer: %w", err)
	}
	return rep, nil
}

// run is one Measure call.
type run struct {
	o     Opts
	log   *slog.Logger
	dir   string
	stops []func() // run in reverse order
}

func (m *run) onStop(f func()) { m.stops = append(m.stops, f) }

func (m *run) stopAll() {
	for len(m.stops) > 0 {
		f := m.stops[len(m.stops)-1]
		m.stops = m.stops[:len(m.stops)-1]
		f()
	}
}

// sleeper is the service the agent runs Services of: a script, which the
// agent's artifact check accepts like an ELF binary. The sleep is finite so
// that nothing outlives a measurement that was killed before clean-up.
const sleeper = "#!/bin/sh\nexec sleep 900\n"

const bucket = "footprint"

func (m *run) agent(ctx context.Context, rep *Report) error {
	ns, err := server.NewServer(&server.Options{ServerName: "nexfield-footprint", Host: "127.0.0.1", Port: -1,
		NoLog: true, NoSigs: true, JetStream: true, StoreDir: filepath.Join(m.dir, "jetstream")})
	if err != nil {
		return err
	}
	go ns.Start()
	m.onStop(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("NATS server not ready after 10s")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("nexfield-footprint"))
	if err != nil {
		return err
	}
	m.onStop(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket})
	if err != nil {
		return err
	}
	if _, err := obs.PutString(ctx, "sleeper_latest", sleeper); err != nil {
		return err
	}
	node, err := nodesim.New(nc, &nodesim.Opts{Nexus: "nexus", Logger: m.log.With("component", "node")})
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	m.onStop(func() { node.Stop() })

	pid, err := m.child("agent", "agent", "--config", os.DevNull, "--server", ns.ClientURL(), "--nexus", "nexus",
		"--name", "footprint", "--state-dir", filepath.Join(m.dir, "agent"), "--heartbeat", "1s", "--log-level", "warn")
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	a, err := node.WaitAgent(wctx, agent.DefaultType)
	cancel()
	if err != nil {
		return fmt.Errorf("%w; its log:\n%s", err, m.logTail("agent"))
	}
	m.log.Info("agent registered", "pid", pid, "agent_id", a.ID)
	if rep.AgentIdle, err = m.settleAndRead(ctx, pid); err != nil {
		return err
	}

	run, err := json.Marshal(agent.StartRequest{URI: "nats://" + bucket + "/sleeper", Description: "sleeps"})
	if err != nil {
		return err
	}
	var ids []string
	// Undeploy before the agent stops: a stopped agent leaves its
	// workloads running by design.
	m.onStop(func() {
		for _, id := range ids {
			uctx, ucancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = node.Undeploy(uctx, "default", id)
			ucancel()
		}
	})
	for i := range m.o.Services {
		id := nuid.Next()
		req := nexapi.StartWorkloadRequest{Name: fmt.Sprintf("sleeper-%d", i), Namespace: "default",
			WorkloadType: agent.DefaultType, WorkloadLifecycle: nexapi.LifecycleService, RunRequest: string(run),
			Tags: map[string]string{}}
		if _, err := node.StartWorkload(ctx, a.ID, id, req); err != nil {
			return fmt.Errorf("start service %d: %w", i, err)
		}
		ids = append(ids, id)
	}
	if err := waitRunning(ctx, node, len(ids)); err != nil {
		return err
	}
	m.log.Info("services running", "n", len(ids))
	rep.AgentServices, err = m.settleAndRead(ctx, pid)
	return err
}

// waitRunning polls the node until n workloads report running.
func waitRunning(ctx context.Context, node *nodesim.Node, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	running := 0
	for {
		ws, err := node.Query(ctx, "default", nil)
		if err == nil {
			running = 0
			for _, w := range ws {
				if w.WorkloadState == "running" {
					running++
				}
			}
			if running >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d services running: %w", running, n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *run) peer(ctx context.Context, rep *Report) error {
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	hub, err := sim.ListenHub(hctx, "127.0.0.1:0", &sim.HubOpts{
		Opts: sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}}, Logger: m.log.With("component", "air")})
	if err != nil {
		hcancel()
		return err
	}
	m.onStop(func() { hcancel(); hub.Close() })
	psk := make([]byte, 32)
	if _, err := rand.Read(psk); err != nil {
		return err
	}
	keyFile := filepath.Join(m.dir, "link.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(psk)+"\n"), 0o600); err != nil {
		return err
	}
	pid, err := m.child("peer", "peer", "--config", os.DevNull, "--driver", "sim", "--hub", hub.Addr(), "--region", "none",
		"--radio-name", "peer", "--address", "2", "--psk-file", keyFile, "--state-dir", filepath.Join(m.dir, "peer"))
	if err != nil {
		return err
	}
	if err := m.waitLog(ctx, "peer", "peer listening", 30*time.Second); err != nil {
		return err
	}
	jctx, jcancel := context.WithTimeout(ctx, 10*time.Second)
	r, err := sim.DialUDP(jctx, hub.Addr(), &sim.RadioOpts{Name: "footprint"})
	jcancel()
	if err != nil {
		return err
	}
	m.onStop(func() { r.Close() })
	l, err := chunking.New(r, 1, psk, &chunking.Opts{Logger: m.log.With("component", "link")})
	if err != nil {
		return err
	}
	m.onStop(func() { l.Close() })
	for _, text := range m.o.Messages {
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		reply, _, err := l.Request(rctx, 2, exchange.EncodeRequest(exchange.KindSentiment, []byte(text)))
		rcancel()
		if err != nil {
			return fmt.Errorf("classify %q: %w", text, err)
		}
		body, err := exchange.DecodeReply(reply)
		if err != nil {
			return fmt.Errorf("classify %q: %w", text, err)
		}
		s, err := exchange.DecodeSentiment(body)
		if err != nil {
			return fmt.Errorf("classify %q: %w", text, err)
		}
		m.log.Info("classified", "text", text, "label", s.Label)
	}
	rep.Peer, err = m.settleAndRead(ctx, pid)
	return err
}

func (m *run) settleAndRead(ctx context.Context, pid int) (Memory, error) {
	select {
	case <-ctx.Done():
		return Memory{}, ctx.Err()
	case <-time.After(m.o.Settle):
	}
	return ReadMemory(pid)
}

// child starts o.Bin with args in a process group of its own, its output in
// a log file, and stops it (SIGTERM, then SIGKILL) at the end.
func (m *run) child(name string, args ...string) (int, error) {
	cmd := exec.Command(m.o.Bin, args...)
	cmd.Env = append(os.Environ(), m.o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lf, err := os.Create(filepath.Join(m.dir, name+".log"))
	if err != nil {
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return 0, fmt.Errorf("start %s: %w", m.o.Bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(exited) }()
	m.onStop(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return cmd.Process.Pid, nil
}

func (m *run) waitLog(ctx context.Context, name, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if b, err := os.ReadFile(filepath.Join(m.dir, name+".log")); err == nil && bytes.Contains(b, []byte(want)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not log %q: %w; its log:\n%s", name, want, ctx.Err(), m.logTail(name))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *run) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, name+".log"))
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return s
}

// ReadMemory reads VmRSS, VmHWM, RssAnon and RssFile of a process from
// /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("footprint: %w", err)
	}
	defer f.Close()
	return parseStatus(f, f.Name())
}

func parseStatus(r io.Reader, name string) (Memory, error) {
	var mem Memory
	fields := map[string]*uint64{"VmRSS": &mem.RSS, "VmHWM": &mem.HWM, "RssAnon": &mem.Anon, "RssFile": &mem.File}
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(val), " ")
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || unit != "kB" {
			return Memory{}, fmt.Errorf("footprint: %s: %q: not a kB figure", name, sc.Text())
		}
		*dst = n << 10
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("footprint: %s: %w", name, err)
	}
	if found != len(fields) {
		return Memory{}, fmt.Errorf("footprint: %s lacks VmRSS, VmHWM, RssAnon or RssFile (a kernel thread, a zombie, or a kernel before 4.5)", name)
	}
	return mem, nil
}
