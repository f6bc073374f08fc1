//go:build !linux

package artifact

import "os"

// kernelARM is unknown off Linux: Go binaries are then not checked for GOARM.
func kernelARM() string { return "" }

// startWriteback is a no-op off Linux: the final fsync does all the work.
func startWriteback(f *os.File, off, n int64) {}

// preallocate is a no-op off Linux: a full disk shows in the writes.
func preallocate(f *os.File, size int64) error { return nil }

// openDirect finds no direct I/O off Linux: writes go through the cache.
func openDirect(f *os.File) (*os.File, int) { return nil, 0 }

// writevAt writes bufs at off, one after the other.
func writevAt(f *os.File, bufs [][]byte, off int64) (int64, error) {
	var done int64
	for _, b := range bufs {
		n, err := f.WriteAt(b, off+done)
		done += int64(n)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
