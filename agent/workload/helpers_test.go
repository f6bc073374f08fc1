package workload_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/agent/workload"
	"github.com/nexfield/nexfield/internal/natstest"
)

// wlBin is testdata/wl, built once per test binary run.
var wlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nexfield-workload-test")
	if err != nil {
		panic(err)
	}
	wlBin = filepath.Join(dir, "wl")
	cmd := exec.Command("go", "build", "-o", wlBin, "./testdata/wl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build wl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recorder is an Events sink the tests read.
type recorder struct {
	mu      sync.Mutex
	logs    map[string][]string // "id/stream" -> lines
	started []workload.Status
	stopped []workload.Status
}

func (r *recorder) Log(ns, id, stream string, line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		r.logs = map[string][]string{}
	}
	r.logs[id+"/"+stream] = append(r.logs[id+"/"+stream], string(line))
}

func (r *recorder) Started(st workload.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, st)
}

func (r *recorder) Stopped(st workload.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = append(r.stopped, st)
}

func (r *recorder) lines(id, stream string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.logs[id+"/"+stream])
}

func (r *recorder) stoppedOf(id string) (workload.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.stopped {
		if st.Spec.ID == id {
			return st, true
		}
	}
	return workload.Status{}, false
}

func (r *recorder) hasLine(id, stream, want string) bool {
	return slices.Contains(r.lines(id, stream), want)
}

// eventually polls f every 5 ms until it holds or total passes.
func eventually(t testing.TB, total time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", total, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rig is a NATS server with user/password auth (the workload's
// credentials), an artifact store and a supervisor on a state dir.
type rig struct {
	t       testing.TB
	srv     *server.Server
	nc      *nats.Conn
	creds   workload.Creds
	store   *artifact.Store
	dir     string
	ev      *recorder
	sup     *workload.Supervisor
	secrets string
	logger  *slog.Logger // for the next supervisor; nil: discard
	backlog int64        // Opts.OutputBacklog of the next supervisor
}

func newRig(t testing.TB) *rig {
	t.Helper()
	o := natstest.Options(t)
	o.Username, o.Password = "wl", "s3cret"
	srv := natstest.RunServerWithOptions(t, o)
	r := &rig{t: t, srv: srv, dir: t.TempDir()}
	r.nc = natstest.Connect(t, srv, nats.UserInfo("wl", "s3cret"))
	r.creds = workload.Creds{Servers: []string{srv.ClientURL()}, User: "wl", Password: "s3cret"}
	var err error
	if r.store, err = artifact.New(filepath.Join(r.dir, "artifacts"), nil); err != nil {
		t.Fatal(err)
	}
	r.secrets = filepath.Join(r.dir, "secrets.yaml")
	os.WriteFile(r.secrets, []byte("ns1:\n  token: tok-123\n  other: x\n"), 0o600)
	r.sup = r.supervisor()
	return r
}

// supervisor makes a supervisor on the rig's state dir (a new one plays a
// restarted agent) and closes it with the test.
func (r *rig) supervisor() *workload.Supervisor {
	r.t.Helper()
	return r.supervisorOn(filepath.Join(r.dir, "workloads"), nil)
}

// supervisorOn is supervisor with another state dir and a logger.
func (r *rig) supervisorOn(stateDir string, log *slog.Logger) *workload.Supervisor {
	r.t.Helper()
	r.ev = &recorder{}
	sup, err := workload.New(&workload.Opts{
		StateDir:      stateDir,
		Artifacts:     r.store,
		Events:        r.ev,
		StopGrace:     300 * time.Millisecond,
		SecretsFile:   r.secrets,
		Logger:        cmp.Or(log, r.logger),
		OutputBacklog: r.backlog,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sup.StopAll(ctx)
		sup.Close(ctx)
	})
	return sup
}

func (r *rig) spec(id string, lc workload.Lifecycle, argv ...string) workload.Spec {
	return workload.Spec{ID: id, Namespace: "ns1", Lifecycle: lc, URI: "file://" + wlBin, Argv: argv, Creds: r.creds,
		Restart: workload.RestartPolicy{MaxRestarts: 3, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}}
}

func (r *rig) start(spec workload.Spec) workload.Status {
	r.t.Helper()
	st, err := r.sup.Start(context.Background(), spec)
	if err != nil {
		r.t.Fatalf("start %s: %v", spec.ID, err)
	}
	return st
}

func (r *rig) waitState(id string, want workload.State) workload.Status {
	r.t.Helper()
	var st workload.Status
	eventually(r.t, 10*time.Second, fmt.Sprintf("%s in state %s", id, want), func() bool {
		st, _ = r.sup.Get(id)
		return st.State == want
	})
	return st
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}
