package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nexfield/nexfield/systemd"
)

// statusEvery is how often the STATUS= line shown by systemctl is refreshed.
const statusEvery = 10 * time.Second

// runUnderSystemd runs a daemon's main loop and tells systemd the truth
// about it: READY=1 once ready is closed, a STATUS= line from status,
// WATCHDOG=1 only while health passes, STOPPING=1 on the way out. Without
// NOTIFY_SOCKET it only runs run.
func runUnderSystemd(ctx context.Context, log *slog.Logger, run func(context.Context) error, ready <-chan struct{}, status func() string, health func() error) error {
	n := systemd.New(&systemd.Opts{Logger: log.With("component", "systemd")})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if n.Enabled() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ready:
			case <-ctx.Done():
				return
			}
			_ = n.Ready(status())
			wg.Add(1)
			go func() { defer wg.Done(); _ = n.Watchdog(ctx, health) }()
			t := time.NewTicker(statusEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if health() == nil {
						_ = n.Status(status())
					}
				}
			}
		}()
	}
	err := run(ctx)
	if n.Enabled() {
		_ = n.Stopping("stopping")
	}
	return err
}
