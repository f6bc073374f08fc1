package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
)

// TestAgentFlags: flags, NATS_URL and the configuration file layer as
// documented (flag over environment over file), and tags parse as k=v.
func TestAgentFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "nexfield.yaml")
	os.WriteFile(cfg, []byte("server: nats://file:4222\nagent:\n  nexus: farm\n  heartbeat: 2s\n  tags: {zone: north}\n"), 0o644)
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		server    string
		nexus     string
		heartbeat time.Duration
		tags      string
	}{
		{"defaults", nil, nil, "nats://127.0.0.1:4222", "nexus", 5 * time.Second, ""},
		{"file", []string{"--config", cfg}, nil, "nats://file:4222", "farm", 2 * time.Second, "zone=north"},
		{"NATS_URL over file", []string{"--config", cfg}, map[string]string{"NATS_URL": "nats://env:4222"}, "nats://env:4222", "farm", 2 * time.Second, "zone=north"},
		{"prefixed env over NATS_URL", nil, map[string]string{"NATS_URL": "nats://env:4222", "NEXFIELD_SERVER": "nats://mine:4222"}, "nats://mine:4222", "nexus", 5 * time.Second, ""},
		{"flags over all", []string{"--config", cfg, "-s", "nats://flag:4222", "--nexus", "n2", "--heartbeat", "1s", "--tags", "site=a, rack=7"},
			map[string]string{"NATS_URL": "nats://env:4222"}, "nats://flag:4222", "n2", time.Second, "rack=7,site=a,zone=north"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, c := agentFlags()
			err := cliconf.Parse(fs, tc.args, cliconf.Options{Section: "agent", EnvAliases: map[string][]string{"server": {"NATS_URL"}},
				LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			if c.server != tc.server || c.nexus != tc.nexus || c.heartbeat != tc.heartbeat || c.tags.String() != tc.tags {
				t.Errorf("got server %s nexus %s heartbeat %s tags %q; want %s %s %s %q", c.server, c.nexus, c.heartbeat, c.tags, tc.server, tc.nexus, tc.heartbeat, tc.tags)
			}
		})
	}
	if err := (tagsFlag{}).Set("novalue"); err == nil {
		t.Error("tag without = accepted")
	}
	if _, err := newLogger(os.Stderr, "xml", "info"); err == nil {
		t.Error("log format xml accepted")
	}
}
