package firstboot

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"
)

const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// firstbootDirs makes a boot partition and an /etc/nexfield in temp dirs and
// returns options pointing Import at them, with a user that exists.
func firstbootDirs(t *testing.T) (boot, etc string, o *Opts, uid int) {
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
	return boot, etc, &Opts{BootDir: boot, EtcDir: etc, User: name, FileKeys: []string{"psk-file", "creds"}, Check: checkPeerKey}, id
}

// checkPeerKey stands in for the commands' validation (cmd/nexfield wires
// the real one): the peer reads the key that peer.psk-file names, by default
// /etc/nexfield/link.key, and refuses a short one.
func checkPeerKey(config []byte, name string, read ReadFunc) []string {
	var doc struct {
		Peer *struct {
			PSK string `yaml:"psk-file"`
		} `yaml:"peer"`
	}
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return []string{err.Error()}
	}
	if doc.Peer == nil {
		return nil
	}
	path := doc.Peer.PSK
	if path == "" {
		path = "/etc/nexfield/link.key"
	}
	b, mode, err := read(path)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("peer.psk-file: %v", err)}
	case mode&0o077 != 0:
		return []string{fmt.Sprintf("peer.psk-file: mode %v", mode)}
	case len(bytes.TrimSpace(b)) < 32:
		return []string{fmt.Sprintf("peer.psk-file: %s holds %d hex digits", filepath.Base(path), len(bytes.TrimSpace(b)))}
	}
	return nil
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil { // FAT shows 0755
			t.Fatal(err)
		}
	}
}

func runImport(t *testing.T, o *Opts) (*Result, string, error) {
	t.Helper()
	var logs bytes.Buffer
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	res, err := Import(o)
	return res, logs.String(), err
}

func TestImport_nothingToImport(t *testing.T) {
	boot, etc, o, _ := firstbootDirs(t)
	writeFiles(t, boot, map[string]string{"config.txt": "enable_uart=1\n"})
	res, _, err := runImport(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 0 || res.BootDir != boot {
		t.Fatalf("got %+v, want nothing imported from %s", res, boot)
	}
	if ents, _ := os.ReadDir(etc); len(ents) != 0 {
		t.Fatalf("etc dir changed: %v", ents)
	}
}

func TestImport_imports(t *testing.T) {
	boot, etc, o, uid := firstbootDirs(t)
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
		"config.txt": "enable_uart=1\n", ErrorName: "old report\n",
	})
	var checked string
	o.Check = func(config []byte, name string, read ReadFunc) []string {
		checked = string(config)
		return checkPeerKey(config, name, read)
	}
	res, logs, err := runImport(t, o)
	if err != nil {
		t.Fatalf("firstboot: %v\n%s", err, logs)
	}
	if len(res.Imported) != 3 {
		t.Fatalf("imported %q, want the key, the creds and the config", res.Imported)
	}
	got, err := os.ReadFile(filepath.Join(etc, "nexfield.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if checked != string(got) {
		t.Errorf("Check saw\n%s\nbut the import installed\n%s", checked, got)
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
	for _, gone := range []string{"nexfield.yaml", "link.key", "field.creds", ErrorName} {
		if _, err := os.Stat(filepath.Join(boot, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still on the boot partition (err %v)", gone, err)
		}
	}
	for _, kept := range []string{"config.txt", DoneName} {
		if _, err := os.Stat(filepath.Join(boot, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}

	// A second import keeps the previous configuration next to the new one;
	// the key it names is the one on the device now.
	writeFiles(t, boot, map[string]string{"nexfield.yaml": "peer:\n  driver: rylr\n  psk-file: " + filepath.Join(etc, "link.key") + "\n"})
	o.Check = checkPeerKey
	if _, logs, err := runImport(t, o); err != nil {
		t.Fatalf("second import: %v\n%s", err, logs)
	}
	prev, _ := os.ReadFile(filepath.Join(etc, "nexfield.yaml.previous"))
	if !bytes.Equal(prev, got) {
		t.Fatalf("nexfield.yaml.previous = %q, want the first import", prev)
	}
}

func TestImport_rejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // in the error report and the journal
	}{
		{"not yaml", map[string]string{"nexfield.yaml": "peer: [unclosed\n"}, "not valid YAML"},
		{"not a mapping", map[string]string{"nexfield.yaml": "- peer\n"}, "must be a mapping"},
		{"key file missing", map[string]string{"nexfield.yaml": "peer:\n  psk-file: link.key\n"}, "peer.psk-file: link.key: file not found"},
		{"key refused by the check", map[string]string{"nexfield.yaml": "peer:\n  psk-file: link.key\n", "link.key": "0011223344\n"}, "link.key holds 10 hex digits"},
		{"escapes the partition", map[string]string{"nexfield.yaml": "agent:\n  creds: ../../etc/shadow\n"}, "leaves the boot partition"},
		{"two files, one destination", map[string]string{"nexfield.yaml": "peer:\n  psk-file: a/link.key\nrelay:\n  psk-file: link.key\n", "a/link.key": testKey, "link.key": testKey}, "would both become"},
		{"default key path absent", map[string]string{"nexfield.yaml": "peer:\n  driver: rylr\n"}, "/etc/nexfield/link.key is not on the device and not next to nexfield.yaml (put link.key there)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot, etc, o, _ := firstbootDirs(t)
			if err := os.MkdirAll(filepath.Join(boot, "a"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, boot, tc.files)
			_, logs, err := runImport(t, o)
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "nothing imported") {
				t.Fatalf("got %v, want a rejection", err)
			}
			if !strings.Contains(logs, tc.want) {
				t.Errorf("journal lacks %q:\n%s", tc.want, logs)
			}
			report, _ := os.ReadFile(filepath.Join(boot, ErrorName))
			if !strings.Contains(string(report), tc.want) {
				t.Errorf("%s lacks %q:\n%s", ErrorName, tc.want, report)
			}
			if !bytes.Contains(report, []byte("\r\n")) {
				t.Errorf("%s has no CRLF line ends", ErrorName)
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

func TestImport_unknownUser(t *testing.T) {
	boot, _, o, _ := firstbootDirs(t)
	writeFiles(t, boot, map[string]string{"nexfield.yaml": "log-level: debug\n"})
	o.User = "no-such-user-nexfield"
	_, logs, err := runImport(t, o)
	if !errors.Is(err, ErrRejected) || !strings.Contains(logs, "is the nexfield package installed") {
		t.Fatalf("got %v\n%s", err, logs)
	}
}

// TestShredRemove: the key's bytes are overwritten before the file goes, so
// they do not linger in the FAT's free clusters. The file is opened before
// the shred and read after it, through the same inode.
func TestShredRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "link.key")
	if err := os.WriteFile(path, []byte(testKey), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := shredRemove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	b := make([]byte, len(testKey))
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, make([]byte, len(testKey))) {
		t.Fatalf("content after shred %q, want zeros", b)
	}
}
