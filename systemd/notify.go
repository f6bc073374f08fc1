package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/nexfield/nexfield/clock"
)

// Opts configures a Notifier. The zero value is a working default.
type Opts struct {
	// Logger gets a warning when the health check fails or a message cannot be
	// sent. Nil discards.
	Logger *slog.Logger
	// Clock paces the watchdog pings. Nil means the real clock.
	Clock clock.Clock
}

// Notifier sends sd_notify messages. The zero value works (real clock, no
// logging); it is safe for concurrent use. It holds no process-wide state, so
// tests can make as many as they like.
type Notifier struct {
	opts Opts

	mu     sync.Mutex
	status string // last STATUS= sent, restored after the health check recovers
	warned bool   // a send failure was logged already
}

// New returns a Notifier. Nil opts means the zero Opts.
func New(opts *Opts) *Notifier {
	n := &Notifier{}
	if opts != nil {
		n.opts = *opts
	}
	return n
}

func (n *Notifier) log() *slog.Logger {
	if n.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.opts.Logger
}

// Enabled reports whether the process runs under a service manager that
// listens for notifications ($NOTIFY_SOCKET is set).
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// String describes where notifications go, for the startup log line.
func (n *Notifier) String() string {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return "systemd{off}"
	}
	if iv := n.WatchdogInterval(); iv > 0 {
		return fmt.Sprintf("systemd{%s, watchdog %s}", sock, iv)
	}
	return fmt.Sprintf("systemd{%s}", sock)
}

// Ready sends READY=1 together with a status line (omitted when empty). Call
// it once the daemon really serves: the agent after it registered with its
// node, the peer after the radio is configured and the model loaded. Units of
// Type=notify stay "activating" until then.
func (n *Notifier) Ready(status string) error {
	return n.send(daemon.SdNotifyReady, status)
}

// Status replaces the line `systemctl status` shows. Newlines become spaces:
// the protocol is one assignment per line.
func (n *Notifier) Status(status string) error {
	return n.send("", status)
}

// Stopping sends STOPPING=1 (and a status line when not empty) at the start
// of a graceful shutdown, so systemd shows "deactivating" rather than a
// hang while workloads are stopped.
func (n *Notifier) Stopping(status string) error {
	return n.send(daemon.SdNotifyStopping, status)
}

// WatchdogInterval is WatchdogSec= of the unit, or 0 when the watchdog is off
// or meant for another process.
func (n *Notifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log().Warn("systemd watchdog settings ignored", "err", err)
		return 0
	}
	return d
}

// Watchdog pings WATCHDOG=1 every half WatchdogSec= for as long as health
// returns nil, and returns nil when ctx is cancelled. It returns at once when
// the watchdog is off. When health fails, the pings stop (systemd then kills
// and restarts the unit after WatchdogSec=) and the status line says why; if
// health recovers in time, pinging resumes and the previous status line is
// restored.
//
// health runs on this goroutine. It should be cheap and must not wait for the
// loops it checks: if it blocks, the pings stop too, which is the right
// outcome for a stuck process. Heartbeat.Check gives a suitable function.
func (n *Notifier) Watchdog(ctx context.Context, health func() error) error {
	iv := n.WatchdogInterval()
	if iv <= 0 {
		return nil
	}
	clk := clock.Or(n.opts.Clock)
	t := clk.NewTimer(0)
	defer t.Stop()
	var failing error
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		err := health()
		switch {
		case err == nil:
			if failing != nil {
				n.log().Info("health check passes again, watchdog pings resumed")
				n.mu.Lock()
				st := n.status
				n.mu.Unlock()
				_ = n.send(daemon.SdNotifyWatchdog, st)
			} else {
				_ = n.send(daemon.SdNotifyWatchdog, "")
			}
		case failing == nil:
			n.log().Warn("health check failed, watchdog pings withheld", "err", err, "watchdog", iv)
			n.sendRaw("STATUS=unhealthy: " + oneLine(err.Error()))
		}
		failing = err
		t.Reset(iv / 2)
	}
}

func (n *Notifier) send(state, status string) error {
	var msg []string
	if state != "" {
		msg = append(msg, state)
	}
	if status != "" {
		status = oneLine(status)
		msg = append(msg, "STATUS="+status)
		n.mu.Lock()
		n.status = status
		n.mu.Unlock()
	}
	if len(msg) == 0 {
		return nil
	}
	return n.sendRaw(strings.Join(msg, "\n"))
}

func (n *Notifier) sendRaw(msg string) error {
	_, err := daemon.SdNotify(false, msg)
	if err != nil {
		err = fmt.Errorf("systemd: notify: %w", err)
		n.mu.Lock()
		first := !n.warned
		n.warned = true
		n.mu.Unlock()
		if first {
			n.log().Warn("cannot notify systemd", "err", err)
		}
	}
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Heartbeat marks the progress of one loop: the loop calls Beat on each
// iteration (or each time it waits successfully), and Check turns "no beat for
// too long" into a health failure. The zero value has never beaten; it is safe
// for concurrent use.
type Heartbeat struct {
	name string
	clk  clock.Clock
	last atomic.Int64 // unix nanoseconds of the last Beat; 0 = never
}

// NewHeartbeat returns a Heartbeat named for error messages ("radio loop"),
// beaten once now. A nil clk means the real clock.
func NewHeartbeat(name string, clk clock.Clock) *Heartbeat {
	h := &Heartbeat{name: name, clk: clock.Or(clk)}
	h.Beat()
	return h
}

// Beat records progress now.
func (h *Heartbeat) Beat() {
	h.last.Store(clock.Or(h.clk).Now().UnixNano())
}

// Check returns a health function that fails when the last Beat is older
// than maxAge.
func (h *Heartbeat) Check(maxAge time.Duration) func() error {
	return func() error {
		last := h.last.Load()
		if last == 0 {
			return fmt.Errorf("%s: %w", h.name, ErrStalled)
		}
		if age := clock.Or(h.clk).Now().Sub(time.Unix(0, last)); age > maxAge {
			return fmt.Errorf("%s: no progress for %s: %w", h.name, age.Round(time.Millisecond), ErrStalled)
		}
		return nil
	}
}

// ErrStalled is what Heartbeat checks wrap when a loop made no progress.
var ErrStalled = errors.New("systemd: loop stalled")

// All combines health checks; it fails with every failure joined.
func All(checks ...func() error) func() error {
	return func() error {
		var errs []error
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
