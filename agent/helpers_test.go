package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/internal/natstest"
)

// workloadBin is the test workload (testdata/workload) built once by TestMain.
var workloadBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nexfield-agent-test")
	if err != nil {
		panic(err)
	}
	workloadBin = filepath.Join(dir, "workload")
	cmd := exec.Command("go", "build", "-o", workloadBin, "./testdata/workload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test workload: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rig is one NATS server, one node stand-in and one agent.
type rig struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn // the test's own connection
	node   *nodesim.Node
	agent  *agent.Agent
	opts   agent.Opts
	cancel context.CancelFunc
	done   chan error
}

type rigOpts struct {
	nodeState bool
	agentOpts func(*agent.Opts)
	srvOpts   *server.Options
}

func newRig(t *testing.T, ro rigOpts) *rig {
	t.Helper()
	so := ro.srvOpts
	if so == nil {
		so = natstest.Options(t)
	}
	r := &rig{t: t, srv: natstest.RunServerWithOptions(t, so)}
	r.nc = natstest.Connect(t, r.srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	nodeNC := natstest.Connect(t, r.srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	var err error
	// Scatters wait for every registration, dead ones included (as the node
	// does); a short window keeps tests with restarted agents quick.
	r.node, err = nodesim.New(nodeNC, &nodesim.Opts{State: ro.nodeState, HeartbeatInterval: time.Hour, RequestTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.node.Stop() })
	r.opts = agent.Opts{
		Servers:       []string{r.srv.ClientURL()},
		Name:          "pi-test",
		StateDir:      t.TempDir(),
		Heartbeat:     100 * time.Millisecond,
		NodeSilence:   3 * time.Second,
		RetryBackoff:  50 * time.Millisecond,
		ReconnectWait: 50 * time.Millisecond,
		StopGrace:     time.Second,
	}
	if testing.Verbose() {
		r.opts.Logger = testLogger(t)
	}
	if ro.agentOpts != nil {
		ro.agentOpts(&r.opts)
	}
	r.startAgent()
	return r
}

// startAgent runs a fresh agent on r.opts and waits until the node sees it
// healthy.
func (r *rig) startAgent() {
	r.t.Helper()
	a, err := agent.New(&r.opts)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.agent, r.cancel, r.done = a, cancel, make(chan error, 1)
	go func() { r.done <- a.Run(ctx) }()
	r.t.Cleanup(r.stopAgent)
	// Workloads outlive their agent by design; the test's must not outlive
	// the test. Cleanups run last-in first-out, so this runs while the agent
	// is still up.
	r.t.Cleanup(r.undeployAll)
	select {
	case <-a.Ready():
	case err := <-r.done:
		r.t.Fatalf("agent exited: %v", err)
	case <-time.After(10 * time.Second):
		r.t.Fatal("agent not ready")
	}
	r.waitHealthy(a.AgentID())
}

// undeployAll stops every workload the current agent still runs.
func (r *rig) undeployAll() {
	if r.cancel == nil {
		return
	}
	list, err := r.node.Query(context.Background(), "system", nil)
	if err != nil {
		return
	}
	for _, w := range list {
		if w.WorkloadState != "stopped" && w.WorkloadState != "error" {
			r.node.Undeploy(context.Background(), w.Namespace, w.ID)
		}
	}
}

// stopAgent ends Run; workloads keep running (as with systemd restarting
// the agent).
func (r *rig) stopAgent() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("agent Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		r.t.Error("agent Run did not return")
	}
}

func (r *rig) waitHealthy(agentID string) nodesim.Agent {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := r.node.WaitHealthy(ctx, agentID)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// putWorkload stores the test workload binary as object NAME_TAG of bucket
// and returns its object-store digest.
func (r *rig) putWorkload(bucket, object, path string) string {
	r.t.Helper()
	return putObject(r.t, r.nc, bucket, object, path)
}

func putObject(t testing.TB, nc *nats.Conn, bucket, object, path string) string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: object}, f)
	if err != nil {
		t.Fatal(err)
	}
	return info.Digest
}

func runRequest(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startRaw sends STARTWORKLOAD straight to the agent (no node-side schema
// check) and returns the reply.
func (r *rig) startRaw(workloadID string, body []byte) *nats.Msg {
	r.t.Helper()
	m, err := r.nc.Request(nexapi.StartWorkloadSubject(r.node.ID(), r.agent.AgentID(), workloadID), body, 55*time.Second)
	if err != nil {
		r.t.Fatalf("start %s: %v", workloadID, err)
	}
	return m
}

func (r *rig) startReq(workloadID, name, lifecycle string, run any) *nats.Msg {
	r.t.Helper()
	rr, ok := run.(string)
	if !ok {
		rr = runRequest(r.t, run)
	}
	body, _ := json.Marshal(nexapi.AgentStartWorkloadRequest{
		Request: nexapi.StartWorkloadRequest{Name: name, Namespace: "default", RunRequest: rr,
			WorkloadLifecycle: lifecycle, WorkloadType: "nexfield"},
		WorkloadCreds: nexapi.NatsConnectionData{NatsServers: []string{r.srv.ClientURL()}},
	})
	return r.startRaw(workloadID, body)
}

func errCode(m *nats.Msg) (code, desc string) {
	if m.Header == nil {
		return "", ""
	}
	return m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader)
}

func (r *rig) query(ns string) []nexapi.WorkloadSummary {
	r.t.Helper()
	out, err := r.node.Query(context.Background(), ns, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *rig) summary(id string) (nexapi.WorkloadSummary, bool) {
	for _, s := range r.query("system") {
		if s.ID == id {
			return s, true
		}
	}
	return nexapi.WorkloadSummary{}, false
}

// eventually polls f every 20 ms until it is true or total has passed.
func eventually(t *testing.T, total time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", total, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) subscribe(subject string) *nats.Subscription {
	r.t.Helper()
	sub, err := r.nc.SubscribeSync(subject)
	if err != nil {
		r.t.Fatal(err)
	}
	r.nc.Flush()
	r.t.Cleanup(func() { sub.Unsubscribe() })
	return sub
}

// nextMatching returns the next message on sub whose body contains want.
func nextMatching(t *testing.T, sub *nats.Subscription, want string, total time.Duration) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %q on %s: %v", want, sub.Subject, err)
		}
		if strings.Contains(string(m.Data), want) {
			return m
		}
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// /proc/<pid>/stat state Z is a zombie, which is dead for our purpose.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func hostArchOther() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
