package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/nexfield/nexfield/radio/sim"
)

// ledPin records how long the LED was on at a stretch.
type ledPin struct {
	gpiotest.Pin
	mu      sync.Mutex
	on      bool
	since   time.Time
	longest time.Duration // longest stretch lit so far
	flashes int           // off-to-on edges
}

func (p *ledPin) Out(l pgpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.on && !bool(l) {
		p.longest = max(p.longest, now.Sub(p.since))
	}
	if !p.on && bool(l) {
		p.since = now
		p.flashes++
	}
	p.on = bool(l)
	return nil
}

func (p *ledPin) read() (on bool, longest time.Duration, flashes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.longest
	if p.on {
		l = max(l, time.Since(p.since))
	}
	return p.on, l, p.flashes
}

// TestPeerStatusLED: a peer given --led blinks fast while it starts, shows
// steady light once it listens, flickers while an exchange is on the air,
// and leaves the LED dark when it stops.
func TestPeerStatusLED(t *testing.T) {
	pin := &ledPin{Pin: gpiotest.Pin{N: "NEXFIELD_TEST_LED"}}
	if err := gpioreg.Register(pin); err != nil {
		t.Fatal(err)
	}
	defer gpioreg.Unregister(pin.N)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hub, err := sim.ListenHub(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	dir := t.TempDir()
	key := writeKey(t, dir, testKey, 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o644)
	common := []string{"--config", empty, "--driver", "sim", "--hub", hub.Addr(), "--psk-file", key}

	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- runPeer(ctx, env{stdout: &out, stderr: &out},
			append(common, "--led", pin.N, "--echo", "--state-dir", filepath.Join(dir, "peer"), "--address", "2"))
	}()
	// Serving: on for 1.9 s at a stretch, which the 100 ms booting blink never is.
	eventuallyLED(t, 10*time.Second, "steady light once listening", func() bool {
		_, longest, _ := pin.read()
		return longest > time.Second
	})
	_, _, before := pin.read()
	var sendOut bytes.Buffer
	if err := runSend(ctx, env{stdout: &sendOut, stderr: &sendOut},
		append(common, "--state-dir", filepath.Join(dir, "send"), "--address", "1", "--to", "2", "--raw", "--timeout", "20s", "ping")); err != nil {
		t.Fatalf("send: %v\n%s", err, sendOut.String())
	}
	// The serving pattern lights up once every 2 s; frames going out
	// blink it every 100 ms, frames coming in every 80 ms.
	eventuallyLED(t, time.Second, "blinks for the frames of the exchange", func() bool {
		_, _, after := pin.read()
		return after-before >= 2
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("peer: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not stop")
	}
	if on, _, _ := pin.read(); on {
		t.Error("LED left on after the peer stopped")
	}
}

func eventuallyLED(t *testing.T, total time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
