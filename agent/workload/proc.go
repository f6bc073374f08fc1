package workload

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one running process of a service or job, started by this
// supervisor or adopted after an agent restart.
//
// Its stdout and stderr are files in the state dir that outlive the agent
// (see output_linux.go), so the next agent goes on reading them. A process
// adopted from an older agent, or started on a filesystem that cannot
// punch holes, has named pipes instead: the process holds its ends open
// read-write, so when the agent exits nobody's write fails with SIGPIPE
// (it blocks once 64 KiB are buffered), and the next agent reopens them.
type proc struct {
	pid   int
	start uint64 // kernel start time in clock ticks since boot: the pid's identity
	child bool   // ours to reap (and so we learn the exit status)

	done chan struct{} // closed when the process has exited
	code int           // exit code, -1 when unknown (adopted) ; 128+n for signal n
	why  string        // "exit status 3", "killed by signal 9", ...

	waiter pidWaiter
	outs   []*os.File // named pipes, read by pump
	pumps  sync.WaitGroup

	// Output files, read by one tail goroutine (startTails, stopTails).
	tailQuit, tailDone chan struct{}
	tailWake           *os.File // inotify; nil: polled
	tailUntil          time.Time
	tailFlush          bool
	// skipped is how much output written while no agent read it was left
	// out on adoption (beyond the backlog), per stream.
	skipped [2]int64
}

// pidWaiter waits for a process to end; stop makes wait return early.
type pidWaiter interface {
	wait() (exited bool)
	stop()
}

const lineMax = 64 << 10

// pump streams one output pipe to the events sink line by line; a line
// longer than lineMax goes out in lineMax pieces.
func (p *proc) pump(f *os.File, emit func([]byte)) {
	defer p.pumps.Done()
	r := bufio.NewReaderSize(f, lineMax)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			emit(append([]byte(nil), line...))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// kill ends a process this supervisor has just started, with its whole
// group, and reaps it: for a start refused after the spawn.
func (p *proc) kill() {
	signalGroup(p.pid, syscall.SIGKILL)
	p.waiter.wait()
	p.release(0)
}

// release stops reading the output. drain: the process is gone; read what
// is left for up to that long first (the pipes never report EOF: this
// side holds them open read-write). 0: stop at once (the agent goes away;
// the next one reads on).
func (p *proc) release(drain time.Duration) {
	p.stopTails(drain)
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && anyPending(p.outs) {
		time.Sleep(time.Millisecond)
	}
	for _, f := range p.outs {
		f.SetReadDeadline(time.Now())
	}
	p.pumps.Wait()
	for _, f := range p.outs {
		f.Close()
	}
	p.outs = nil
}

// exitInfo turns a wait status into an exit code and a phrase.
func exitInfo(ws syscall.WaitStatus) (int, string) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return 128 + int(ws.Signal()), fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return -1, "ended"
}

// commandFor builds the exec.Cmd of one run: own process group, exactly
// the given environment, no stdin.
func commandFor(path string, argv, env []string, dir string) *exec.Cmd {
	return &exec.Cmd{
		Path:        path,
		Args:        append([]string{path}, argv...),
		Env:         env,
		Dir:         dir,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
}
