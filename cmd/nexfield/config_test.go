package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckConfig(t *testing.T) {
	sets := map[string]func() *flag.FlagSet{
		"agent": func() *flag.FlagSet {
			fs := flag.NewFlagSet("agent", flag.ContinueOnError)
			fs.String("server", "", "")
			fs.Duration("heartbeat", 5*time.Second, "")
			fs.String("tags", "", "")
			return fs
		},
		"peer": func() *flag.FlagSet {
			fs := flag.NewFlagSet("peer", flag.ContinueOnError)
			fs.Int("address", 2, "")
			return fs
		},
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"good", "server: nats://x:4222\nagent:\n  heartbeat: 5s\n  tags: {zone: north}\npeer:\n  address: 3\n", nil},
		{"typo in section", "agent:\n  hearbeat: 5s\n", []string{"agent.hearbeat: not a flag of 'nexfield agent'"}},
		{"bad value", "peer:\n  address: three\n", []string{"peer.address: parse error"}},
		{"unknown top key", "srever: x\n", []string{"srever: not a flag of any command"}},
		{"unknown section", "relya:\n  x: 1\n", []string{`unknown section "relya"`}},
		{"bad top value", "heartbeat: soon\n", []string{"heartbeat: parse error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nexfield.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := checkConfig(path, sets)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestCommandFlagSets builds every command's flag set, which panics on a flag
// defined twice (two packages' flags sharing a command), and checks that an
// example configuration using real keys passes.
func TestCommandFlagSets(t *testing.T) {
	sets := commandFlagSets()
	for name, mk := range sets {
		if fs := mk(); fs.Lookup("config") == nil {
			t.Errorf("%s: no --config flag", name)
		}
	}
	path := filepath.Join(t.TempDir(), "nexfield.yaml")
	cfg := "server: nats://10.0.0.1:4222\nagent:\n  nexus: farm\n  heartbeat: 5s\nrelay:\n  peers: north=2,south=3\n  driver: rylr\n  port: /dev/ttyAMA0\npeer:\n  address: 2\n  driver: sx127x\n  dio0-pin: GPIO22\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := checkConfig(path, sets)
	if err != nil || len(problems) > 0 {
		t.Fatalf("got %v %v, want no problems", problems, err)
	}
}
