package workload_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent/workload"
	"github.com/nexfield/nexfield/internal/tmpfstest"
)

// runningFrom lists the live processes whose binary is under dir.
func runningFrom(t *testing.T, dir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && strings.HasPrefix(exe, dir+"/") && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// records lists the workload records in a state dir.
func records(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logBuffer keeps a supervisor's log as JSON lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// has reports whether a record at level, for workload id, begins with msg.
func (l *logBuffer) has(level slog.Level, msg, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			ID    string `json:"workload_id"`
			Err   string `json:"err"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == level.String() && strings.HasPrefix(rec.Msg, msg) && rec.ID == id && rec.Err != "" {
			return true
		}
	}
	return false
}

// TestStartRefusedWhenRecordCannotBeSaved: a workload whose record cannot
// be written is not started, or is stopped again before Start returns,
// since an agent restart would lose it. One free page is room for the
// first record (written before the spawn) but not for the second one (the
// temporary file beside the first), so that case fails after the process
// or the subscription already exists.
func TestStartRefusedWhenRecordCannotBeSaved(t *testing.T) {
	onePageFree := func(t *testing.T, mnt string) { tmpfstest.Fill(t, mnt, 1) }
	for _, tc := range []struct {
		name string
		lc   workload.Lifecycle
		argv []string
		disk func(t *testing.T, mnt string)
		want error
	}{
		{"service, read-only state dir", workload.Service, []string{"serve"}, func(t *testing.T, mnt string) { tmpfstest.ReadOnly(t, mnt) }, syscall.EROFS},
		{"service, full after the first record", workload.Service, []string{"serve"}, onePageFree, syscall.ENOSPC},
		{"function, full after the first record", workload.Function, []string{"upper"}, onePageFree, syscall.ENOSPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			mnt := tmpfstest.Mount(t, 1<<20)
			state := filepath.Join(mnt, "workloads")
			sup := r.supervisorOn(state, nil)
			tc.disk(t, mnt)
			sp := r.spec("a", tc.lc, tc.argv...)
			sp.TriggerSubject = "fn.a"
			_, err := sup.Start(context.Background(), sp)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "a: not started: its record cannot be saved") {
				t.Fatalf("start: got %v, want a refusal for %v", err, tc.want)
			}
			if st, ok := sup.Get("a"); ok {
				t.Errorf("supervisor still has %+v", st)
			}
			if pids := runningFrom(t, filepath.Join(r.dir, "artifacts")); len(pids) != 0 {
				t.Errorf("pids %v run the refused workload", pids)
			}
			if _, err := r.nc.Request("fn.a", nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
				t.Errorf("trigger of the refused workload: got %v, want no responders", err)
			}
			if len(r.ev.started) != 0 {
				t.Errorf("started events %+v for a refused workload", r.ev.started)
			}
			if got := records(t, state); len(got) != 0 {
				t.Errorf("records %v left for a refused workload", got)
			}
			if tc.want != syscall.ENOSPC {
				return
			}
			// Room again: the same start succeeds.
			if err := os.Remove(filepath.Join(mnt, "fill")); err != nil {
				t.Fatal(err)
			}
			if _, err := sup.Start(context.Background(), sp); err != nil {
				t.Fatalf("start with room again: %v", err)
			}
		})
	}
}

// TestRestoreFullStateDir: after an agent restart the state dir is full.
// The service is adopted all the same, Restore says which record it could
// not update, and a stop still stops, logging the record it could not
// write. (A read-only remount cannot be staged here: the running service
// holds its output files in the state dir open for writing.)
func TestRestoreFullStateDir(t *testing.T) {
	r := newRig(t)
	mnt := tmpfstest.Mount(t, 1<<20)
	state := filepath.Join(mnt, "workloads")
	sup := r.supervisorOn(state, nil)
	svc, err := sup.Start(context.Background(), r.spec("svc", workload.Service, "serve"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	tmpfstest.Fill(t, mnt, 0)

	var logs logBuffer
	sup = r.supervisorOn(state, slog.New(slog.NewJSONHandler(&logs, nil)))
	got, err := sup.Restore(context.Background())
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "svc: restored, but its record was not updated") {
		t.Errorf("restore: got %v, want the record it could not update", err)
	}
	if len(got) != 1 || got[0].State != workload.Running || got[0].PID != svc.PID {
		t.Fatalf("restored %+v, want svc adopted with pid %d", got, svc.PID)
	}
	if !alive(svc.PID) {
		t.Fatal("the adopted service is gone")
	}
	st, err := sup.Stop(context.Background(), "svc")
	if err != nil || st.State != workload.Stopped {
		t.Fatalf("stop: got %+v, %v, want stopped", st, err)
	}
	eventually(t, 2*time.Second, "stopped service gone", func() bool { return !alive(svc.PID) })
	if !logs.has(slog.LevelError, "workload record not saved", "svc") {
		t.Errorf("no error logged for the record the stop could not write; log:\n%s", logs.b.String())
	}
}
