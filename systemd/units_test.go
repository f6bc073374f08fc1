package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/internal/cliconf"
)

// units are the unit files the package ships, with the exposure each must not
// exceed under "systemd-analyze security" (×10, as --threshold= takes it).
var units = []struct {
	file      string
	threshold int
	daemon    bool // a long-running Type=notify service
}{
	{"nexfield-agent.service", 15, true},
	{"nexfield-peer.service", 6, true},
	{"nexfield-firstboot.service", 10, false},
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not found; CI must install the systemd package (.ci/run does)")
		}
		t.Skip("systemd-analyze not found (apt-get install systemd): unit checks skipped")
	}
	return p
}

// stageUnits copies the unit files into a temp dir with ExecStart pointing at
// an executable that exists here (the test binary): verify insists on it.
func stageUnits(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, u := range units {
		b, err := os.ReadFile(u.file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/bin/nexfield", self)
		if edit != nil {
			text = edit(u.file, text)
		}
		if err := os.WriteFile(filepath.Join(dir, u.file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestUnits_verify fails on any output of systemd-analyze verify: it exits 0
// when it only warns ("..., ignoring"), which would hide typos.
func TestUnits_verify(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := stageUnits(t, nil)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			out, err := run(t, dir, sa, "verify", "--man=no", "./"+u.file)
			if err != nil || out != "" {
				t.Fatalf("systemd-analyze verify %s: err %v, output:\n%s", u.file, err, out)
			}
		})
	}
}

// TestUnits_verifyCatchesMistakes proves the gate above can fail.
func TestUnits_verifyCatchesMistakes(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, tc := range []struct{ name, from, to string }{
		{"unknown key", "Type=notify", "Type=notify\nWatchDogSec=10s"},
		{"bad Restart= value", "Restart=on-failure", "Restart=sometimes"},
		{"unknown syscall group", "SystemCallFilter=@system-service", "SystemCallFilter=@system-servics"},
		{"bad device rights", "DeviceAllow=char-spi rw", "DeviceAllow=char-spi rwz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := stageUnits(t, func(name, text string) string {
				if name != "nexfield-peer.service" {
					return text
				}
				if !strings.Contains(text, tc.from) {
					t.Fatalf("%s lacks %q", name, tc.from)
				}
				return strings.Replace(text, tc.from, tc.to, 1)
			})
			out, err := run(t, dir, sa, "verify", "--man=no", "./nexfield-peer.service")
			if err == nil && out == "" {
				t.Fatal("verify passed a broken unit silently")
			}
			t.Logf("verify said: %s", strings.TrimSpace(out))
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnits_security gates the exposure score of each unit.
func TestUnits_security(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := stageUnits(t, nil)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			out, err := run(t, dir, sa, "security", "--offline=true", "--no-pager",
				"--threshold="+strconv.Itoa(u.threshold), "./"+u.file)
			m := exposureRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no exposure level in output (err %v):\n%s", err, out)
			}
			t.Logf("%s exposure %s (threshold %.1f)", u.file, m[1], float64(u.threshold)/10)
			if err != nil {
				t.Fatalf("%s: exposure %s above %.1f:\n%s", u.file, m[1], float64(u.threshold)/10, out)
			}
		})
	}
}

// TestUnits_contract checks what the daemons and the packaging rely on,
// without systemd-analyze.
func TestUnits_contract(t *testing.T) {
	for _, u := range units {
		b, err := os.ReadFile(u.file)
		if err != nil {
			t.Fatal(err)
		}
		keys := parseUnit(string(b))
		want := map[string]string{"ExecStart": "", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"}
		if u.daemon {
			for k, v := range map[string]string{
				"Service.Type": "notify", "Service.NotifyAccess": "main", "Service.Restart": "on-failure",
				"Service.User": "nexfield", "Service.StateDirectory": "nexfield", "Service.DevicePolicy": "closed",
				"Service.SupplementaryGroups": "gpio spi dialout", "Service.CapabilityBoundingSet": "",
				// A configuration that cannot work is not restarted.
				"Service.RestartPreventExitStatus": strconv.Itoa(cliconf.ExitConfig),
			} {
				want[k] = v
			}
			for _, k := range []string{"Service.WatchdogSec", "Unit.StartLimitIntervalSec", "Unit.StartLimitBurst"} {
				if keys[k] == nil {
					t.Errorf("%s: no %s", u.file, k)
				}
			}
			dep := "Unit.Requires" // the peer's radio stays off after a rejected import
			if u.file == "nexfield-agent.service" {
				dep = "Unit.Wants" // the agent keeps the device reachable on the old configuration
			}
			if got := keys[dep]; !strings.Contains(" "+strings.Join(got, " ")+" ", " nexfield-firstboot.service ") {
				t.Errorf("%s: %s=%q, want nexfield-firstboot.service", u.file, dep, got)
			}
			if !strings.Contains(strings.Join(keys["Unit.After"], " "), "nexfield-firstboot.service") {
				t.Errorf("%s: not ordered after nexfield-firstboot.service", u.file)
			}
			if keys["Service.StartLimitBurst"] != nil || keys["Service.StartLimitIntervalSec"] != nil {
				t.Errorf("%s: rate limits belong in [Unit]", u.file)
			}
		}
		for k, v := range want {
			if !strings.Contains(k, ".") {
				k = "Service." + k
			}
			got := keys[k]
			if got == nil {
				t.Errorf("%s: no %s", u.file, k)
				continue
			}
			if v != "" && got[len(got)-1] != v {
				t.Errorf("%s: %s=%q, want %q", u.file, k, got[len(got)-1], v)
			}
		}
	}
}

// parseUnit maps "Section.Key" to the values in file order.
func parseUnit(text string) map[string][]string {
	out := map[string][]string{}
	sec := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok {
				out[sec+"."+k] = append(out[sec+"."+k], v)
			}
		}
	}
	return out
}

// TestSysusers applies the sysusers fragment to a scratch root and checks the
// user and its groups, as systemd-sysusers does on a target at boot.
func TestSysusers(t *testing.T) {
	tool, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Skip("systemd-sysusers not found: sysusers check skipped")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\n")
	write("group", "root:x:0:\ndialout:x:20:\n")
	frag, _ := filepath.Abs("nexfield.sysusers")
	if out, err := run(t, root, tool, "--root="+root, frag); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	if !regexp.MustCompile(`(?m)^nexfield:x:\d+:\d+:[^:]*:/var/lib/nexfield:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("passwd lacks the nexfield system user:\n%s", passwd)
	}
	for _, g := range []string{"gpio", "spi", "dialout"} {
		if !regexp.MustCompile(`(?m)^` + g + `:x:\d+:nexfield$`).Match(group) {
			t.Errorf("group %s does not list nexfield:\n%s", g, group)
		}
	}
}
