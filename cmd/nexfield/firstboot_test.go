package main

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/packaging/firstboot"
)

const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// firstbootDirs makes a boot partition and an /etc/nexfield in temp dirs and
// returns the flags that point firstboot at them, with a user that exists.
// (packaging/firstboot tests the import itself; these test the wiring.)
func firstbootDirs(t *testing.T) (boot, etc string, args []string) {
	t.Helper()
	boot, etc = t.TempDir(), t.TempDir()
	name := "nobody"
	if os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Skip(err)
		}
		name = u.Username
	}
	if _, err := user.Lookup(name); err != nil {
		t.Skipf("no user %s: %v", name, err)
	}
	return boot, etc, []string{"--boot-dir", boot, "--etc-dir", etc, "--user", name}
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
	boot, _, args := firstbootDirs(t)
	out, _, err := runFirstbootTest(t, args)
	if err != nil {
		t.Fatal(err)
	}
	if want := "no nexfield.yaml in " + boot + ", nothing to import"; !strings.Contains(out, want) {
		t.Fatalf("stdout %q, want %q", out, want)
	}
}

// TestFirstboot_imports: what firstboot installs passes config check.
func TestFirstboot_imports(t *testing.T) {
	boot, etc, args := firstbootDirs(t)
	writeFiles(t, boot, map[string]string{
		"nexfield.yaml": "peer:\n  driver: rylr\n  sf: 9\n  psk-file: link.key\nagent:\n  creds: field.creds\n",
		"link.key":      testKey, "field.creds": "-----BEGIN NATS USER JWT-----\n",
	})
	out, logs, err := runFirstbootTest(t, args)
	if err != nil {
		t.Fatalf("firstboot: %v\n%s", err, logs)
	}
	if !strings.Contains(out, "imported "+filepath.Join(etc, "link.key")) {
		t.Fatalf("stdout %q", out)
	}
	b, err := os.ReadFile(filepath.Join(etc, "nexfield.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := checkConfig(b, readDisk)
	if err != nil || len(problems) > 0 {
		t.Fatalf("imported config: %v %v", err, problems)
	}
}

// TestFirstboot_rejectsKeys: keys and values config check refuses are
// refused on import too (TestBadValues takes every value that cannot work
// through firstboot).
func TestFirstboot_rejectsKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // in the error report and the journal
	}{
		{"unknown key", map[string]string{"nexfield.yaml": "peer:\n  spreading: 9\n  psk-file: link.key\n", "link.key": testKey}, "peer.spreading: not a flag"},
		{"bad value", map[string]string{"nexfield.yaml": "peer:\n  sf: nine\n  psk-file: link.key\n", "link.key": testKey}, "peer.sf: parse error"},
		{"unknown section", map[string]string{"nexfield.yaml": "peeer:\n  sf: 9\n"}, `unknown section "peeer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot, etc, args := firstbootDirs(t)
			writeFiles(t, boot, tc.files)
			_, logs, err := runFirstbootTest(t, args)
			if err == nil || !strings.Contains(err.Error(), "nothing imported") {
				t.Fatalf("got %v, want a rejection", err)
			}
			if !strings.Contains(strings.ReplaceAll(logs, `\"`, `"`), tc.want) {
				t.Errorf("journal lacks %q:\n%s", tc.want, logs)
			}
			report, _ := os.ReadFile(filepath.Join(boot, firstboot.ErrorName))
			if !strings.Contains(string(report), tc.want) {
				t.Errorf("report lacks %q:\n%s", tc.want, report)
			}
			if ents, _ := os.ReadDir(etc); len(ents) != 0 {
				t.Errorf("etc dir changed: %v", ents)
			}
		})
	}
}
