package artifact_test

import (
	"errors"
	"os"
	"path/filepath"
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
