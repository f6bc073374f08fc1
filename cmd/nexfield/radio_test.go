package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRadioCommandsAgainstEmulator(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	emuDone := make(chan error, 1)
	go func() {
		emuDone <- dispatch(ctx, env{stdout: io.Discard, stderr: io.Discard},
			[]string{"radio", "emulate", "--modules", "2", "--link", filepath.Join(dir, "m")})
	}()
	defer func() {
		cancel()
		if err := <-emuDone; err != nil {
			t.Errorf("emulate: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "m0")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("emulate left its symlink behind: %v", err)
		}
	}()
	m0, m1 := filepath.Join(dir, "m0"), filepath.Join(dir, "m1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, e0 := os.Stat(m0)
		_, e1 := os.Stat(m1)
		if e0 == nil && e1 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("emulated modules did not appear")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var out bytes.Buffer
	if err := dispatch(ctx, env{stdout: &out, stderr: io.Discard}, []string{"radio", "probe", "--port", m0, "--sf", "9"}); err != nil {
		t.Fatalf("probe: %v", err)
	}
	for _, want := range []string{"rylr{RYLR998 " + m0 + "}", "SF9/BW125/CR4/5, preamble 8", "mtu:     58 bytes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}

	for _, tc := range []struct {
		name       string
		send, want string
		hex        bool
	}{
		{"text", "hello, field", `len=12 "hello, field"`, false},
		{"hex", "00ff0d0a2c", "len=5 00ff0d0a2c", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var heard syncBuffer
			listenArgs := []string{"radio", "listen", "--port", m1, "--count", "1"}
			sendArgs := []string{"radio", "send", "--port", m0}
			if tc.hex {
				listenArgs = append(listenArgs, "--hex")
				sendArgs = append(sendArgs, "--hex")
			}
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			defer lcancel()
			done := make(chan error, 1)
			go func() { done <- dispatch(lctx, env{stdout: &heard, stderr: io.Discard}, listenArgs) }()
			// The listener reconfigures its module first; send until it hears.
			var sent bytes.Buffer
			for i := 0; ; i++ {
				if err := dispatch(ctx, env{stdout: &sent, stderr: io.Discard}, append(sendArgs, tc.send)); err != nil {
					t.Fatalf("send: %v", err)
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("listen: %v", err)
					}
					if !strings.Contains(heard.String(), tc.want) || !strings.Contains(heard.String(), "rssi=-42dBm snr=9dB") {
						t.Fatalf("listen printed %q, want %q", heard.String(), tc.want)
					}
					if !strings.Contains(sent.String(), "time on air") {
						t.Errorf("send printed %q", sent.String())
					}
					return
				case <-time.After(300 * time.Millisecond):
				}
				if i > 20 {
					t.Fatal("listener heard nothing")
				}
			}
		})
	}
}

func TestRadioCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"radio", "probe", "--driver", "sx127x"}, `dio0-pin="" (default): driver sx127x needs dio0-pin`},
		{[]string{"radio", "probe", "--driver", "lorawan"}, `driver=lorawan (flag --driver): unknown driver "lorawan"`},
		{[]string{"radio", "probe", "--port", "/dev/nexfield-no-uart"}, "/dev/nexfield-no-uart"},
		{[]string{"radio", "probe", "--module", "rylr123"}, "unknown model"},
		{[]string{"radio", "send", "--port", "/dev/null"}, ""},
		{[]string{"radio", "emulate", "--modules", "0"}, "--modules"},
		{[]string{"radio", "fly"}, "unknown subcommand"},
	} {
		err := dispatch(context.Background(), env{stdout: io.Discard, stderr: io.Discard}, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestRadioEmulateOverSimHub(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub, err := sim.ListenHub(ctx, "127.0.0.1:0", &sim.HubOpts{Opts: sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 500000}}})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	dir := t.TempDir()
	emuDone := make(chan error, 1)
	go func() {
		emuDone <- dispatch(ctx, env{stdout: io.Discard, stderr: io.Discard},
			[]string{"radio", "emulate", "--modules", "2", "--hub", hub.Addr(), "--link", filepath.Join(dir, "m")})
	}()
	defer func() { cancel(); <-emuDone }()
	m0, m1 := filepath.Join(dir, "m0"), filepath.Join(dir, "m1")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, e0 := os.Stat(m0)
		_, e1 := os.Stat(m1)
		if e0 == nil && e1 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("emulated modules did not appear")
		}
	}
	flags := []string{"--bandwidth", "500000", "--preamble", "12"}
	var heard syncBuffer
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	done := make(chan error, 1)
	go func() {
		done <- dispatch(lctx, env{stdout: &heard, stderr: io.Discard}, append([]string{"radio", "listen", "--port", m1, "--count", "1"}, flags...))
	}()
	for i := 0; ; i++ {
		if err := dispatch(ctx, env{stdout: io.Discard, stderr: io.Discard}, append([]string{"radio", "send", "--port", m0}, append(flags, "over the hub")...)); err != nil {
			t.Fatalf("send: %v", err)
		}
		select {
		case err := <-done:
			if err != nil || !strings.Contains(heard.String(), `"over the hub"`) {
				t.Fatalf("listen: %q, %v", heard.String(), err)
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
		if i > 20 {
			t.Fatal("listener heard nothing over the hub")
		}
	}
}
