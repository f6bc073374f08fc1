package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/packaging/firstboot"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
	"github.com/nexfield/nexfield/radio/sim"
	"github.com/nexfield/nexfield/radio/sx127x"
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
			flagSets := map[string]*flag.FlagSet{}
			for name, mk := range sets {
				flagSets[name] = mk()
			}
			got, err := checkKeys([]byte(tc.yaml), flagSets)
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
// defined twice (two packages' flags sharing a command), and checks that a
// configuration using real keys passes, files and all.
func TestCommandFlagSets(t *testing.T) {
	for name, mk := range commandConfigs() {
		c := mk()
		if c.fs.Lookup("config") == nil {
			t.Errorf("%s: no --config flag", name)
		}
		if c.fs.Name() != name && name != "radio" {
			t.Errorf("section %s configures flag set %q: problems would name the wrong command", name, c.fs.Name())
		}
	}
	dir := t.TempDir()
	key := writeKey(t, dir, testKey, 0o600)
	cfg := "server: nats://10.0.0.1:4222\nagent:\n  nexus: farm\n  heartbeat: 5s\nrelay:\n  peers: north=2,south=3\n  driver: rylr\n  port: /dev/ttyAMA0\n  psk-file: " + key +
		"\npeer:\n  address: 2\n  driver: sx127x\n  dio0-pin: GPIO22\n  psk-file: " + key + "\n"
	problems, err := checkConfig([]byte(cfg), readDisk)
	if err != nil || len(problems) > 0 {
		t.Fatalf("got %v %v, want no problems", problems, err)
	}
}

// writeKey writes a link key file with mode (umask aside) and returns its path.
func writeKey(t *testing.T, dir, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "link.key")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonRunners start each daemon in-process as main would.
func daemonRunners() map[string]func(ctx context.Context, e env, args []string) error {
	return map[string]func(ctx context.Context, e env, args []string) error{
		"agent": runAgent, "relay": runRelay, "peer": runPeer, "send": runSend,
	}
}

// startDaemon runs a daemon with args and returns what it returned and how
// long it took; a daemon that does not return within 5 s fails the test.
func startDaemon(t *testing.T, name string, args ...string) (time.Duration, error) {
	t.Helper()
	if name == "send" {
		args = append(args, "copy that")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var stderr syncBuffer
	start := time.Now()
	err := daemonRunners()[name](ctx, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}, args)
	took := time.Since(start)
	t.Logf("%s returned after %v", name, took)
	if ctx.Err() != nil {
		t.Fatalf("%s %q still running after 5 s (err %v); logs:\n%s", name, args, err, stderr.String())
	}
	return took, err
}

// TestBadValues takes each value that can never work through all three
// places that validate it: config check, firstboot's import, and a daemon's
// start, which must return at once with an error that exits 78 and says the
// same thing.
func TestBadValues(t *testing.T) {
	goodKey := func(t *testing.T, dir string) string { return writeKey(t, dir, testKey, 0o600) }
	radios := []string{"peer", "relay", "send"}
	for _, tc := range []struct {
		name    string
		lines   string                                // under the command's section (SECTION in want is its name)
		key     func(t *testing.T, dir string) string // the psk-file; nil: a good key
		want    []string                              // in every report
		daemons []string                              // nil: peer, relay and send
	}{
		{"unknown driver", "driver: sx1262", nil, []string{"driver=sx1262 (", "section SECTION): unknown driver \"sx1262\"; set driver to rylr"}, nil},
		{"sf 13", "sf: 13", nil, []string{"sf=13 (", "section SECTION): lora: invalid parameters: spreading factor 13 not in 5..12; set sf to 5..12"}, nil},
		{"sf 12 leaves nothing within the dwell limit", "sf: 12", nil, []string{"sf=12 (", "leaves no payload within the 400ms dwell limit of US915"}, nil},
		{"us915 on 868 MHz", "frequency: 868100000", nil, []string{"frequency=868100000 (", "section SECTION): lora: 868.1 MHz is outside the US915 band (902–928 MHz)"}, nil},
		{"eu868 on the default 915 MHz", "region: eu868", nil, []string{"frequency=915000000 (default): lora: 915 MHz is outside every EU868 duty-cycle sub-band"}, nil},
		{"sim without hub", "driver: sim", nil, []string{`hub="" (default): driver sim needs the simulated channel's hub; set hub`}, nil},
		{"sx127x without dio0", "driver: sx127x", nil, []string{`dio0-pin="" (default): driver sx127x needs dio0-pin`}, nil},
		{"bad sync word", "driver: sx127x\n  dio0-pin: GPIO22\n  sync-word: 0x00", nil, []string{"sync-word=0x00 (", "is not a non-zero hex byte"}, nil},
		{"address out of range", "address: 300", nil, []string{"address=300 (", "set address to 1..254"}, nil},
		{"unknown cipher", "cipher: aes", nil, []string{"cipher=aes (", `unknown cipher "aes"`}, nil},
		{"missing key file", "", func(t *testing.T, dir string) string { return filepath.Join(dir, "absent.key") },
			[]string{"psk-file=", "absent.key (", "section SECTION): link key: ", "openssl rand -hex 32"}, nil},
		{"key file unreadable", "", func(t *testing.T, dir string) string { return dir }, []string{"psk-file=", "is a directory"}, nil},
		{"key readable by others", "", func(t *testing.T, dir string) string { return writeKey(t, dir, testKey, 0o644) },
			[]string{"psk-file=", "lets others read it; put the link's key there, readable by the service user only"}, nil},
		{"short key", "", func(t *testing.T, dir string) string { return writeKey(t, dir, "0011223344\n", 0o600) }, []string{"psk-file=", "holds 5 bytes, want at least 16"}, nil},
		{"key not hex", "", func(t *testing.T, dir string) string { return writeKey(t, dir, "correct horse battery\n", 0o600) }, []string{"psk-file=", "is not hex"}, nil},
		{"log level", "log-level: loud", nil, []string{"log-level=loud (", "invalid log level"}, []string{"peer", "relay", "agent"}},
		{"relay peers", "peers: north", nil, []string{"peers=north (", "is not name=address"}, []string{"relay"}},
		{"send to", "to: 0", nil, []string{"to=0 (", "set to to the peer's address"}, []string{"send"}},
		{"agent creds missing", "creds: CREDS", nil, []string{"creds=", "absent.creds (", "section agent): "}, []string{"agent"}},
		{"agent secrets missing", "secrets: CREDS", nil, []string{"secrets=", "absent.creds (", "section agent): "}, []string{"agent"}},
		{"value does not parse", "sf: nine", nil, []string{"sf", "parse error"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			daemons := tc.daemons
			if daemons == nil {
				daemons = radios
			}
			dir := t.TempDir()
			keyFn := tc.key
			if keyFn == nil {
				keyFn = goodKey
			}
			key := keyFn(t, dir)
			config := func(sec string) string {
				text := sec + ":\n"
				if sec != "agent" {
					text += "  psk-file: " + key + "\n  state-dir: " + filepath.Join(dir, "state") + "\n"
				}
				if tc.lines != "" {
					text += "  " + strings.ReplaceAll(tc.lines, "CREDS", filepath.Join(dir, "absent.creds")) + "\n"
				}
				return text
			}
			check := func(t *testing.T, where, sec, report string) {
				t.Helper()
				for _, w := range tc.want {
					if w = strings.ReplaceAll(w, "SECTION", sec); !strings.Contains(report, w) {
						t.Errorf("%s lacks %q:\n%s", where, w, report)
					}
				}
			}
			sec := daemons[0]

			t.Run("config check", func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "nexfield.yaml")
				os.WriteFile(path, []byte(config(sec)), 0o644)
				var stderr bytes.Buffer
				err := runConfigCheck(t.Context(), env{stdout: io.Discard, stderr: &stderr}, []string{path})
				if err == nil {
					t.Fatalf("config check passed:\n%s", config(sec))
				}
				check(t, "config check", sec, stderr.String())
			})

			t.Run("firstboot", func(t *testing.T) {
				boot, etc, args := firstbootDirs(t)
				writeFiles(t, boot, map[string]string{"nexfield.yaml": config(sec)})
				_, logs, err := runFirstbootTest(t, args)
				if exitStatus(err) != 78 || !strings.Contains(err.Error(), "nothing imported") {
					t.Fatalf("got %v (exit %d), want a rejection exiting 78", err, exitStatus(err))
				}
				report, _ := os.ReadFile(filepath.Join(boot, firstboot.ErrorName))
				check(t, "nexfield-error.txt", sec, string(report))
				check(t, "journal", sec, strings.ReplaceAll(logs, `\"`, `"`))
				if ents, _ := os.ReadDir(etc); len(ents) != 0 {
					t.Errorf("etc dir changed: %v", ents)
				}
			})

			for _, d := range daemons {
				t.Run(d, func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "nexfield.yaml")
					os.WriteFile(path, []byte(config(d)), 0o644)
					took, err := startDaemon(t, d, "--config", path)
					if got := exitStatus(err); got != 78 {
						t.Fatalf("exit %d (%v), want 78", got, err)
					}
					if took > 500*time.Millisecond {
						t.Errorf("took %v to give up, want well under a second", took)
					}
					check(t, d, d, err.Error())
					if fromFile := strings.Contains(strings.Join(tc.want, " "), "section"); fromFile && !strings.Contains(err.Error(), path+", section "+d) {
						t.Errorf("%q does not name the file %s", err, path)
					}
				})
			}
		})
	}
}

// TestDaemonConfigSources: the error names where the bad value came from,
// flag, NEXFIELD_ variable or the file's section, and counts each problem.
func TestDaemonConfigSources(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, dir, testKey, 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o644)
	base := []string{"--psk-file", key, "--state-dir", dir}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", nil, []string{"--sf", "13"}, "sf=13 (flag --sf): lora: invalid parameters"},
		{"environment", map[string]string{"NEXFIELD_SF": "13"}, nil, "sf=13 (environment NEXFIELD_SF): lora: invalid parameters"},
		{"environment, not a number", map[string]string{"NEXFIELD_SF": "high"}, nil, "sf=high (environment NEXFIELD_SF): parse error"},
		{"flag driver, default hub", nil, []string{"--driver", "sim"}, `hub="" (default): driver sim needs`},
		{"two problems", nil, []string{"--driver", "sx127x", "--frequency", "868000000"},
			"peer: configuration cannot work (2 problems):\n  - frequency=868000000 (flag --frequency): lora: 868 MHz is outside the US915 band"},
		{"config file missing", nil, []string{"--config", filepath.Join(dir, "absent.yaml")}, "config=" + filepath.Join(dir, "absent.yaml") + " (flag --config): open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append(append([]string{}, base...), tc.args...)
			if !slices.Contains(args, "--config") {
				args = append(args, "--config", empty)
			}
			took, err := startDaemon(t, "peer", args...)
			if got := exitStatus(err); got != 78 || took > 500*time.Millisecond {
				t.Fatalf("exit %d after %v (%v), want 78 at once", got, took, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestPeerMissingKeyExits: a peer whose radio comes up but whose key file is
// missing exits 78 at once instead of reopening the radio forever.
func TestPeerMissingKeyExits(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hub, err := sim.ListenHub(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o644)
	took, err := startDaemon(t, "peer", "--config", empty, "--driver", "sim", "--hub", hub.Addr(),
		"--psk-file", filepath.Join(dir, "link.key"), "--state-dir", dir)
	if got := exitStatus(err); got != 78 || took > 500*time.Millisecond {
		t.Fatalf("exit %d after %v (%v), want 78 at once", got, took, err)
	}
	if want := "psk-file=" + filepath.Join(dir, "link.key") + " (flag --psk-file): link key: open "; !strings.Contains(err.Error(), want) {
		t.Errorf("got %q, want %q", err, want)
	}
}

// TestPeerModuleRefusesExits: settings only the module itself can refuse
// (an RYLR998 found by AT+VER? does not do SF10 at 125 kHz) end the peer
// with 78 instead of "radio link down; reopening" forever.
func TestPeerModuleRefusesExits(t *testing.T) {
	m, err := rylrsim.New(&rylrsim.Opts{Air: rylrsim.NewEther().Radio()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := t.TempDir()
	key := writeKey(t, dir, testKey, 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o644)
	took, err := startDaemon(t, "peer", "--config", empty, "--port", m.Path(), "--sf", "10", "--psk-file", key, "--state-dir", dir)
	if got := exitStatus(err); got != 78 || !errors.Is(err, rylr.ErrInvalidOpts) {
		t.Fatalf("exit %d (%v), want 78 for rylr.ErrInvalidOpts", got, err)
	}
	if took > time.Second {
		t.Errorf("took %v, want under a second", took)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{errors.New("radio: join simulated channel: timeout"), 1},
		{usageError{"no command given"}, 2},
		{&cliconf.Error{Command: "peer"}, 78},
		{fmt.Errorf("peer: %w", lora.ErrInvalidParams), 78},
		{fmt.Errorf("open: %w", sx127x.ErrInvalidOpts), 78},
		{fmt.Errorf("%w: 2 problems", firstboot.ErrRejected), 78},
	} {
		if got := exitStatus(tc.err); got != tc.want {
			t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestConfigExample: "config example" prints the file the package installs
// (one file, embedded), it passes config check as shipped, and with its
// sections uncommented (keys pointed at files that exist) too, so every key
// it documents is real and its values work.
func TestConfigExample(t *testing.T) {
	var out bytes.Buffer
	if err := runConfig(t.Context(), env{stdout: &out, stderr: io.Discard}, []string{"example"}); err != nil {
		t.Fatal(err)
	}
	installed, err := os.ReadFile("../../packaging/nexfield.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), installed) {
		t.Fatal("config example differs from packaging/nexfield.yaml")
	}
	dir := t.TempDir()
	shipped := filepath.Join(dir, "shipped.yaml")
	os.WriteFile(shipped, out.Bytes(), 0o644)
	var stderr bytes.Buffer
	if err := runConfigCheck(t.Context(), env{stdout: io.Discard, stderr: &stderr}, []string{shipped}); err != nil {
		t.Fatalf("shipped example: %v\n%s", err, stderr.String())
	}

	// Uncomment the key lines one level ("# key: value" -> "key: value",
	// "#   key: value" -> "  key: value"; the nested alternatives stay
	// comments) and move /etc/nexfield to dir.
	keyLine := regexp.MustCompile(`(?m)^#( |   )([a-z][a-z0-9-]*:(?: |$))`)
	text := keyLine.ReplaceAllStringFunc(out.String(), func(l string) string {
		m := keyLine.FindStringSubmatch(l)
		return strings.Repeat(" ", len(m[1])-1) + m[2]
	})
	text = strings.ReplaceAll(text, "/etc/nexfield/", dir+"/")
	writeKey(t, dir, testKey, 0o600)
	os.WriteFile(filepath.Join(dir, "agent.creds"), []byte("-----BEGIN NATS USER JWT-----\n"), 0o600)
	active := filepath.Join(dir, "active.yaml")
	os.WriteFile(active, []byte(text), 0o644)
	sections, err := cliconf.Sections([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if strings.Join(sections, " ") != "agent peer relay" {
		t.Fatalf("sections %q after uncommenting:\n%s", sections, text)
	}
	stderr.Reset()
	if err := runConfigCheck(t.Context(), env{stdout: io.Discard, stderr: &stderr}, []string{active}); err != nil {
		t.Fatalf("uncommented example: %v\n%s\n%s", err, stderr.String(), text)
	}
}

// TestExplainLateProblems: the link refuses a key that went after the start
// check (the peer reopening its radio), and the error still names the
// value and its flag.
func TestExplainLateProblems(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "link.key")
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o644)
	fs, c := peerFlags()
	src, err := cliconf.ParseSources(fs, []string{"--config", empty, "--psk-file", key}, cliconf.Options{Section: "peer",
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.link.open(nil, "peer", slog.New(slog.DiscardHandler)) // refused before the radio is touched
	err = explain(fs, src, err)
	if got := exitStatus(err); got != 78 {
		t.Fatalf("exit %d (%v), want 78", got, err)
	}
	if want := "peer: configuration cannot work: psk-file=" + key + " (flag --psk-file): link key: open "; !strings.Contains(err.Error(), want) {
		t.Errorf("got %q, want %q", err, want)
	}
}
