//go:build !linux

package tmpfstest

import "testing"

// Off Linux there is no tmpfs to mount: tests that need one are skipped.

func mount(t testing.TB, size int64) string {
	t.Skip("tmpfstest: tmpfs is Linux only")
	return ""
}

func fill(t testing.TB, dir string, free int64) { t.Skip("tmpfstest: tmpfs is Linux only") }

func readOnly(t testing.TB, dir string) { t.Skip("tmpfstest: tmpfs is Linux only") }
