// Package atomicfile writes files that survive a power cut: whoever opens
// the name next, a reader now or the agent after the next boot, finds the
// old content or the new one, never a mix, a truncated file or nothing.
//
// Every write goes the same way: a temporary file in the destination's
// directory (a rename only replaces atomically within one filesystem),
// write, fsync, rename over the destination, fsync of the directory (so the
// rename itself is on disk). Any failure before the rename removes the
// temporary file and leaves the destination as it was.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempPrefix starts the name of every temporary file this package makes.
// A crash between create and rename leaves one behind; IsTemp tells the
// owners of a directory which names to sweep.
const tempPrefix = ".tmp-"

// IsTemp reports whether name (a base name) is a temporary file of this
// package: one that a crash left behind, or a write still in progress.
func IsTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// WriteFile replaces path with data, mode perm. The mode is set exactly (the
// umask does not apply), and the file is owned by the caller: an existing
// file's mode and owner are not kept. On error path is left as it was,
// unless the error says only the directory sync failed (then the new
// content is in place, but may not survive a power cut).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(osFS{}, path, data, perm)
}

func writeFile(fs fsys, path string, data []byte, perm os.FileMode) error {
	f, err := create(fs, filepath.Dir(path), filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	defer f.Cleanup()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	return f.Commit(path)
}

// File is a temporary file that becomes a named file in its directory on
// Commit. It is for content that is streamed, or whose name is known only
// once it is written (a digest). Write to the embedded *os.File, set its
// mode and owner as needed, then Commit; defer Cleanup for every other
// path. Do not Close it: Commit closes it.
type File struct {
	*os.File
	dir  string
	fs   fsys
	done bool // committed or cleaned up: nothing left to remove
}

// Create makes a temporary file, mode 0600, in dir, the directory its
// final name will be in.
func Create(dir string) (*File, error) {
	f, err := create(osFS{}, dir, "")
	if err != nil {
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	return f, nil
}

func create(fs fsys, dir, hint string) (*File, error) {
	f, err := os.CreateTemp(dir, tempPrefix+hint+"*")
	if err != nil {
		return nil, err
	}
	return &File{File: f, dir: filepath.Clean(dir), fs: fs}, nil
}

// Commit syncs and closes the file, renames it to path, which must be in
// the directory given to Create, and syncs that directory. When Commit
// fails before the rename, the temporary file is removed and path is left
// as it was.
func (f *File) Commit(path string) error {
	if f.done {
		return fmt.Errorf("atomicfile: %s: commit of a file already committed or cleaned up", path)
	}
	if filepath.Dir(filepath.Clean(path)) != f.dir {
		f.Cleanup()
		return fmt.Errorf("atomicfile: %s: not in %s, where the file was written (a rename to another directory may not be atomic)", path, f.dir)
	}
	err := f.fs.syncFile(f.File)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.fs.rename(f.Name(), path)
	}
	if err != nil {
		f.Cleanup()
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	f.done = true
	if err := f.fs.syncDir(f.dir); err != nil {
		return fmt.Errorf("atomicfile: %s: written, but its directory was not synced, so a power cut may undo it: %w", path, err)
	}
	return nil
}

// Cleanup closes and removes the temporary file unless Commit renamed it.
// It may be called any number of times, and after Commit.
func (f *File) Cleanup() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// SyncDir makes the entries of dir durable: renames, creations and
// removals in it. Writes through this package do it themselves; callers
// need it after removing files whose absence must survive a power cut.
func SyncDir(dir string) error {
	if err := (osFS{}).syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return nil
}

// fsys is the system calls whose order makes a write durable. Tests
// substitute it to see that order, and to fail a step.
type fsys interface {
	syncFile(f *os.File) error
	rename(oldpath, newpath string) error
	syncDir(dir string) error
}

type osFS struct{}

func (osFS) syncFile(f *os.File) error            { return f.Sync() }
func (osFS) rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

func (osFS) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems (FUSE and network ones among them) cannot sync a
	// directory and say EINVAL: their renames are as durable as they make
	// them, and there is nothing more to do.
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}
