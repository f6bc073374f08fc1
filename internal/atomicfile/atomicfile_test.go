package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nexfield/nexfield/internal/tmpfstest"
)

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkFile fails unless path holds want with mode perm.
func checkFile(t *testing.T, path string, want []byte, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  []byte // nil: no file before
		perm os.FileMode
	}{
		{"new 0600", nil, 0o600},
		{"new 0755", nil, 0o755},
		{"new 0666, whatever the umask", nil, 0o666},
		{"replaces a longer file", []byte(strings.Repeat("old content ", 100)), 0o640},
		{"replaces the mode too", []byte("old"), 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if tc.old != nil {
				if err := os.WriteFile(path, tc.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte(`{"n":1}`), tc.perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, []byte(`{"n":1}`), tc.perm)
			if got := names(t, dir); !slices.Equal(got, []string{"f.json"}) {
				t.Errorf("dir holds %v, want only f.json", got)
			}
		})
	}
}

// TestWriteFileFullDisk writes into a tmpfs with no page left: the write
// fails with ENOSPC, the old file keeps its content and no temporary file
// is left.
func TestWriteFileFullDisk(t *testing.T) {
	mnt := tmpfstest.Mount(t, 256<<10)
	path := filepath.Join(mnt, "counters.json")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpfstest.Fill(t, mnt, 0)
	err := WriteFile(path, []byte("new"), 0o600)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write into a full disk: got %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	checkFile(t, path, []byte("old"), 0o600)
	if got := names(t, mnt); !slices.Equal(got, []string{"counters.json", "fill"}) {
		t.Errorf("dir holds %v after the failed write, want counters.json and fill", got)
	}
}

// TestWriteFileReadOnly: a directory that turned read-only (a filesystem
// remounted after an error) fails the write and changes nothing.
func TestWriteFileReadOnly(t *testing.T) {
	mnt := tmpfstest.Mount(t, 256<<10)
	path := filepath.Join(mnt, "xkey.seed")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpfstest.ReadOnly(t, mnt)
	if err := WriteFile(path, []byte("new"), 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write into a read-only dir: got %v, want EROFS", err)
	}
	checkFile(t, path, []byte("old"), 0o600)
}

// step records one call of the durable sequence.
type step struct {
	op, path string
	content  string // what the path held at the time
}

// recordingFS is the real file system, recording each call and failing
// the one named by fail.
type recordingFS struct {
	steps []step
	fail  string
}

var errInjected = errors.New("injected failure")

func read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func (r *recordingFS) do(s step, f func() error) error {
	r.steps = append(r.steps, s)
	if s.op == r.fail {
		return errInjected
	}
	return f()
}

func (r *recordingFS) syncFile(f *os.File) error {
	return r.do(step{"syncFile", f.Name(), read(f.Name())}, func() error { return osFS{}.syncFile(f) })
}

func (r *recordingFS) rename(oldpath, newpath string) error {
	return r.do(step{"rename", oldpath + " -> " + newpath, read(oldpath)}, func() error { return osFS{}.rename(oldpath, newpath) })
}

func (r *recordingFS) syncDir(dir string) error {
	return r.do(step{"syncDir", dir, ""}, func() error { return osFS{}.syncDir(dir) })
}

// TestWriteFileOrder: the data is in the temporary file when it is
// synced, the rename comes after that sync, and the directory is synced
// after the rename, the step that makes the rename itself survive a power
// cut.
func TestWriteFileOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.json")
	fs := &recordingFS{}
	if err := writeFile(fs, path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(fs.steps) != 3 {
		t.Fatalf("steps %+v, want syncFile, rename, syncDir", fs.steps)
	}
	tmp := fs.steps[0].path
	if filepath.Dir(tmp) != dir || !IsTemp(filepath.Base(tmp)) {
		t.Errorf("temporary file %s: want a temporary name in %s", tmp, dir)
	}
	want := []step{
		{"syncFile", tmp, "data"},
		{"rename", tmp + " -> " + path, "data"},
		{"syncDir", dir, ""},
	}
	if !slices.Equal(fs.steps, want) {
		t.Errorf("got steps %+v, want %+v", fs.steps, want)
	}
}

// TestWriteFileStepFails fails each step of the sequence in turn.
func TestWriteFileStepFails(t *testing.T) {
	for _, tc := range []struct {
		fail    string
		content string // of the destination afterwards
	}{
		{"syncFile", "old"},
		{"rename", "old"},
		{"syncDir", "new"}, // renamed, but the caller learns it may not last
	} {
		t.Run(tc.fail, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "rec.json")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := writeFile(&recordingFS{fail: tc.fail}, path, []byte("new"), 0o600)
			if !errors.Is(err, errInjected) {
				t.Fatalf("got %v, want the injected failure", err)
			}
			checkFile(t, path, []byte(tc.content), 0o600)
			if got := names(t, dir); !slices.Equal(got, []string{"rec.json"}) {
				t.Errorf("dir holds %v, want only rec.json", got)
			}
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errInjected
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestFileCommit(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	if !IsTemp(filepath.Base(f.Name())) || filepath.Dir(f.Name()) != dir {
		t.Errorf("temporary file %s: want a temporary name in %s", f.Name(), dir)
	}
	if _, err := io.Copy(f, strings.NewReader("binary")); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sha256-ab")
	if err := f.Commit(path); err != nil {
		t.Fatal(err)
	}
	f.Cleanup() // after Commit: leaves the file alone
	checkFile(t, path, []byte("binary"), 0o755)
	if got := names(t, dir); !slices.Equal(got, []string{"sha256-ab"}) {
		t.Errorf("dir holds %v, want only sha256-ab", got)
	}
	if err := f.Commit(path); err == nil {
		t.Error("second Commit succeeded")
	}
}

// TestFileFailingWriter: a stream that fails midway, then Cleanup, leaves
// the directory as it was.
func TestFileFailingWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, &failingReader{n: 100 << 10}); !errors.Is(err, errInjected) {
		t.Fatalf("copy: got %v, want the injected failure", err)
	}
	f.Cleanup()
	checkFile(t, path, []byte("old"), 0o644)
	if got := names(t, dir); !slices.Equal(got, []string{"model.onnx"}) {
		t.Errorf("dir holds %v, want only model.onnx", got)
	}
	if err := f.Commit(path); err == nil {
		t.Error("Commit after Cleanup succeeded")
	}
	checkFile(t, path, []byte("old"), 0o644)
}

// TestCommitOtherDir refuses a rename out of the file's directory, where
// it might not be atomic, and removes the temporary file.
func TestCommitOtherDir(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	f, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	if err := f.Commit(filepath.Join(other, "x")); err == nil {
		t.Fatal("commit into another directory succeeded")
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v, want nothing", got)
	}
	if got := names(t, other); len(got) != 0 {
		t.Errorf("other dir holds %v, want nothing", got)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: got %v, want ErrNotExist", err)
	}
}

func TestIsTemp(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{".tmp-rec.json-123", true},
		{".tmp-456", true},
		{"rec.json", false},
		{"sha256-ab", false},
		{".pull-1", false},
	} {
		if got := IsTemp(tc.name); got != tc.want {
			t.Errorf("IsTemp(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
