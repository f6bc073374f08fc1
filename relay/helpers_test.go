package relay

import (
	"context"
	"testing"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio/sim"
)

// testPSK is the link key of the tests.
var testPSK = []byte("0123456789abcdef0123456789abcdef")

// airLink puts a radio named name on air and a link at addr over it; both
// close when the test ends. opts may be nil.
func airLink(tb testing.TB, air *sim.Air, name string, addr chunking.Addr, opts ...*chunking.Opts) *chunking.Link {
	tb.Helper()
	r, err := air.NewRadio(&sim.RadioOpts{Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	var o *chunking.Opts
	if len(opts) > 0 {
		o = opts[0]
	}
	l, err := chunking.New(r, addr, testPSK, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close(); r.Close() })
	return l
}

// eventually polls f until it holds, failing the test after total.
func eventually(tb testing.TB, total time.Duration, what string, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(total)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, total)
		}
		time.Sleep(time.Millisecond)
	}
}

// runRelay runs r until the test ends and returns once it serves.
func runRelay(tb testing.TB, r *Relay) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
	})
	waitReady(tb, r)
}

// waitReady waits for r to serve.
func waitReady(tb testing.TB, r *Relay) {
	tb.Helper()
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		tb.Fatal("relay not ready within 10s")
	}
}
