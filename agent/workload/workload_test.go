package workload_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/agent/workload"
	"github.com/nexfield/nexfield/internal/natstest"
)

func TestJob(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		name string
		argv []string
		code int
		err  string
		out  string
	}{
		{name: "success", argv: []string{"echo", "hello", "field"}, code: 0, out: "hello field"},
		{name: "failure", argv: []string{"exit", "3"}, code: 3, err: "exit status 3", out: "about to exit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "job-" + tc.name
			st := r.start(r.spec(id, workload.Job, tc.argv...))
			if st.PID == 0 || st.State != workload.Running {
				t.Errorf("start: %+v, want running with a pid", st)
			}
			st = r.waitState(id, workload.Exited)
			if st.ExitCode != tc.code || st.Err != tc.err {
				t.Errorf("got exit %d %q, want %d %q", st.ExitCode, st.Err, tc.code, tc.err)
			}
			var ev workload.Status
			eventually(t, 5*time.Second, "stopped event", func() (ok bool) { ev, ok = r.ev.stoppedOf(id); return ok })
			if ev.ExitCode != tc.code {
				t.Errorf("stopped event %+v, want exit code %d", ev, tc.code)
			}
			if !r.ev.hasLine(id, "stdout", tc.out) {
				t.Errorf("stdout %q, want a line %q", r.ev.lines(id, "stdout"), tc.out)
			}
		})
	}
	if got := r.ev.lines("job-failure", "stderr"); !slices.Equal(got, []string{"exiting with 3"}) {
		t.Errorf("stderr %q", got)
	}
	// A finished job is not run again by a second Start? It is: the id is
	// free again. But Start of a running id is not duplicated:
	sp := r.spec("dup", workload.Service, "serve")
	a, b := r.start(sp), r.start(sp)
	if a.PID != b.PID {
		t.Errorf("second start of a running id spawned pid %d besides %d", b.PID, a.PID)
	}
}

func TestServiceCrashLoop(t *testing.T) {
	r := newRig(t)
	start := time.Now()
	r.start(r.spec("loop", workload.Service, "exit", "1"))
	st := r.waitState("loop", workload.Failed)
	took := time.Since(start)
	if st.Restarts != 3 || st.ExitCode != 1 || !strings.Contains(st.Err, "crash loop: exited 4 times in a row") {
		t.Errorf("got %+v, want failed after 3 restarts with a crash-loop message", st)
	}
	// Back-off: 20 + 40 + 80 ms at least between the four runs.
	if took < 140*time.Millisecond {
		t.Errorf("gave up after %v: restarts did not back off", took)
	}
	if got := len(r.ev.lines("loop", "stdout")); got != 4 {
		t.Errorf("%d runs logged, want 4", got)
	}
	var ev workload.Status
	eventually(t, 5*time.Second, "stopped event", func() (ok bool) { ev, ok = r.ev.stoppedOf("loop"); return ok })
	if ev.State != workload.Failed {
		t.Errorf("stopped event %+v, want failed", ev)
	}
}

func TestStopDuringBackoff(t *testing.T) {
	r := newRig(t)
	sp := r.spec("slowloop", workload.Service, "exit", "2")
	sp.Restart = workload.RestartPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour}
	r.start(sp)
	st := r.waitState("slowloop", workload.Backoff)
	if st.ExitCode != 2 || st.PID != 0 {
		t.Errorf("in back-off: %+v, want last exit 2 and no pid", st)
	}
	start := time.Now()
	st, err := r.sup.Stop(context.Background(), "slowloop")
	if err != nil || st.State != workload.Stopped || time.Since(start) > 2*time.Second {
		t.Errorf("stop in back-off: %+v %v after %v", st, err, time.Since(start))
	}
}

func TestServiceRestartsAfterKill(t *testing.T) {
	r := newRig(t)
	st := r.start(r.spec("svc", workload.Service, "serve"))
	eventually(t, 5*time.Second, "ticks", func() bool { return len(r.ev.lines("svc", "stdout")) > 1 })
	if err := killPID(st.PID); err != nil {
		t.Fatal(err)
	}
	var now workload.Status
	eventually(t, 5*time.Second, "restart with a new pid", func() bool {
		now, _ = r.sup.Get("svc")
		return now.State == workload.Running && now.PID != st.PID && now.PID != 0
	})
	if now.Restarts != 1 {
		t.Errorf("restarts %d, want 1", now.Restarts)
	}
	eventually(t, 5*time.Second, "restarted service handles SIGTERM", func() bool {
		n := 0
		for _, l := range r.ev.lines("svc", "stdout") {
			if l == "ready" {
				n++
			}
		}
		return n == 2
	})
	stopped, err := r.sup.Stop(context.Background(), "svc")
	if err != nil || stopped.State != workload.Stopped || stopped.ExitCode != 0 {
		t.Errorf("stop: %+v %v, want stopped with code 0", stopped, err)
	}
	if !r.ev.hasLine("svc", "stdout", "terminated") {
		t.Errorf("service did not see SIGTERM: %q", r.ev.lines("svc", "stdout"))
	}
	if alive(now.PID) {
		t.Errorf("pid %d survived stop", now.PID)
	}
}

func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func TestStopKillsGroupAfterGrace(t *testing.T) {
	r := newRig(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	r.start(r.spec("stubborn", workload.Service, "stubborn", pidFile))
	var pids []int
	eventually(t, 5*time.Second, "pid file", func() bool {
		b, _ := os.ReadFile(pidFile)
		f := strings.Fields(string(b))
		if len(f) != 2 {
			return false
		}
		pids = nil
		for _, s := range f {
			n, _ := strconv.Atoi(s)
			pids = append(pids, n)
		}
		return true
	})
	start := time.Now()
	st, err := r.sup.Stop(context.Background(), "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("stopped after %v, before the 300ms grace: %+v", took, r.ev.stopped)
	}
	if st.State != workload.Stopped {
		t.Errorf("state %s", st.State)
	}
	for _, pid := range pids {
		eventually(t, 2*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool { return !alive(pid) })
	}
	if _, err := r.sup.Stop(context.Background(), "nope"); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("stop unknown: %v, want ErrNotFound", err)
	}
}

func TestEnvironmentAndSecrets(t *testing.T) {
	r := newRig(t)
	r.creds.JWT, r.creds.Seed = "eyJhbGciOi.jwt", "SUAFAKESEED"
	sp := r.spec("env", workload.Job, "env", "PLAIN", "TOKEN", "NEX_WORKLOAD_NATS_SERVERS", "NEX_WORKLOAD_NATS_NKEY", "NEX_WORKLOAD_NATS_B64_JWT", "NEX_WORKLOAD_NATS_USER", "NEX_WORKLOAD_NATS_PASSWORD", "NATS_URL", "HOME")
	sp.Creds.JWT, sp.Creds.Seed = "eyJhbGciOi.jwt", "SUAFAKESEED"
	sp.Creds.Servers = []string{"nats://a:4222", "nats://b:4222"}
	sp.Env = map[string]string{"PLAIN": "p", "TOKEN": "secret://token"}
	r.start(sp)
	r.waitState("env", workload.Exited)
	want := []string{
		"PLAIN=p", "TOKEN=tok-123",
		"NEX_WORKLOAD_NATS_SERVERS=nats://a:4222,nats://b:4222",
		"NEX_WORKLOAD_NATS_NKEY=SUAFAKESEED",
		"NEX_WORKLOAD_NATS_B64_JWT=" + base64.StdEncoding.EncodeToString([]byte("eyJhbGciOi.jwt")),
		"NEX_WORKLOAD_NATS_USER=wl", "NEX_WORKLOAD_NATS_PASSWORD=s3cret", // the rig's user, also in the connection data
		"NATS_URL=nats://a:4222,nats://b:4222",
		"HOME=", // nothing of the agent's environment
	}
	if got := r.ev.lines("env", "stdout"); !slices.Equal(got, want) {
		t.Errorf("environment\n got %q\nwant %q", got, want)
	}

	sp = r.spec("argv-secret", workload.Job, "echo", "secret://other")
	r.start(sp)
	r.waitState("argv-secret", workload.Exited)
	if !r.ev.hasLine("argv-secret", "stdout", "x") {
		t.Errorf("argv secret not resolved: %q", r.ev.lines("argv-secret", "stdout"))
	}

	sp = r.spec("missing", workload.Job, "echo")
	sp.Env = map[string]string{"X": "secret://nothere"}
	if _, err := r.sup.Start(context.Background(), sp); !errors.Is(err, workload.ErrSecret) || !strings.Contains(err.Error(), "failed to retrieve namespace secret nothere") {
		t.Errorf("got %v, want a missing secret error", err)
	}
	if _, ok := r.sup.Get("missing"); ok {
		t.Errorf("failed start left a workload behind")
	}
	noStore, err := workload.New(&workload.Opts{StateDir: t.TempDir(), Artifacts: r.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noStore.Start(context.Background(), sp); err == nil || !strings.Contains(err.Error(), "secret store not configured") {
		t.Errorf("got %v, want 'secret store not configured'", err)
	}
}

func TestBadSpecs(t *testing.T) {
	r := newRig(t)
	js, _ := jetstream.New(r.nc)
	obs, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: "bins"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(context.Background(), "text_latest", []byte("plain text")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*workload.Spec)
		err  error
	}{
		{"bad id", func(s *workload.Spec) { s.ID = "a/b" }, workload.ErrInvalidSpec},
		{"bad lifecycle", func(s *workload.Spec) { s.Lifecycle = "daemon" }, workload.ErrInvalidSpec},
		{"function without trigger", func(s *workload.Spec) { s.Lifecycle = workload.Function }, workload.ErrInvalidSpec},
		{"relative workdir", func(s *workload.Spec) { s.WorkDir = "tmp" }, workload.ErrInvalidSpec},
		{"unknown scheme", func(s *workload.Spec) { s.URI = "http://x/y" }, artifact.ErrBadURI},
		{"missing bucket", func(s *workload.Spec) { s.URI = "nats://nobucket/x" }, artifact.ErrNotFound},
		{"not executable", func(s *workload.Spec) { s.URI = "nats://bins/text" }, artifact.ErrNotExecutable},
		{"digest mismatch", func(s *workload.Spec) { s.Digest = "sha256:" + strings.Repeat("ab", 32) }, artifact.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := r.spec("bad", workload.Job, "echo")
			tc.mod(&sp)
			if _, err := r.sup.Start(context.Background(), sp); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if got := r.sup.List(); len(got) != 0 {
				t.Errorf("failed start left %+v", got)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(r.dir, "workloads")); len(ents) != 0 {
		t.Errorf("failed starts left records: %v", ents)
	}
}

func TestObjectStoreWorkload(t *testing.T) {
	r := newRig(t)
	js, _ := jetstream.New(r.nc)
	obs, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: "bins"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(wlBin)
	info, err := obs.PutBytes(context.Background(), "wl_v1", b)
	if err != nil {
		t.Fatal(err)
	}
	sp := r.spec("obj", workload.Job, "echo", "from the store")
	sp.URI, sp.Digest = "nats://bins/wl:v1", info.Digest
	r.start(sp)
	r.waitState("obj", workload.Exited)
	if !r.ev.hasLine("obj", "stdout", "from the store") {
		t.Errorf("stdout %q", r.ev.lines("obj", "stdout"))
	}
	// The job is finished, so nothing uses its binary: GC removes it.
	eventually(t, 5*time.Second, "cache emptied after the only user finished", func() bool {
		ents, _ := os.ReadDir(filepath.Join(r.dir, "artifacts"))
		return len(ents) == 0
	})
}

func TestFunction(t *testing.T) {
	r := newRig(t)
	sp := r.spec("fn", workload.Function, "upper")
	sp.TriggerSubject = "fn.upper"
	st := r.start(sp)
	if st.State != workload.Warm {
		t.Fatalf("state %s, want warm", st.State)
	}
	req := func(data string) *nats.Msg {
		t.Helper()
		m, err := r.nc.Request("fn.upper", []byte(data), 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		return m
	}
	m := req("hello")
	if string(m.Data) != "HELLO" || m.Header.Get("error") != "" {
		t.Errorf("reply %q error %q, want HELLO", m.Data, m.Header.Get("error"))
	}
	if m.Header["workload_id"][0] != "fn" || m.Header["namespace"][0] != "ns1" {
		t.Errorf("headers %v", m.Header)
	}
	m = req("fail")
	if e := m.Header["error"]; len(e) != 1 || e[0] != "exit status 4: asked to fail" {
		t.Errorf("error header %q", e)
	}
	if !r.ev.hasLine("fn", "stderr", "got 5 bytes") {
		t.Errorf("stderr %q", r.ev.lines("fn", "stderr"))
	}

	slow := r.spec("slow", workload.Function, "sleep", "10s")
	slow.TriggerSubject, slow.TriggerTimeout = "fn.slow", 200*time.Millisecond
	r.start(slow)
	start := time.Now()
	m, err := r.nc.Request("fn.slow", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.Header["error"]; len(e) != 1 || !strings.Contains(e[0], "timed out after 200ms") || time.Since(start) > 3*time.Second {
		t.Errorf("error header %q after %v, want a timeout", e, time.Since(start))
	}

	if st, err := r.sup.Stop(context.Background(), "fn"); err != nil || st.State != workload.Stopped {
		t.Fatalf("stop: %+v %v", st, err)
	}
	if _, err := r.nc.Request("fn.upper", []byte("again"), time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("trigger for a stopped function: %v, want no responders", err)
	}
}

func TestRestore(t *testing.T) {
	r := newRig(t)
	svc := r.start(r.spec("svc", workload.Service, "serve"))
	dead := r.start(r.spec("dead", workload.Service, "serve"))
	r.start(r.spec("done", workload.Job, "echo", "once"))
	r.waitState("done", workload.Exited)
	longJob := r.start(r.spec("longjob", workload.Job, "sleep", "300ms"))
	fn := r.spec("fn", workload.Function, "upper")
	fn.TriggerSubject = "fn.restore"
	r.start(fn)
	recycled := r.start(r.spec("recycled", workload.Service, "serve"))
	eventually(t, 5*time.Second, "svc ticking", func() bool { return len(r.ev.lines("svc", "stdout")) > 0 })

	// The agent goes away; workloads stay.
	if err := r.sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !alive(svc.PID) {
		t.Fatalf("close killed the service")
	}
	killPID(dead.PID)
	eventually(t, 5*time.Second, "longjob ends while the agent is away", func() bool { return !alive(longJob.PID) })
	// A recycled pid: the record names a live process that is not ours.
	killPID(recycled.PID)
	rec := filepath.Join(r.dir, "workloads", "recycled.json")
	b, _ := os.ReadFile(rec)
	b = []byte(strings.Replace(string(b), fmt.Sprintf(`"pid": %d`, recycled.PID), fmt.Sprintf(`"pid": %d`, os.Getpid()), 1))
	os.WriteFile(rec, b, 0o600)
	// Output written while nobody reads is kept in the pipe.
	time.Sleep(100 * time.Millisecond)

	r.sup = r.supervisor()
	got, err := r.sup.Restore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Errorf("restored %d workloads, want 6", len(got))
	}
	st, _ := r.sup.Get("svc")
	if st.State != workload.Running || st.PID != svc.PID || st.Restarts != 0 {
		t.Errorf("svc %+v, want adopted pid %d", st, svc.PID)
	}
	eventually(t, 5*time.Second, "adopted service's output reaches the new supervisor", func() bool {
		return len(r.ev.lines("svc", "stdout")) > 2
	})
	st = r.waitState("dead", workload.Running)
	if st.PID == dead.PID || st.Restarts != 1 {
		t.Errorf("dead %+v, want restarted", st)
	}
	st = r.waitState("recycled", workload.Running)
	if st.PID == os.Getpid() || st.PID == recycled.PID {
		t.Errorf("recycled %+v, want a new process, not pid %d adopted", st, os.Getpid())
	}
	st, _ = r.sup.Get("done")
	if st.State != workload.Exited || r.ev.hasLine("done", "stdout", "once") {
		t.Errorf("done %+v ran again", st)
	}
	st, _ = r.sup.Get("longjob")
	if st.State != workload.Exited || st.ExitCode != -1 {
		t.Errorf("longjob %+v, want exited with unknown status", st)
	}
	m, err := r.nc.Request("fn.restore", []byte("back"), 5*time.Second)
	if err != nil || string(m.Data) != "BACK" {
		t.Errorf("restored function: %v %q", err, m.Data)
	}
	// Restore twice, or a Start of a restored id, duplicates nothing.
	again, _ := r.sup.Restore(context.Background())
	if len(again) != 0 {
		t.Errorf("second restore took %d workloads", len(again))
	}
	if st, _ := r.sup.Start(context.Background(), r.spec("svc", workload.Service, "serve")); st.PID != svc.PID {
		t.Errorf("start of the adopted id: pid %d, want %d", st.PID, svc.PID)
	}
	// The adopted service still stops for real.
	if _, err := r.sup.Stop(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "adopted service gone", func() bool { return !alive(svc.PID) })
	if !r.ev.hasLine("svc", "stdout", "terminated") {
		t.Errorf("adopted service did not get SIGTERM through its pipe: %q", r.ev.lines("svc", "stdout"))
	}
}

// TestRestoreAfterPowerCut: the records name another boot, and every
// process is gone. Services come back, jobs are not re-run.
func TestRestoreAfterPowerCut(t *testing.T) {
	r := newRig(t)
	svc := r.start(r.spec("svc", workload.Service, "serve"))
	job := r.start(r.spec("job", workload.Job, "sleep", "10s"))
	if err := r.sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{svc.PID, job.PID} {
		killPID(pid)
		eventually(t, 2*time.Second, "process gone", func() bool { return !alive(pid) })
	}
	for _, id := range []string{"svc", "job"} {
		p := filepath.Join(r.dir, "workloads", id+".json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if rec["boot_id"] == "" || rec["pid_start"] == nil {
			t.Fatalf("record %s lacks the process identity: %s", id, b)
		}
		rec["boot_id"] = "00000000-0000-0000-0000-000000000000"
		b, _ = json.Marshal(rec)
		os.WriteFile(p, b, 0o600)
	}
	r.sup = r.supervisor()
	if _, err := r.sup.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.waitState("svc", workload.Running)
	if st.PID == svc.PID || st.Restarts != 1 {
		t.Errorf("service after power cut: %+v, want running again", st)
	}
	st, _ = r.sup.Get("job")
	if st.State != workload.Exited || st.ExitCode != -1 || st.PID != 0 {
		t.Errorf("job after power cut: %+v, want exited with unknown status, not re-run", st)
	}
}

// TestRestoreWithoutNetwork: the agent comes back before NATS does (a
// board booting). A dead service restarts from the cache; a function is
// warm and answers once the server is reachable.
func TestRestoreWithoutNetwork(t *testing.T) {
	r := newRig(t)
	js, _ := jetstream.New(r.nc)
	obs, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: "bins"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(wlBin)
	if _, err := obs.PutBytes(context.Background(), "wl_latest", b); err != nil {
		t.Fatal(err)
	}
	sp := r.spec("svc", workload.Service, "serve")
	sp.URI = "nats://bins/wl"
	svc := r.start(sp)
	fn := r.spec("fn", workload.Function, "upper")
	fn.URI, fn.TriggerSubject = "nats://bins/wl", "fn.offline"
	r.start(fn)
	if err := r.sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	killPID(svc.PID)
	port := r.srv.Addr().(*net.TCPAddr).Port
	r.srv.Shutdown()
	r.srv.WaitForShutdown()

	r.sup = r.supervisor()
	if _, err := r.sup.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.waitState("svc", workload.Running)
	if st.PID == svc.PID {
		t.Errorf("service not restarted: %+v", st)
	}
	if st, _ := r.sup.Get("fn"); st.State != workload.Warm {
		t.Errorf("function %+v, want warm while the server is away", st)
	}

	o := natstest.Options(t)
	o.Port, o.Username, o.Password = port, "wl", "s3cret"
	srv := natstest.RunServerWithOptions(t, o)
	nc := natstest.Connect(t, srv, nats.UserInfo("wl", "s3cret"))
	var reply *nats.Msg
	eventually(t, 15*time.Second, "function answers after the server is back", func() bool {
		reply, err = nc.Request("fn.offline", []byte("late"), 500*time.Millisecond)
		return err == nil
	})
	if string(reply.Data) != "LATE" {
		t.Errorf("reply %q", reply.Data)
	}
}

// TestRestoreFinishesAStop: the agent died while stopping a service; the
// next one completes the stop instead of adopting the process.
func TestRestoreFinishesAStop(t *testing.T) {
	r := newRig(t)
	svc := r.start(r.spec("svc", workload.Service, "serve"))
	eventually(t, 5*time.Second, "ready", func() bool { return r.ev.hasLine("svc", "stdout", "ready") })
	if err := r.sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(r.dir, "workloads", "svc.json")
	b, _ := os.ReadFile(p)
	b = []byte(strings.Replace(string(b), `"state": "running"`, `"state": "stopping"`, 1))
	os.WriteFile(p, b, 0o600)

	r.sup = r.supervisor()
	if _, err := r.sup.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitState("svc", workload.Stopped)
	eventually(t, 2*time.Second, "process gone", func() bool { return !alive(svc.PID) })
}
