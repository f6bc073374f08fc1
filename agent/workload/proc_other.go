//go:build !linux

package workload

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Off Linux there are no pidfds, /proc start times or boot ids, so the
// supervisor cannot tell its processes apart from recycled pids: it refuses
// to start processes (functions and the rest of the package still build).

var errPlatform = errors.New("workload: processes are supervised on linux only")

func startProcess(path string, argv, env []string, dir string, outPaths [2]string, files bool, emit [2]func([]byte), backlog int64) (*proc, error) {
	return nil, errPlatform
}

func adoptProcess(pid int, start uint64, outPaths [2]string, emit [2]func([]byte), backlog int64) (*proc, bool) {
	return nil, false
}

func punchSupported(dir string) bool { return false }

func (p *proc) stopTails(drain time.Duration) {}

func procStart(pid int) (uint64, error) { return 0, errPlatform }

func bootID() string { return "" }

func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	return syscall.Kill(-pid, sig)
}

func anyPending(fs []*os.File) bool { return false }

// GroupsUsage needs /proc.
func GroupsUsage(pgids ...int) (map[int]Usage, error) { return nil, errPlatform }

func outputHolder(outs [2]string) (int, uint64, bool) { return 0, 0, false }

func startTime(ticks uint64) time.Time { return time.Time{} }
