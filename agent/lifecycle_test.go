package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
)

func deployReq(name, lifecycle string, run agent.StartRequest) nexapi.StartWorkloadRequest {
	b, _ := json.Marshal(run)
	return nexapi.StartWorkloadRequest{Name: name, Namespace: "default", WorkloadLifecycle: lifecycle, RunRequest: string(b), Tags: map[string]string{"app": name}}
}

func (r *rig) deploy(t *testing.T, req nexapi.StartWorkloadRequest) string {
	t.Helper()
	id, err := r.node.Deploy(context.Background(), "nexfield", req)
	if err != nil {
		t.Fatalf("deploy %s: %v", req.Name, err)
	}
	return id
}

func decodeEvent[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("event %s: %v", m.Subject, err)
	}
	return v
}

// TestServiceLifecycle: deploy from the object store, logs and events on the
// namespace subjects, query/get, stop with SIGTERM, events again.
func TestServiceLifecycle(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.putWorkload("artifacts", "wl_latest", workloadBin)
	events := r.subscribe("$NEX.FEED.default.events.*")
	logs := r.subscribe("$NEX.FEED.default.logs.>")

	id := r.deploy(t, deployReq("svc", "service", agent.StartRequest{URI: "nats://artifacts/wl", Argv: []string{"serve"}}))

	m := nextMatching(t, events, id, 10*time.Second)
	if m.Subject != "$NEX.FEED.default.events.WORKLOADSTARTED" {
		t.Fatalf("first event %s", m.Subject)
	}
	ev := decodeEvent[nexapi.WorkloadStartedEvent](t, m)
	if ev.ID != id || ev.Namespace != "default" || ev.WorkloadType != "nexfield" {
		t.Errorf("started event %+v", ev)
	}
	// The workload saw its NATS servers in the native nexlet's variable.
	m = nextMatching(t, logs, "serving true", 10*time.Second)
	if m.Subject != nexapi.LogSubject("default", id, "stdout") {
		t.Errorf("log subject %s", m.Subject)
	}

	s, ok := r.summary(id)
	if !ok || s.WorkloadState != "running" || s.Name != "svc" || s.Namespace != "default" || s.WorkloadLifecycle != "service" || s.WorkloadType != "nexfield" || s.Tags["app"] != "svc" {
		t.Fatalf("summary %+v (found %v)", s, ok)
	}
	pid, _ := strconv.Atoi(s.Metadata["pid"])
	if !processAlive(pid) {
		t.Fatalf("pid %q is not alive", s.Metadata["pid"])
	}
	if got := r.query("other"); len(got) != 0 {
		t.Errorf("namespace other sees %d workloads", len(got))
	}
	if got, _ := r.node.Query(context.Background(), "default", []string{"svc"}); len(got) != 1 {
		t.Errorf("filter by name: %d workloads", len(got))
	}

	// Clone path: GETWORKLOAD gives the deploy request back.
	got, err := r.node.GetWorkload(context.Background(), "default", id)
	if err != nil || got.Name != "svc" || got.Namespace != "default" || !strings.Contains(got.RunRequest, "nats://artifacts/wl") {
		t.Errorf("get workload: %+v %v", got, err)
	}

	resp, err := r.node.Undeploy(context.Background(), "default", id)
	if err != nil || !resp.Stopped || resp.WorkloadType != "nexfield" || resp.ID != id {
		t.Fatalf("undeploy: %+v %v", resp, err)
	}
	m = nextMatching(t, events, id, 10*time.Second)
	for m.Subject != "$NEX.FEED.default.events.WORKLOADSTOPPED" {
		m = nextMatching(t, events, id, 10*time.Second)
	}
	eventually(t, 10*time.Second, "process gone", func() bool { return !processAlive(pid) })
	if resp, _ := r.node.Undeploy(context.Background(), "default", id); resp.Stopped {
		t.Error("second stop reported stopped")
	}
}

// TestJobLifecycle: a job runs once; its exit code is in the stopped event.
func TestJobLifecycle(t *testing.T) {
	r := newRig(t, rigOpts{})
	events := r.subscribe("$NEX.FEED.default.events.WORKLOADSTOPPED")
	logs := r.subscribe("$NEX.FEED.default.logs.>")
	for _, tc := range []struct {
		name     string
		argv     []string
		code     string
		stream   string
		logWant  string
		errEvent bool
	}{
		{"ok", []string{"echo", "hello", "field"}, "", "stdout", "hello field", false},
		{"fails", []string{"exit", "3"}, "3", "stderr", "exiting with 3", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := r.deploy(t, deployReq("job-"+tc.name, "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: tc.argv}))
			m := nextMatching(t, logs, tc.logWant, 10*time.Second)
			if m.Subject != nexapi.LogSubject("default", id, tc.stream) {
				t.Errorf("log on %s", m.Subject)
			}
			ev := decodeEvent[nexapi.WorkloadStoppedEvent](t, nextMatching(t, events, id, 10*time.Second))
			if tc.errEvent != (ev.Error != nil) || (ev.Error != nil && ev.Error.Code != tc.code) {
				t.Errorf("stopped event %+v error %+v, want code %q", ev, ev.Error, tc.code)
			}
		})
	}
}

// TestFunctionLifecycle: a warm function runs once per trigger, payload on
// stdin, stdout as the reply with the SDK's headers.
func TestFunctionLifecycle(t *testing.T) {
	r := newRig(t, rigOpts{})
	id := r.deploy(t, deployReq("fn", "function", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"upper"}, TriggerSubject: "field.upper", TriggerTimeout: "5s"}))
	eventually(t, 10*time.Second, "function warm", func() bool {
		s, ok := r.summary(id)
		return ok && s.WorkloadState == "warm"
	})
	m, err := r.nc.Request("field.upper", []byte("hello pi"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "HELLO PI" || m.Header.Get("workload_id") != id || m.Header.Get("namespace") != "default" || m.Header.Get("error") != "" {
		t.Errorf("reply %q headers %v", m.Data, m.Header)
	}
	m, err = r.nc.Request("field.upper", []byte("fail"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("error") == "" {
		t.Errorf("failed run: no error header (%v, %q)", m.Header, m.Data)
	}
	if resp, err := r.node.Undeploy(context.Background(), "default", id); err != nil || !resp.Stopped {
		t.Fatalf("undeploy %+v %v", resp, err)
	}
	// A trigger for a stopped function finds nobody.
	if _, err := r.nc.Request("field.upper", []byte("x"), time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("trigger after stop: %v, want no responders", err)
	}
}

// TestServiceCrashLoop: a service that exits at once is restarted with
// back-off up to its cap, then reported failed.
func TestServiceCrashLoop(t *testing.T) {
	r := newRig(t, rigOpts{})
	events := r.subscribe("$NEX.FEED.default.events.WORKLOADSTOPPED")
	id := r.deploy(t, deployReq("crasher", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"crash"},
		Restart: &agent.RestartPolicy{MaxRestarts: 2, InitialBackoff: "20ms", MaxBackoff: "2s"}}))
	ev := decodeEvent[nexapi.WorkloadStoppedEvent](t, nextMatching(t, events, id, 15*time.Second))
	if ev.Error == nil {
		t.Errorf("given-up service stopped without error: %+v", ev)
	}
	s, ok := r.summary(id)
	if !ok || s.WorkloadState != "error" || s.Metadata["restarts"] != "2" {
		t.Errorf("summary after crash loop %+v", s)
	}
}

// TestRuntimeBadInputs: failures found while fetching or checking the
// binary are answered with code 100 and say what is wrong; nothing runs.
func TestRuntimeBadInputs(t *testing.T) {
	r := newRig(t, rigOpts{})
	digest := r.putWorkload("artifacts", "wl_latest", workloadBin)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a program\n"), 0o755)
	foreign := filepath.Join(dir, "foreign")
	cmd := exec.Command("go", "build", "-o", foreign, "./testdata/workload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+hostArchOther())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cross build: %v\n%s", err, out)
	}
	r.putWorkload("artifacts", "foreign_latest", foreign)
	other := "SHA-256=" + strings.Repeat("A", 43) + "="
	if other == digest {
		t.Fatal("digest collision")
	}

	for i, tc := range []struct {
		name string
		run  agent.StartRequest
		want string
	}{
		{"missing bucket", agent.StartRequest{URI: "nats://nobucket/wl"}, `bucket "nobucket" does not exist`},
		{"missing object", agent.StartRequest{URI: "nats://artifacts/nope"}, "nope_latest"},
		{"digest mismatch", agent.StartRequest{URI: "nats://artifacts/wl", Digest: other}, "digest mismatch"},
		{"wrong architecture", agent.StartRequest{URI: "nats://artifacts/foreign"}, "wrong architecture"},
		{"not executable", agent.StartRequest{URI: "file://" + text}, "not executable"},
		{"missing file", agent.StartRequest{URI: "file://" + filepath.Join(dir, "absent")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := r.startReq("RT"+strconv.Itoa(i), "rt", "job", tc.run)
			code, desc := errCode(m)
			if code != "100" || !strings.Contains(strings.ToLower(desc), tc.want) {
				t.Errorf("code %q desc %q; want 100 mentioning %q", code, desc, tc.want)
			}
		})
	}
	for _, s := range r.query("system") {
		if s.WorkloadState == "running" {
			t.Errorf("refused workload running: %+v", s)
		}
	}
}

// TestAgentRestartAdopts: the agent process goes away (upgrade, crash) and
// comes back on the same state dir; the running service is adopted, not
// restarted, and the node's existing_state does not duplicate it.
func TestAgentRestartAdopts(t *testing.T) {
	r := newRig(t, rigOpts{nodeState: true})
	id := r.deploy(t, deployReq("keeper", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	s, _ := r.summary(id)
	pid := s.Metadata["pid"]
	p, _ := strconv.Atoi(pid)
	if !processAlive(p) {
		t.Fatalf("service not running: %+v", s)
	}
	r.stopAgent()
	if !processAlive(p) {
		t.Fatal("stopping the agent killed the workload")
	}
	// The node restarts too, so the new registration gets existing_state.
	if err := r.node.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.startAgent()
	list := r.query("system")
	if len(list) != 1 || list[0].ID != id || list[0].Metadata["pid"] != pid || list[0].WorkloadState != "running" {
		t.Fatalf("after restart: %+v, want %s with pid %s", list, id, pid)
	}
	// Stopping works on the adopted process.
	if resp, err := r.node.Undeploy(context.Background(), "default", id); err != nil || !resp.Stopped {
		t.Fatalf("undeploy adopted: %+v %v", resp, err)
	}
	eventually(t, 10*time.Second, "adopted process gone", func() bool { return !processAlive(p) })
}

// TestReregisterKeepsWorkloads: the node restarts; the agent registers
// again and its service keeps running, with the same pid, visible to the
// new registration.
func TestReregisterKeepsWorkloads(t *testing.T) {
	r := newRig(t, rigOpts{nodeState: true})
	id := r.deploy(t, deployReq("survivor", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	s, _ := r.summary(id)
	old := r.agent.AgentID()
	if err := r.node.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.node.PublishHeartbeat()
	r.node.PublishHeartbeat()
	eventually(t, 10*time.Second, "re-registration", func() bool {
		id := r.agent.AgentID()
		return id != "" && id != old
	})
	r.waitHealthy(r.agent.AgentID())
	list := r.query("system")
	if len(list) != 1 || list[0].ID != id || list[0].Metadata["pid"] != s.Metadata["pid"] {
		t.Fatalf("after re-registration %+v, want %s pid %s", list, id, s.Metadata["pid"])
	}
}

// TestLameduck: SETLAMEDUCK stops the workloads within the delay, refuses
// new ones and reports lameduck in the heartbeat.
func TestLameduck(t *testing.T) {
	r := newRig(t, rigOpts{})
	id := r.deploy(t, deployReq("ld", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	s, _ := r.summary(id)
	p, _ := strconv.Atoi(s.Metadata["pid"])
	resps, err := r.node.SetLameduck(context.Background(), 2*time.Second)
	if err != nil || len(resps) != 1 || !resps[0].Success {
		t.Fatalf("lameduck: %+v %v", resps, err)
	}
	eventually(t, 5*time.Second, "workload stopped", func() bool { return !processAlive(p) })
	eventually(t, 5*time.Second, "lameduck heartbeat", func() bool {
		a := r.node.Agents()
		return len(a) == 1 && a[0].Summary.State == "lameduck" && a[0].Health == nodesim.HealthShuttingDown
	})
	m := r.startReq("LD2", "late", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"echo"}})
	if code, desc := errCode(m); code != "100" || !strings.Contains(desc, "lameduck") {
		t.Errorf("start in lameduck: code %q desc %q", code, desc)
	}
}

// TestEnvironment: a job sees its plain, secret:// and EncEnv-sealed
// variables and the native nexlet's workload credential variables; a
// missing secret is refused with code 100.
func TestEnvironment(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets.yaml")
	os.WriteFile(secrets, []byte("default:\n  db_password: hunter2\n"), 0o600)
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.SecretsFile = secrets }})
	logs := r.subscribe("$NEX.FEED.default.logs.>")

	r.deploy(t, deployReq("env", "job", agent.StartRequest{URI: "file://" + workloadBin,
		Argv:        []string{"env", "PLAIN", "DB", "NEX_WORKLOAD_NATS_SERVERS", "NATS_URL"},
		Environment: map[string]string{"PLAIN": "yes", "DB": "secret://db_password"}}))
	for _, want := range []string{"PLAIN=yes", "DB=hunter2", "NEX_WORKLOAD_NATS_SERVERS=" + r.srv.ClientURL(), "NATS_URL=" + r.srv.ClientURL()} {
		nextMatching(t, logs, want, 10*time.Second)
	}

	// Sealed to the agent's public xkey, as a client holding its bid would.
	xkey := r.node.Agents()[0].Register.PublicXkey
	sender, _ := nkeys.CreateCurveKeys()
	senderPub, _ := sender.PublicKey()
	plain, _ := json.Marshal(map[string]string{"TOKEN": "sealed-value"})
	sealed, err := sender.Seal(plain, xkey)
	if err != nil {
		t.Fatal(err)
	}
	r.deploy(t, deployReq("sealed", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"env", "TOKEN"},
		Environment: map[string]string{"encrypted_by": senderPub, "base64_encrypted_env": base64.StdEncoding.EncodeToString(sealed)}}))
	nextMatching(t, logs, "TOKEN=sealed-value", 10*time.Second)

	m := r.startReq("NOSECRET", "nosecret", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"env", "X"},
		Environment: map[string]string{"X": "secret://absent"}})
	if code, desc := errCode(m); code != "100" || !strings.Contains(desc, "absent") {
		t.Errorf("missing secret: code %q desc %q", code, desc)
	}
}

// TestExistingStateOfOtherAgents: the node gives every agent of a type all
// stored deploys of that type. A second agent must not start the first
// one's service; with AdoptUnknown an agent whose state dir was lost
// starts what the node remembers.
func TestExistingStateOfOtherAgents(t *testing.T) {
	r := newRig(t, rigOpts{nodeState: true})
	id := r.deploy(t, deployReq("only-once", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))

	second := *r
	second.t = t
	second.opts.Name = "pi-second"
	second.opts.StateDir = t.TempDir()
	second.startAgent()
	if got := r.query("system"); len(got) != 1 || got[0].ID != id {
		t.Fatalf("after a second agent registered: %+v, want only %s", got, id)
	}
	second.stopAgent()

	// The first agent goes away with its state dir; its process dies with it.
	s, _ := r.summary(id)
	pid, _ := strconv.Atoi(s.Metadata["pid"])
	r.stopAgent()
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
	eventually(t, 5*time.Second, "old process gone", func() bool { return !processAlive(pid) })
	r.opts.StateDir = t.TempDir()
	r.opts.AdoptUnknown = true
	r.startAgent()
	eventually(t, 10*time.Second, "service adopted from existing_state", func() bool {
		s, ok := r.summary(id)
		return ok && s.WorkloadState == "running" && s.Metadata["pid"] != strconv.Itoa(pid)
	})
}

// TestFinishedJobDismissed: a finished job stays listed with its exit code
// until an operator stops it; then it is gone, also after an agent restart.
func TestFinishedJobDismissed(t *testing.T) {
	r := newRig(t, rigOpts{})
	events := r.subscribe("$NEX.FEED.default.events.WORKLOADSTOPPED")
	id := r.deploy(t, deployReq("once", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"exit", "2"}}))
	nextMatching(t, events, id, 10*time.Second)
	s, ok := r.summary(id)
	if !ok || s.WorkloadState != "stopped" || s.Metadata["exit_code"] != "2" {
		t.Fatalf("finished job %+v (listed %v)", s, ok)
	}
	if resp, err := r.node.Undeploy(context.Background(), "default", id); err != nil || !resp.Stopped {
		t.Fatalf("stop finished job: %+v %v", resp, err)
	}
	if _, ok := r.summary(id); ok {
		t.Fatal("dismissed job still listed")
	}
	r.stopAgent()
	r.startAgent()
	if _, ok := r.summary(id); ok {
		t.Fatal("dismissed job listed again after an agent restart")
	}
}
