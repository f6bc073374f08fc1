package cliconf

import (
	"errors"
	"flag"
	"io"
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

// TestParseSources: each value's layer is reported, so a command can say
// where a bad value came from.
func TestParseSources(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "nexfield.yaml")
	os.WriteFile(cfg, []byte("sf: 9\nregion: eu868\npeer:\n  driver: sim\n"), 0o644)
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.String("config", "", "")
	fs.String("server", "", "")
	Alias(fs, "s", "server")
	fs.Int("sf", 7, "")
	fs.String("driver", "rylr", "")
	fs.String("region", "us915", "")
	fs.String("hub", "", "")
	fs.Bool("echo", false, "")
	fs.Int("address", 2, "")
	env := map[string]string{"NEXFIELD_REGION": "none", "NATS_URL": "nats://env:1"}
	src, err := ParseSources(fs, []string{"--config", cfg, "-s", "nats://flag:2", "--echo", "-hub=h:1"}, Options{
		Section: "peer", EnvAliases: map[string][]string{"server": {"NATS_URL"}},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{
		{"sf", cfg + ", top level"},
		{"driver", cfg + ", section peer"},
		{"region", "environment NEXFIELD_REGION"},
		{"server", "flag -s"},
		{"echo", "flag --echo"},
		{"hub", "flag --hub"},
		{"address", "default"},
	} {
		if got := src[tc.flag].String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.flag, got, tc.want)
		}
	}
}

// TestParseErrorsNameTheSource: a value that does not parse is an *Error
// whose problem names the key, its layer and what to do.
func TestParseErrorsNameTheSource(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "nexfield.yaml")
	os.WriteFile(cfg, []byte("peer:\n  sf: nine\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"file section", []string{"--config", cfg}, nil, "sf=nine (" + cfg + ", section peer): parse error; 'nexfield peer -h' says what sf takes"},
		{"environment", nil, map[string]string{"NEXFIELD_SF": "13.5"}, "sf=13.5 (environment NEXFIELD_SF): parse error"},
		{"explicit file missing", []string{"--config", cfg + ".absent"}, nil, "config=" + cfg + ".absent (flag --config): open "},
		{"command line", []string{"--sf", "x"}, nil, "(command line): invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("peer", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.String("config", "", "")
			fs.Int("sf", 7, "")
			err := Parse(fs, tc.args, Options{Section: "peer", LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if ce.Command != "peer" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := Parse(fs, []string{"-h"}, Options{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Command: "peer", Problems: []Problem{
		{Key: "sf", Value: "13", Source: Source{Kind: FromFlag, Name: "--sf"}, Msg: "not in 5..12", Fix: "set sf to 5..12"},
		{Key: "dio0-pin", Msg: "driver sx127x needs it"},
	}}
	want := "peer: configuration cannot work (2 problems):\n  - sf=13 (flag --sf): not in 5..12; set sf to 5..12\n  - dio0-pin=\"\" (default): driver sx127x needs it"
	if e.Error() != want {
		t.Errorf("got %q, want %q", e.Error(), want)
	}
}

// TestDecodeKeepsText: a value reaches the flag as written, not as YAML
// reads it (0x34 is a sync word, not 52; 010 is not 8; null is unset).
func TestDecodeKeepsText(t *testing.T) {
	got, err := Decode([]byte("sync-word: 0x34\nmode: 010\nname: ~\nrate: 1_000\npeer:\n  sync-word: 0x12\n  peers: &p [a=1, b=2]\nlist: *p\n"), "peer")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"sync-word": "0x12", "mode": "010", "name": "", "rate": "1_000", "peers": "a=1,b=2", "list": "a=1,b=2"} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q", k, got[k], want)
		}
	}
	if _, err := Decode([]byte("- a\n- b\n"), ""); err == nil || !strings.Contains(err.Error(), "want a mapping") {
		t.Errorf("a list: got %v", err)
	}
	if got, err := Decode(nil, "peer"); err != nil || len(got) != 0 {
		t.Errorf("empty file: got %v, %v", got, err)
	}
}
