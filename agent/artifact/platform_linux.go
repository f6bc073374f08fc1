package artifact

import (
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
// disk now, and waits for the window before it to be written. Pulls call it
// as they go, so the final fsync has little left to do and dirty pages of a
// big binary never pile up in a small board's RAM.
func startWriteback(f *os.File, off, n int64) {
	fd := int(f.Fd())
	unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	if off >= n {
		unix.SyncFileRange(fd, off-n, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	}
}
