package cliconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nexfield.yaml")
	if err := os.WriteFile(cfg, []byte("server: nats://file:4222\nname: top\nagent:\n  name: from-section\n  heartbeat: 7s\n  tags: {zone: north, row: 3}\npeer:\n  name: other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		env           map[string]string
		args          []string
		wantServer    string
		wantName      string
		wantHeartbeat time.Duration
	}{
		{"file only", nil, []string{"--config", cfg}, "nats://file:4222", "from-section", 7 * time.Second},
		{"alias env beats file", map[string]string{"NATS_URL": "nats://alias:1"}, []string{"--config=" + cfg}, "nats://alias:1", "from-section", 7 * time.Second},
		{"prefixed env beats alias", map[string]string{"NATS_URL": "nats://alias:1", "NEXFIELD_SERVER": "nats://env:2"}, []string{"-config", cfg}, "nats://env:2", "from-section", 7 * time.Second},
		{"flag beats env", map[string]string{"NEXFIELD_NAME": "envname"}, []string{"--config", cfg, "-s", "nats://flag:3", "--name", "flagname"}, "nats://flag:3", "flagname", 7 * time.Second},
		{"config from env", map[string]string{"NEXFIELD_CONFIG": cfg}, nil, "nats://file:4222", "from-section", 7 * time.Second},
		{"no config", nil, nil, "nats://default", "def", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("agent", flag.ContinueOnError)
			fs.String("config", filepath.Join(dir, "absent.yaml"), "")
			server := fs.String("server", "nats://default", "")
			Alias(fs, "s", "server")
			name := fs.String("name", "def", "")
			hb := fs.Duration("heartbeat", 5*time.Second, "")
			fs.String("tags", "", "")
			o := Options{Section: "agent", EnvAliases: map[string][]string{"server": {"NATS_URL"}},
				LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			if err := Parse(fs, tc.args, o); err != nil {
				t.Fatal(err)
			}
			if *server != tc.wantServer || *name != tc.wantName || *hb != tc.wantHeartbeat {
				t.Errorf("got server=%q name=%q heartbeat=%v, want %q %q %v", *server, *name, *hb, tc.wantServer, tc.wantName, tc.wantHeartbeat)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("heartbeat: soon\n"), 0o644)
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("a: [\n"), 0o644)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing explicit file", filepath.Join(dir, "nope.yaml"), "no such file"},
		{"bad value", bad, "heartbeat"},
		{"bad yaml", broken, "config:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.String("config", "", "")
			fs.Duration("heartbeat", time.Second, "")
			err := Parse(fs, []string{"--config", tc.path}, Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeListsAndMaps(t *testing.T) {
	got, err := Decode([]byte("tags: {b: 2, a: x}\nservers: [nats://a, nats://b]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got["tags"] != "a=x,b=2" || got["servers"] != "nats://a,nats://b" {
		t.Errorf("got %v", got)
	}
}
