package artifact_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/agent/artifact"
)

// FuzzCheck feeds arbitrary downloaded bytes to the executable check: it
// must refuse or accept, never panic, and refuse with one of its sentinels.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("#!/bin/sh\necho hi\n"))
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x01\x00\x00\x00"))
	f.Add([]byte("hello"))
	f.Add(armAttrELF(10))
	f.Add(armAttrELF(6))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "x")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		for _, plat := range []artifact.Platform{{OS: "linux", Arch: "amd64"}, {OS: "linux", Arch: "arm", ARM: "6"}} {
			err := plat.Check(fh)
			if err != nil && !errors.Is(err, artifact.ErrNotExecutable) && !errors.Is(err, artifact.ErrWrongArch) {
				t.Errorf("%v: unexpected error kind %v", plat, err)
			}
		}
	})
}

// FuzzParse feeds start-request strings to the URI and digest parsers: no
// panics, only their sentinels, and an accepted digest formats back to the
// same 32 bytes.
func FuzzParse(f *testing.F) {
	f.Add("nats://artifacts/echo:v2")
	f.Add("nats://b/n")
	f.Add("SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Add("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Fuzz(func(t *testing.T, s string) {
		if b, o, err := artifact.ParseNATSURI(s); err == nil {
			if b == "" || o == "" || !strings.Contains(o, "_") {
				t.Errorf("ParseNATSURI(%q) = %q, %q", s, b, o)
			}
		} else if !errors.Is(err, artifact.ErrBadURI) {
			t.Errorf("ParseNATSURI(%q): %v", s, err)
		}
		sum, err := artifact.ParseDigest(s)
		if err != nil {
			if !errors.Is(err, artifact.ErrDigestMismatch) {
				t.Errorf("ParseDigest(%q): %v", s, err)
			}
			return
		}
		again, err := artifact.ParseDigest(artifact.FormatDigest(sum))
		if err != nil || string(again) != string(sum) {
			t.Errorf("ParseDigest(%q) does not round-trip: %v", s, err)
		}
	})
}
