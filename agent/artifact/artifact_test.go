package artifact_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/internal/atomicfile"
)

func newStore(t testing.TB, o *artifact.Opts) (*artifact.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifacts")
	s, err := artifact.New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestFetchNATS(t *testing.T) {
	nc, obs := objectStore(t, "artifacts")
	info := put(t, obs, "hello_latest", readBin(t, native))
	put(t, obs, "hello_v2", readBin(t, native))
	s, dir := newStore(t, nil)
	ctx := context.Background()

	a, err := s.Fetch(ctx, nc, "nats://artifacts/hello", info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if a.Cached || a.Digest != info.Digest || a.Size != int64(info.Size) || a.Object != "hello_latest" {
		t.Errorf("got %+v, want a fresh pull of hello_latest with %s", a, info.Digest)
	}
	fi, err := os.Stat(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	if got := run(t, a.Path); got != "hello from nexfield" {
		t.Errorf("ran %q", got)
	}

	again, err := s.Fetch(ctx, nc, "nats://artifacts/hello:latest", "")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != a.Path {
		t.Errorf("second fetch %+v, want the cached %s", again, a.Path)
	}
	// Same content under another tag: same cache entry.
	v2, err := s.Fetch(ctx, nc, "nats://artifacts/hello:v2", "")
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Cached || v2.Object != "hello_v2" {
		t.Errorf("tag v2: got %+v, want cached content from hello_v2", v2)
	}
	if got := cacheFiles(t, dir); len(got) != 1 {
		t.Errorf("cache holds %v, want one file", got)
	}
	// A link resolves to its target's content and digest.
	if _, err := obs.AddLink(ctx, "alias_latest", info); err != nil {
		t.Fatal(err)
	}
	s2, _ := newStore(t, nil)
	l, err := s2.Fetch(ctx, nc, "nats://artifacts/alias", info.Digest)
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	if l.Cached || l.Digest != info.Digest || run(t, l.Path) != "hello from nexfield" {
		t.Errorf("link: got %+v", l)
	}
}

func TestFetchErrors(t *testing.T) {
	nc, obs := objectStore(t, "artifacts")
	info := put(t, obs, "hello_latest", readBin(t, native))
	put(t, obs, "arm_latest", readBin(t, arm64))
	put(t, obs, "text_latest", []byte("just some text, not a program\n"))
	put(t, obs, "empty_latest", nil)
	put(t, obs, "elfobj_latest", elfRelocatable(t))
	otherSum := sha256.Sum256([]byte("something else"))
	other := artifact.FormatDigest(otherSum[:])

	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name, uri, want string
		err             error
		msg             string
	}{
		{name: "http scheme", uri: "http://example.com/hello", err: artifact.ErrBadURI, msg: "file:// for a local binary or nats://"},
		{name: "no object", uri: "nats://artifacts", err: artifact.ErrBadURI},
		{name: "empty object", uri: "nats://artifacts/", err: artifact.ErrBadURI},
		{name: "empty tag", uri: "nats://artifacts/hello:", err: artifact.ErrBadURI},
		{name: "bad bucket", uri: "nats://art.facts/hello", err: artifact.ErrBadURI},
		{name: "relative file", uri: "file://hello", err: artifact.ErrBadURI},
		{name: "bad digest form", uri: "nats://artifacts/hello", want: "md5=abc", err: artifact.ErrDigestMismatch},
		{name: "missing bucket", uri: "nats://nobucket/hello", err: artifact.ErrNotFound, msg: `bucket "nobucket" does not exist`},
		{name: "missing object", uri: "nats://artifacts/nothere", err: artifact.ErrNotFound, msg: `no object "nothere_latest"`},
		{name: "missing tag", uri: "nats://artifacts/hello:v9", err: artifact.ErrNotFound},
		{name: "missing file", uri: "file://" + missing, err: artifact.ErrNotFound},
		{name: "directory", uri: "file://" + t.TempDir(), err: artifact.ErrNotExecutable},
		{name: "digest mismatch", uri: "nats://artifacts/hello", want: other, err: artifact.ErrDigestMismatch, msg: info.Digest},
		{name: "wrong arch", uri: "nats://artifacts/arm", err: artifact.ErrWrongArch, msg: "binary is 64-bit AArch64 (arm64)"},
		{name: "text", uri: "nats://artifacts/text", err: artifact.ErrNotExecutable, msg: "neither an ELF binary nor a #! script"},
		{name: "empty", uri: "nats://artifacts/empty", err: artifact.ErrNotExecutable},
		{name: "relocatable", uri: "nats://artifacts/elfobj", err: artifact.ErrNotExecutable, msg: "not a program"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t, nil)
			_, err := s.Fetch(context.Background(), nc, tc.uri, tc.want)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q, want it to say %q", err, tc.msg)
			}
			if got := cacheFiles(t, dir); len(got) != 0 {
				t.Errorf("cache holds %v after a failed fetch", got)
			}
		})
	}
}

// elfRelocatable is an ELF header of type ET_REL for this machine.
func elfRelocatable(t testing.TB) []byte {
	b := readBin(t, native)
	b[16], b[17] = 1, 0 // e_type = ET_REL (little endian)
	return b
}

func TestFetchFile(t *testing.T) {
	s, dir := newStore(t, nil)
	ctx := context.Background()
	src := bins[native]
	a, err := s.Fetch(ctx, nil, "file://"+src, "")
	if err != nil {
		t.Fatal(err)
	}
	b := readBin(t, native)
	sum := sha256.Sum256(b)
	if a.Digest != artifact.FormatDigest(sum[:]) || filepath.Dir(a.Path) != dir {
		t.Errorf("got %+v, want digest %s in %s", a, artifact.FormatDigest(sum[:]), dir)
	}
	if got := run(t, a.Path); got != "hello from nexfield" {
		t.Errorf("ran %q", got)
	}
	if _, err := s.Fetch(ctx, nil, "file://"+src, fmt.Sprintf("sha256:%x", sum)); err != nil {
		t.Errorf("hex digest: %v", err)
	}
	if _, err := s.Fetch(ctx, nil, "file://"+src, "sha256:"+strings.Repeat("00", 32)); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Errorf("got %v, want a digest mismatch", err)
	}

	script := filepath.Join(t.TempDir(), "hi.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi from a script\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err = s.Fetch(ctx, nil, "file://"+script, "")
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	if got := run(t, a.Path); got != "hi from a script" {
		t.Errorf("script ran %q", got)
	}
}

func TestFetchCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, js jetstream.JetStream, subj string)
	}{
		{name: "truncated", tamper: func(t *testing.T, js jetstream.JetStream, subj string) {
			st, err := js.Stream(ctx, "OBJ_artifacts")
			if err != nil {
				t.Fatal(err)
			}
			last, err := st.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteMsg(ctx, last.Sequence); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "corrupt", tamper: func(t *testing.T, js jetstream.JetStream, subj string) {
			st, err := js.Stream(ctx, "OBJ_artifacts")
			if err != nil {
				t.Fatal(err)
			}
			last, err := st.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteMsg(ctx, last.Sequence); err != nil {
				t.Fatal(err)
			}
			bad := slices.Clone(last.Data)
			bad[len(bad)/2] ^= 0xff
			if _, err := js.Publish(ctx, subj, bad); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, obs := objectStore(t, "artifacts")
			js, _ := jetstream.New(nc)
			info := put(t, obs, "hello_latest", readBin(t, native))
			tc.tamper(t, js, "$O.artifacts.C."+info.NUID)
			s, dir := newStore(t, nil)
			_, err := s.Fetch(ctx, nc, "nats://artifacts/hello", "")
			if !errors.Is(err, artifact.ErrDigestMismatch) {
				t.Fatalf("got %v, want a digest mismatch", err)
			}
			if got := cacheFiles(t, dir); len(got) != 0 {
				t.Errorf("cache holds %v after a corrupt pull", got)
			}
		})
	}
}

func TestVariants(t *testing.T) {
	nc, obs := objectStore(t, "artifacts")
	put(t, obs, "hello_latest", readBin(t, amd64))
	put(t, obs, "hello_latest.linux-arm64", readBin(t, arm64))
	put(t, obs, "hello_latest.linux-armv6", readBin(t, armv6))
	put(t, obs, "only7_latest.linux-armv7", readBin(t, armv7))
	put(t, obs, "only7_latest", readBin(t, armv7))
	for _, tc := range []struct {
		name     string
		plat     artifact.Opts
		uri      string
		object   string
		err      error
		errMatch string
	}{
		{name: "amd64 takes the plain object", plat: artifact.Opts{GOARCH: "amd64"}, uri: "nats://artifacts/hello", object: "hello_latest"},
		{name: "arm64 variant", plat: artifact.Opts{GOARCH: "arm64"}, uri: "nats://artifacts/hello", object: "hello_latest.linux-arm64"},
		{name: "armv7 falls back to armv6", plat: artifact.Opts{GOARCH: "arm", GOARM: "7"}, uri: "nats://artifacts/hello", object: "hello_latest.linux-armv6"},
		{name: "armv6 variant", plat: artifact.Opts{GOARCH: "arm", GOARM: "6"}, uri: "nats://artifacts/hello", object: "hello_latest.linux-armv6"},
		{name: "armv7 variant", plat: artifact.Opts{GOARCH: "arm", GOARM: "7"}, uri: "nats://artifacts/only7", object: "only7_latest.linux-armv7"},
		{name: "armv6 refuses a GOARM=7 binary", plat: artifact.Opts{GOARCH: "arm", GOARM: "6"}, uri: "nats://artifacts/only7", err: artifact.ErrWrongArch, errMatch: "GOARM=7"},
		{name: "arm64 never takes arm32", plat: artifact.Opts{GOARCH: "arm64"}, uri: "nats://artifacts/only7", err: artifact.ErrWrongArch, errMatch: "32-bit ARM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, &tc.plat)
			a, err := s.Fetch(context.Background(), nc, tc.uri, "")
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("got %v, want %v saying %q", err, tc.err, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Object != tc.object {
				t.Errorf("picked %s, want %s", a.Object, tc.object)
			}
		})
	}
}

func TestCheckARMAttributes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		cpuArch byte
		arm     string
		ok      bool
	}{
		{"v7 binary on ARMv7", 10, "7", true},
		{"v7 binary on ARMv6", 10, "6", false},
		{"v6KZ binary on ARMv6", 7, "6", true},
		{"v8 AArch32 binary on ARMv7", 14, "7", true},
		{"v8 AArch32 binary on ARMv6", 14, "6", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, armAttrELF(tc.cpuArch), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = artifact.Platform{OS: "linux", Arch: "arm", ARM: tc.arm}.Check(f)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && (!errors.Is(err, artifact.ErrWrongArch) || !strings.Contains(err.Error(), "needs ARMv7")) {
				t.Errorf("got %v, want ErrWrongArch naming ARMv7", err)
			}
			// Unknown level: nothing to compare, accepted.
			if err := (artifact.Platform{OS: "linux", Arch: "arm"}).Check(f); err != nil {
				t.Errorf("unknown machine level: %v", err)
			}
		})
	}
}

func TestCheckInterpreter(t *testing.T) {
	const interp = "/lib64/ld-linux-x86-64.so.2"
	b, err := os.ReadFile("/bin/true")
	if err != nil || !strings.Contains(string(b[:4096]), interp) {
		t.Skip("no dynamically linked x86-64 /bin/true here")
	}
	if s, _ := newStore(t, nil); s.Platform().Arch != "amd64" {
		t.Skip("needs an amd64 machine")
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, b, 0o755)
	os.WriteFile(bad, patchInterp(t, b, interp), 0o755)
	s, _ := newStore(t, nil)
	if _, err := s.Fetch(context.Background(), nil, "file://"+good, ""); err != nil {
		t.Errorf("dynamic binary with a present interpreter: %v", err)
	}
	_, err = s.Fetch(context.Background(), nil, "file://"+bad, "")
	if !errors.Is(err, artifact.ErrWrongArch) || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("got %v, want a missing-interpreter refusal", err)
	}
}

func TestGC(t *testing.T) {
	nc, obs := objectStore(t, "artifacts")
	a1 := put(t, obs, "one_latest", readBin(t, native))
	put(t, obs, "two_latest", []byte("#!/bin/sh\necho two\n"))
	s, dir := newStore(t, nil)
	ctx := context.Background()
	one, err := s.Fetch(ctx, nc, "nats://artifacts/one", "")
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Fetch(ctx, nc, "nats://artifacts/two", "")
	if err != nil {
		t.Fatal(err)
	}
	// A crash mid-pull leaves a temporary file.
	crashed, err := atomicfile.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	crashed.WriteString("partial")
	crashed.Close()
	if err := s.GC([]string{a1.Digest}); err != nil {
		t.Fatal(err)
	}
	got := cacheFiles(t, dir)
	if want := []string{filepath.Base(one.Path)}; !slices.Equal(got, want) {
		t.Errorf("after GC: %v, want %v", got, want)
	}
	if _, err := os.Stat(two.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unused %s survived GC", two.Path)
	}
}

func TestParseDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	obj := artifact.FormatDigest(sum[:])
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{obj, true},
		{strings.TrimRight(obj, "="), true},
		{strings.ToLower(obj[:8]) + obj[8:], true},
		{fmt.Sprintf("sha256:%x", sum), true},
		{"SHA-256=", false},
		{"SHA-256=!!!!", false},
		{"SHA-256=AAAA", false},
		{"sha256:zz", false},
		{fmt.Sprintf("%x", sum), false},
	} {
		got, err := artifact.ParseDigest(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDigest(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && string(got) != string(sum[:]) {
			t.Errorf("ParseDigest(%q) = %x, want %x", tc.in, got, sum)
		}
	}
}

// The full-disk test runs Fetch in a child process whose RLIMIT_FSIZE is
// below the object's size, so the real os write path fails with EFBIG the
// way a full card fails with ENOSPC.
const helperEnv = "NEXFIELD_ARTIFACT_FULLDISK"

func fullDiskHelper() int {
	signal.Ignore(syscall.SIGXFSZ)
	lim := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		return 3
	}
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		fmt.Println("connect:", err)
		return 3
	}
	defer nc.Close()
	s, err := artifact.New(os.Getenv(helperEnv), nil)
	if err != nil {
		fmt.Println("new:", err)
		return 3
	}
	_, err = s.Fetch(context.Background(), nc, "nats://artifacts/hello", "")
	fmt.Println(err)
	if !errors.Is(err, syscall.EFBIG) {
		return 4
	}
	return 0
}

func TestFetchFullDisk(t *testing.T) {
	nc, obs := objectStore(t, "artifacts")
	if b := readBin(t, native); len(b) <= 1<<20 {
		t.Fatalf("test binary is %d bytes, needs to exceed the 1 MiB limit", len(b))
	}
	put(t, obs, "hello_latest", readBin(t, native))
	dir := filepath.Join(t.TempDir(), "artifacts")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, "NATS_URL="+nc.ConnectedUrl())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch under a 1 MiB file size limit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "file too large") {
		t.Errorf("child said %q, want the write error", out)
	}
	if got := cacheFiles(t, dir); len(got) != 0 {
		t.Errorf("cache holds %v after a failed write", got)
	}
}
