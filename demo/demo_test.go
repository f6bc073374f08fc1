package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// buildNexfield compiles the real binary the demo uploads and runs.
func buildNexfield(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(t.TempDir(), "nexfield")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/nexfield")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDemoEndToEnd runs the whole path with 10 % frame loss, every station
// driving an emulated RYLR998 through the UART driver: the relay must come
// from the object store through the agent, and the peers' classifier must
// label the known messages.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs several processes")
	}
	bin := buildNexfield(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := Run(ctx, Opts{Self: bin, RYLR: true, Loss: 0.1, Seed: 7, Out: &out, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for i, a := range res.Answers {
		want := Samples()[i]
		if a.Label != want.Want || a.Reply.Peer != want.Peer {
			t.Errorf("%q: got %s from %s, want %s from %s", short(a.Text, 30), a.Label, a.Reply.Peer, want.Want, want.Peer)
		}
		if a.Frames < 2 || a.AirtimeMS <= 0 {
			t.Errorf("%q: link stats missing: %+v", short(a.Text, 30), a.Reply)
		}
	}
	if long := res.Answers[len(res.Answers)-1]; long.Frames < 10 {
		t.Errorf("the long report crossed in %d frames, want many", long.Frames)
	}
	if res.Relay.Name != "relay" || res.Relay.WorkloadState != "running" || res.Relay.WorkloadType != "nexfield" {
		t.Errorf("relay workload as the node sees it: %+v", res.Relay)
	}
	// The relay ran from the agent's cache, where the demo found a file with
	// exactly the digest of the bytes uploaded to the object store.
	if !strings.Contains(res.RelayBinary, filepath.Join("gateway-a", "artifacts")) || res.Uploaded == "" {
		t.Errorf("relay binary %q (uploaded %q): not from the agent's artifact cache", res.RelayBinary, res.Uploaded)
	}
	for _, col := range []string{"label", "frames", "airtime ms"} {
		if !strings.Contains(out.String(), col) {
			t.Errorf("report lacks column %q:\n%s", col, out.String())
		}
	}
}

func TestDemoMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs several processes")
	}
	bin := buildNexfield(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	// Radios straight on the channel, with carrier sense: what is under test
	// is the move between agents; the UART driver path runs in TestDemoEndToEnd.
	res, err := Run(ctx, Opts{Self: bin, Migrate: true, Out: &out, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo --migrate: %v\n%s", err, out.String())
	}
	m := res.Migration
	if m == nil || m.Failed != 0 || m.Requests < 3 || m.Served[1] == 0 || m.Served[4] == 0 {
		t.Fatalf("migration report %+v, want no failures and answers from both relay instances\n%s", m, out.String())
	}
}
