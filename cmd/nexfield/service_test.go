package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunUnderSystemd listens where systemd would, and checks the daemon's
// story: READY with a status once ready, watchdog pings while healthy, none
// while the loop is stalled, STOPPING at the end.
func TestRunUnderSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50 ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))

	ready := make(chan struct{})
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runUnderSystemd(ctx, slog.New(slog.DiscardHandler), func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}, ready, func() string { return "registered with node NABC" }, func() error {
			if healthy.Load() {
				return nil
			}
			return errors.New("radio loop: no progress")
		})
	}()
	read := func(timeout time.Duration) string {
		conn.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	if m := read(200 * time.Millisecond); m != "" {
		t.Fatalf("notified %q before ready", m)
	}
	close(ready)
	if m := read(2 * time.Second); m != "READY=1\nSTATUS=registered with node NABC" {
		t.Fatalf("first message %q, want READY with status", m)
	}
	pings := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && pings < 3; {
		if strings.HasPrefix(read(time.Second), "WATCHDOG=1") {
			pings++
		}
	}
	if pings < 3 {
		t.Fatalf("got %d watchdog pings while healthy, want 3", pings)
	}
	healthy.Store(false)
	// After at most one more ping, the status says why and pings stop.
	sawUnhealthy := false
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		m := read(100 * time.Millisecond)
		if strings.Contains(m, "STATUS=unhealthy: radio loop: no progress") {
			sawUnhealthy = true
			break
		}
	}
	if !sawUnhealthy {
		t.Fatal("no unhealthy status when the health check failed")
	}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		if m := read(100 * time.Millisecond); strings.Contains(m, "WATCHDOG=1") {
			t.Fatalf("watchdog ping %q while unhealthy", m)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopping := false
	for m := read(time.Second); m != ""; m = read(200 * time.Millisecond) {
		if strings.HasPrefix(m, "STOPPING=1") {
			stopping = true
		}
	}
	if !stopping {
		t.Error("no STOPPING=1 on the way out")
	}
}
