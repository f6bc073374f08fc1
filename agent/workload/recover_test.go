package workload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexfield/nexfield/agent/workload"
)

// syncBuffer is a log sink the test reads while the supervisor writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRestoreFromDamagedRecord: the record of a running service is cut
// short, emptied or followed by garbage while the agent is away (a storage
// that lies about its flushes). The next supervisor neither loses the
// workload nor starts a second copy: a live process is found through its
// output and adopted, listed and stoppable; a dead one is started again
// when the record still says how, and listed as failed when it does not.
// Each case is logged at error level with the file and what to do, the
// damaged file is kept aside and a whole record replaces it.
func TestRestoreFromDamagedRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		kill   bool
		// want
		state     workload.State
		samePID   bool
		namespace string
		errHas    string
	}{
		{name: "tail lost, process alive", damage: cutBeforeState, state: workload.Running, samePID: true, namespace: "ns1"},
		{name: "empty, process alive", damage: func([]byte) []byte { return nil }, state: workload.Running, samePID: true,
			namespace: "system", errHas: "deploy it again"},
		{name: "garbage after it, process alive", damage: func(b []byte) []byte { return append(b, "\n  ],\n  \"pid\": 9\n}"...) },
			state: workload.Running, samePID: true, namespace: "ns1"},
		{name: "tail lost, process gone", damage: cutBeforeState, kill: true, state: workload.Running, namespace: "ns1"},
		{name: "empty, process gone", damage: func([]byte) []byte { return nil }, kill: true, state: workload.Failed,
			namespace: "system", errHas: "deploy it again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			svc := r.start(r.spec("svc", workload.Service, "serve"))
			eventually(t, 5*time.Second, "ready", func() bool { return r.ev.hasLine("svc", "stdout", "ready") })
			if err := r.sup.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killPID(svc.PID) })
			if tc.kill {
				killPID(svc.PID)
				eventually(t, 5*time.Second, "process gone", func() bool { return !alive(svc.PID) })
			}
			path := filepath.Join(r.dir, "workloads", "svc.json")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			damaged := tc.damage(b)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}

			logs := &syncBuffer{}
			r.logger = slog.New(slog.NewTextHandler(logs, nil))
			r.sup = r.supervisor()
			if _, err := r.sup.Restore(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := r.waitState("svc", tc.state)
			if st.Spec.Namespace != tc.namespace {
				t.Errorf("namespace %q, want %q", st.Spec.Namespace, tc.namespace)
			}
			if (st.PID == svc.PID) != tc.samePID {
				t.Errorf("pid %d, before %d; want the same: %v", st.PID, svc.PID, tc.samePID)
			}
			if !strings.Contains(st.Err, tc.errHas) {
				t.Errorf("err %q, want it to say %q", st.Err, tc.errHas)
			}
			if tc.samePID {
				eventually(t, 5*time.Second, "adopted output flows", func() bool { return len(r.ev.lines("svc", "stdout")) > 0 })
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, path) {
				t.Errorf("no error naming %s logged:\n%s", path, l)
			}
			if kept, _ := os.ReadFile(path + ".corrupt"); !bytes.Equal(kept, damaged) {
				t.Errorf("damaged record not kept aside: %q", kept)
			}
			var rec struct {
				Spec struct{ ID string } `json:"spec"`
			}
			if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &rec) != nil || rec.Spec.ID != "svc" {
				t.Errorf("record not rewritten whole: %v %s", err, b)
			}
			if st.State.Final() {
				return
			}
			// Stopping works on what was recovered: nothing keeps running.
			if _, err := r.sup.Stop(context.Background(), "svc"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "process gone after stop", func() bool { return !alive(st.PID) && !alive(svc.PID) })
		})
	}
}

// cutBeforeState keeps the spec and loses state, pid and what follows.
func cutBeforeState(b []byte) []byte {
	i := bytes.Index(b, []byte(`"state"`))
	return b[:i-3]
}
