// Package tmpfstest gives tests a real filesystem that fills up or turns
// read-only: a small tmpfs, mounted in t.TempDir and unmounted with the
// test. Mounting needs root (CAP_SYS_ADMIN) on Linux; elsewhere the test
// is skipped, so the suite still runs on a laptop.
package tmpfstest

import "testing"

// Mount mounts a tmpfs of size bytes (whole pages) and returns its path.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	return mount(t, size)
}

// Fill fills the filesystem dir is on, leaving free bytes free (rounded up
// to whole pages; 0 leaves none), with a file named "fill" in dir.
func Fill(t testing.TB, dir string, free int64) {
	t.Helper()
	fill(t, dir, free)
}

// ReadOnly remounts the tmpfs at dir (a path Mount returned) read-only.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	readOnly(t, dir)
}
