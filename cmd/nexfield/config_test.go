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
