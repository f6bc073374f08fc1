package systemd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// notifySocket is a fake service manager: a datagram socket in a temp dir,
// named by NOTIFY_SOCKET. It is read with non-blocking syscalls so that it
// works inside a synctest bubble (no netpoller waits).
type notifySocket struct {
	t  *testing.T
	fd int
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	t.Setenv("NOTIFY_SOCKET", path)
	return &notifySocket{t: t, fd: fd}
}

// drain returns the datagrams received so far.
func (s *notifySocket) drain() []string {
	s.t.Helper()
	var out []string
	buf := make([]byte, 4096)
	for {
		n, _, err := syscall.Recvfrom(s.fd, buf, syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.EAGAIN) {
			return out
		}
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, string(buf[:n]))
	}
}

func count(msgs []string, want string) int {
	n := 0
	for _, m := range msgs {
		if m == want {
			n++
		}
	}
	return n
}

func TestNotifier_sequence(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", "")
	synctest.Test(t, func(t *testing.T) {
		n := New(nil)
		if !n.Enabled() {
			t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
		}
		if got, want := n.WatchdogInterval(), 2*time.Second; got != want {
			t.Fatalf("WatchdogInterval() = %v, want %v", got, want)
		}
		if err := n.Status("connecting to nats://10.0.0.1:4222"); err != nil {
			t.Fatal(err)
		}
		if err := n.Ready("registered with node NBX3\n2 workloads"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Watchdog(ctx, func() error { return nil }) }()
		time.Sleep(3500 * time.Millisecond) // pings at 0, 1, 2, 3 s
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Watchdog = %v, want nil", err)
		}
		if err := n.Stopping("stopping 2 workloads"); err != nil {
			t.Fatal(err)
		}
		got := sock.drain()
		want := []string{
			"STATUS=connecting to nats://10.0.0.1:4222",
			"READY=1\nSTATUS=registered with node NBX3 2 workloads",
			"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1",
			"STOPPING=1\nSTATUS=stopping 2 workloads",
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func TestWatchdog_stalledLoopStopsPings(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "1000000")
	synctest.Test(t, func(t *testing.T) {
		n := New(nil)
		_ = n.Ready("radio up")
		sock.drain()
		hb := NewHeartbeat("radio loop", nil)
		stall := make(chan struct{})
		var beats atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		loopDone := make(chan struct{})
		go func() { // the main loop: beats every 100 ms until it hangs
			defer close(loopDone)
			for {
				select {
				case <-ctx.Done():
					return
				case <-stall:
					<-ctx.Done()
					return
				case <-time.After(100 * time.Millisecond):
					hb.Beat()
					beats.Add(1)
				}
			}
		}()
		wdDone := make(chan error, 1)
		go func() { wdDone <- n.Watchdog(ctx, hb.Check(600*time.Millisecond)) }()

		time.Sleep(2050 * time.Millisecond) // healthy: pings at 0, .5, 1, 1.5, 2 s; last beat at 2 s
		synctest.Wait()
		if got := count(sock.drain(), "WATCHDOG=1"); got != 5 {
			t.Fatalf("healthy loop: got %d pings in 2.05 s, want 5", got)
		}

		close(stall)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		msgs := sock.drain()
		// The check still passes at 2.5 s (last beat at 2 s), fails from 3 s on.
		if got := count(msgs, "WATCHDOG=1"); got != 1 {
			t.Fatalf("stalled loop: got %d pings in 5 s, want 1 (the one before the beat aged out): %q", got, msgs)
		}
		var status []string
		for _, m := range msgs {
			if strings.HasPrefix(m, "STATUS=") {
				status = append(status, m)
			}
		}
		if len(status) != 1 || !strings.Contains(status[0], "unhealthy: radio loop: no progress for") {
			t.Fatalf("status after stall = %q, want one unhealthy line naming the radio loop", status)
		}
		cancel()
		<-loopDone
		if err := <-wdDone; err != nil {
			t.Fatalf("Watchdog = %v, want nil", err)
		}
	})
}

func TestWatchdog_recoveryRestoresStatus(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "1000000")
	synctest.Test(t, func(t *testing.T) {
		n := New(nil)
		_ = n.Ready("registered; 1 workloads")
		var bad atomic.Bool
		health := func() error {
			if bad.Load() {
				return errors.New("agent: NATS connection RECONNECTING")
			}
			return nil
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Watchdog(ctx, health) }()
		time.Sleep(100 * time.Millisecond)
		bad.Store(true)
		time.Sleep(1200 * time.Millisecond) // checks at .5 and 1 s fail
		bad.Store(false)
		time.Sleep(400 * time.Millisecond) // check at 1.5 s passes
		synctest.Wait()
		cancel()
		<-done
		got := sock.drain()
		want := []string{
			"READY=1\nSTATUS=registered; 1 workloads",
			"WATCHDOG=1",
			"STATUS=unhealthy: agent: NATS connection RECONNECTING",
			"WATCHDOG=1\nSTATUS=registered; 1 workloads",
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
