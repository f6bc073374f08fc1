package tmpfstest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFillAndReadOnly(t *testing.T) {
	dir := Mount(t, 256<<10)
	page := os.Getpagesize()
	Fill(t, dir, 1)
	p := filepath.Join(dir, "a")
	if err := os.WriteFile(p, make([]byte, page), 0o600); err != nil {
		t.Fatalf("one page into one free page: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("x"), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a byte into a full tmpfs: got %v, want ENOSPC", err)
	}
	os.Remove(p)
	ReadOnly(t, dir)
	if err := os.WriteFile(p, []byte("x"), 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write on the read-only tmpfs: got %v, want EROFS", err)
	}
}
