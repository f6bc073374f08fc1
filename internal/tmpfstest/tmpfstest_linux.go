package tmpfstest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func mount(t testing.TB, size int64) string {
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// huge=never: with huge pages a file's space would grow in 2 MiB
	// steps and Fill could not leave a single page free.
	data := "size=" + strconv.FormatInt(size, 10) + ",mode=0755,huge=never"
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, data); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("tmpfstest: mounting a tmpfs needs root: %v", err)
		}
		t.Fatalf("tmpfstest: mount %s: %v", dir, err)
	}
	// Detached, so that a process the test leaves running with a file
	// open does not keep the mount busy.
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func fill(t testing.TB, dir string, free int64) {
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatalf("tmpfstest: fill: %v", err)
	}
	defer f.Close()
	// Writes start on page boundaries, so the one that meets the limit
	// stops at one too: the file's size is what it holds.
	buf := make([]byte, 64<<10)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("tmpfstest: fill: %v", err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		t.Fatalf("tmpfstest: fill: %v", err)
	}
	page := int64(os.Getpagesize())
	free = (free + page - 1) / page * page
	if free > size {
		t.Fatalf("tmpfstest: fill: only %d bytes to free, want %d", size, free)
	}
	if err := f.Truncate(size - free); err != nil {
		t.Fatalf("tmpfstest: fill: %v", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatalf("tmpfstest: fill: %v", err)
	}
	if got := int64(st.Bavail) * int64(st.Bsize); got != free {
		t.Fatalf("tmpfstest: fill: %d bytes free, want %d", got, free)
	}
}

func readOnly(t testing.TB, dir string) {
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("tmpfstest: remount %s read-only: %v", dir, err)
	}
}
