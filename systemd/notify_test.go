package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNotifier_noSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "1000000")
	var n Notifier // the zero value works
	if n.Enabled() {
		t.Fatal("Enabled() = true without NOTIFY_SOCKET")
	}
	for _, f := range []func(string) error{n.Ready, n.Status, n.Stopping} {
		if err := f("x"); err != nil {
			t.Fatalf("got %v, want nil without NOTIFY_SOCKET", err)
		}
	}
	if got := n.String(); got != "systemd{off}" {
		t.Fatalf("String() = %q", got)
	}
}

func TestNotifier_sendErrorReported(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", t.TempDir()+"/nobody-listens")
	n := New(nil)
	err := n.Ready("up")
	if err == nil || !strings.HasPrefix(err.Error(), "systemd: notify: ") {
		t.Fatalf("got %v, want a systemd: notify: error", err)
	}
}

func TestWatchdog_offReturnsAtOnce(t *testing.T) {
	for _, tc := range []struct{ name, usec, pid string }{
		{"unset", "", ""},
		{"other pid", "1000000", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", t.TempDir()+"/s")
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := New(nil).Watchdog(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatal("Watchdog waited for ctx although the watchdog is off")
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	var zero Heartbeat
	if err := zero.Check(time.Hour)(); !errors.Is(err, ErrStalled) {
		t.Fatalf("never-beaten heartbeat: got %v, want ErrStalled", err)
	}
	hb := NewHeartbeat("nats loop", nil)
	if err := hb.Check(time.Hour)(); err != nil {
		t.Fatalf("fresh heartbeat: %v", err)
	}
	hb.last.Store(time.Now().Add(-time.Minute).UnixNano())
	err := All(nil, func() error { return nil }, hb.Check(time.Second))()
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "nats loop") {
		t.Fatalf("got %v, want a stalled nats loop", err)
	}
}
