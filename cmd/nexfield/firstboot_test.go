package main

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// firstbootDirs makes a boot partition and an /etc/nexfield in temp dirs and
// returns the flags that point firstboot at them, with a user that exists.
func firstbootDirs(t *testing.T) (boot, etc string, args []string, uid int) {
	t.Helper()
	boot, etc = t.TempDir(), t.TempDir()
	name := "nobody" // root can give files away: check the owner for real
	if os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Skip(err)
		}
		name = u.Username
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s: %v", name, err)
	}
	var id int
	for _, c := range u.Uid {
		id = id*10 + int(c-'0')
	}
	return boot, etc, []string{"--boot-dir", boot, "--etc-dir", etc, "--user", name}, id
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil { // FAT shows 0755
			t.Fatal(err)
		}
	}
}

func runFirstbootTest(t *testing.T, args []string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runFirstboot(t.Context(), env{stdout: &out, stderr: &errOut}, args)
	return out.String(), errOut.String(), err
}

func TestFirstboot_nothingToImport(t *testing.T) {
	boot, etc, args, _ := firstbootDirs(t)
	writeFiles(t, boot, map[string]string{"config.txt": "enable_uart=1\n"})
	out, _, err := runFirstbootTest(t, args)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "nothing to import") {
		t.Fatalf("stdout %q", out)
	}
	if ents, _ := os.ReadDir(etc); len(ents) != 0 {
		t.Fatalf("etc dir changed: %v", ents)
	}
}

func TestFirstboot_imports(t *testing.T) {
	boot, etc, args, uid := firstbootDirs(t)
	cfg := "# field station 7\n" +
		"log-level: info\n" +
		"peer:\n" +
		"  driver: rylr   # RYLR998 on the UART\n" +
		"  port: /dev/serial0\n" +
		"  region: us915\n" +
		"  sf: 9\n" +
		"  psk-file: link.key\n" +
		"agent:\n" +
		"  server: nats://10.0.0.1:4222\n" +
		"  creds: " + filepath.Join(etc, "field.creds") + "\n"
	writeFiles(t, boot, map[string]string{
		"nexfield.yaml": cfg, "link.key": testKey, "field.creds": "-----BEGIN NATS USER JWT-----\n",
		"config.txt": "enable_uart=1\n", bootErrorName: "old report\n",
	})
	out, logs, err := runFirstbootTest(t, args)
	if err != nil {
		t.Fatalf("firstboot: %v\n%s", err, logs)
	}
	if !strings.Contains(out, "imported") {
		t.Fatalf("stdout %q", out)
	}
	got, err := os.ReadFile(filepath.Join(etc, "nexfield.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# field station 7", "psk-file: " + filepath.Join(etc, "link.key"), "# RYLR998 on the UART", "sf: 9"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("imported config lacks %q:\n%s", want, got)
		}
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
		data string
	}{
		{"link.key", 0o600, uid, testKey},
		{"field.creds", 0o600, uid, "-----BEGIN NATS USER JWT-----\n"},
		{"nexfield.yaml", 0o640, os.Getuid(), ""},
	} {
		fi, err := os.Stat(filepath.Join(etc, tc.name))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.name, fi.Mode().Perm(), tc.mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != tc.uid {
			t.Errorf("%s: owner %d, want %d", tc.name, st.Uid, tc.uid)
		}
		if b, _ := os.ReadFile(filepath.Join(etc, tc.name)); tc.data != "" && string(b) != tc.data {
			t.Errorf("%s: content %q", tc.name, b)
		}
	}
	for _, gone := range []string{"nexfield.yaml", "link.key", "field.creds", bootErrorName} {
		if _, err := os.Stat(filepath.Join(boot, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still on the boot partition (err %v)", gone, err)
		}
	}
	for _, kept := range []string{"config.txt", bootDoneName} {
		if _, err := os.Stat(filepath.Join(boot, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
	// The imported file passes the same check the daemons' flags make.
	problems, err := checkConfig(filepath.Join(etc, "nexfield.yaml"), firstbootFlagSets())
	if err != nil || len(problems) > 0 {
		t.Fatalf("imported config: %v %v", err, problems)
	}

	// A second import keeps the previous configuration next to the new one.
	writeFiles(t, boot, map[string]string{"nexfield.yaml": "peer:\n  driver: rylr\n  psk-file: " + filepath.Join(etc, "link.key") + "\n"})
	if _, logs, err := runFirstbootTest(t, args); err != nil {
		t.Fatalf("second import: %v\n%s", err, logs)
	}
	prev, _ := os.ReadFile(filepath.Join(etc, "nexfield.yaml.previous"))
	if !bytes.Equal(prev, got) {
		t.Fatalf("nexfield.yaml.previous = %q, want the first import", prev)
	}
}

func TestFirstboot_rejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // in the error report and the journal
	}{
		{"not yaml", map[string]string{"nexfield.yaml": "peer: [unclosed\n"}, "not valid YAML"},
		{"not a mapping", map[string]string{"nexfield.yaml": "- peer\n"}, "must be a mapping"},
		{"unknown key", map[string]string{"nexfield.yaml": "peer:\n  spreading: 9\n  psk-file: link.key\n", "link.key": testKey}, "peer.spreading: not a flag"},
		{"bad value", map[string]string{"nexfield.yaml": "peer:\n  sf: nine\n  psk-file: link.key\n", "link.key": testKey}, "peer.sf"},
		{"sf out of range", map[string]string{"nexfield.yaml": "peer:\n  sf: 13\n  psk-file: link.key\n", "link.key": testKey}, "peer: radio:"},
		{"frequency outside region", map[string]string{"nexfield.yaml": "peer:\n  region: eu868\n  psk-file: link.key\n", "link.key": testKey}, "peer: radio:"},
		{"unknown driver", map[string]string{"nexfield.yaml": "peer:\n  driver: sx1262\n  psk-file: link.key\n", "link.key": testKey}, "unknown driver"},
		{"sx127x without dio0", map[string]string{"nexfield.yaml": "peer:\n  driver: sx127x\n  psk-file: link.key\n", "link.key": testKey}, "needs dio0-pin"},
		{"key file missing", map[string]string{"nexfield.yaml": "peer:\n  psk-file: link.key\n"}, "peer.psk-file: link.key: file not found"},
		{"key not hex", map[string]string{"nexfield.yaml": "peer:\n  psk-file: link.key\n", "link.key": "correct horse battery staple\n"}, "is not hex"},
		{"key too short", map[string]string{"nexfield.yaml": "peer:\n  psk-file: link.key\n", "link.key": "0011223344\n"}, "holds 5 bytes"},
		{"escapes the partition", map[string]string{"nexfield.yaml": "agent:\n  creds: ../../etc/shadow\n"}, "leaves the boot partition"},
		{"default key path absent", map[string]string{"nexfield.yaml": "peer:\n  driver: rylr\n"}, "/etc/nexfield/link.key is not on the device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot, etc, args, _ := firstbootDirs(t)
			writeFiles(t, boot, tc.files)
			_, logs, err := runFirstbootTest(t, args)
			if err == nil || !strings.Contains(err.Error(), "nothing imported") {
				t.Fatalf("got %v, want a rejection", err)
			}
			if !strings.Contains(logs, tc.want) {
				t.Errorf("journal lacks %q:\n%s", tc.want, logs)
			}
			report, _ := os.ReadFile(filepath.Join(boot, bootErrorName))
			if !strings.Contains(string(report), tc.want) {
				t.Errorf("%s lacks %q:\n%s", bootErrorName, tc.want, report)
			}
			for name, text := range tc.files { // left for the technician to fix
				if b, _ := os.ReadFile(filepath.Join(boot, name)); string(b) != text {
					t.Errorf("%s changed on the boot partition", name)
				}
			}
			if ents, _ := os.ReadDir(etc); len(ents) != 0 {
				t.Errorf("etc dir changed: %v", ents)
			}
		})
	}
}

func TestFirstboot_unknownUser(t *testing.T) {
	boot, etc, _, _ := firstbootDirs(t)
	writeFiles(t, boot, map[string]string{"nexfield.yaml": "log-level: debug\n"})
	_, logs, err := runFirstbootTest(t, []string{"--boot-dir", boot, "--etc-dir", etc, "--user", "no-such-user-nexfield"})
	if err == nil || !strings.Contains(logs, "is the nexfield package installed") {
		t.Fatalf("got %v\n%s", err, logs)
	}
}
