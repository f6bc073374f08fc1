package artifact

import (
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelARM is the ARM architecture level the kernel reports for this CPU
// ("6", "7") or "" when it cannot tell. The agent's own GOARM says nothing
// about the machine (an armv6 agent runs fine on an ARMv7 Pi), so it is read
// from uname.
func kernelARM() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	m := unix.ByteSliceToString(u.Machine[:])
	switch {
	case strings.HasPrefix(m, "armv6"):
		return "6"
	case strings.HasPrefix(m, "armv7"), strings.HasPrefix(m, "armv8"), m == "aarch64":
		// ARMv8 in AArch32 state runs ARMv7 code.
		return "7"
	case strings.HasPrefix(m, "armv5"):
		return "5"
	}
	return ""
}

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk now, and waits for the window before it to be written. Buffered
// pulls call it as they go, so the final fsync has little left to do and
// dirty pages of a big binary never pile up in a small board's RAM.
func startWriteback(f *os.File, off, n int64) {
	fd := int(f.Fd())
	unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	if off >= n {
		unix.SyncFileRange(fd, off-n, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	}
}

// preallocate reserves size bytes for f, so that a disk without room for
// the file fails now rather than after the download. Only a lack of room
// is an error: a filesystem without fallocate just goes without.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EFBIG) {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

// openDirect opens f's file again for O_DIRECT writes and returns the
// alignment they need, or nil when the filesystem does not do direct I/O
// or lives in RAM (tmpfs takes O_DIRECT but copies into its pages anyway,
// so the writer goroutine would only add a hop). The alignment is what
// statx reports (Linux 6.1+), and at least a 4 KiB page, which also covers
// 512-byte sectors.
func openDirect(f *os.File) (*os.File, int) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || uint32(fs.Type) == unix.TMPFS_MAGIC || uint32(fs.Type) == unix.RAMFS_MAGIC {
		return nil, 0
	}
	align := 4096
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st); err == nil && st.Mask&unix.STATX_DIOALIGN != 0 {
		if st.Dio_offset_align == 0 || st.Dio_mem_align == 0 {
			return nil, 0
		}
		align = max(align, int(st.Dio_offset_align), int(st.Dio_mem_align))
	}
	if align&(align-1) != 0 {
		return nil, 0
	}
	d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil, 0
	}
	return d, align
}

// writevAt writes bufs at off, several buffers per system call.
func writevAt(f *os.File, bufs [][]byte, off int64) (int64, error) {
	return writevWith(unix.Pwritev, f, bufs, off)
}

// writevWith is writevAt over a given pwritev, so that tests can make the
// kernel write short or refuse.
func writevWith(pwritev func(fd int, iovs [][]byte, off int64) (int, error), f *os.File, bufs [][]byte, off int64) (int64, error) {
	fd := int(f.Fd())
	// A short write advances the slices below; the caller's must stay as
	// they were, since it accounts for what was written by itself.
	bufs = append([][]byte(nil), bufs...)
	var done int64
	for len(bufs) > 0 {
		n, err := pwritev(fd, bufs, off+done)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
		}
		if n == 0 {
			return done, io.ErrShortWrite
		}
		done += int64(n)
		bufs = skipBytes(bufs, int64(n))
	}
	return done, nil
}
