package workload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startProcess runs path with its stdout/stderr on outPaths: output files
// (files) or named pipes, created if missing. It returns the process with
// its identity.
func startProcess(path string, argv, env []string, dir string, outPaths [2]string, files bool, emit [2]func([]byte), backlog int64) (*proc, error) {
	p := &proc{child: true, done: make(chan struct{})}
	var agentEnds, childEnds [2]*os.File
	defer func() {
		for _, f := range childEnds {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, fp := range outPaths {
		var err error
		if files {
			agentEnds[i], childEnds[i], err = openOutput(fp)
		} else {
			agentEnds[i], childEnds[i], err = openFIFO(fp)
		}
		if err != nil {
			for _, f := range agentEnds {
				if f != nil {
					f.Close()
				}
			}
			return nil, err
		}
	}
	cmd := commandFor(path, argv, env, dir)
	cmd.Stdout, cmd.Stderr = childEnds[0], childEnds[1]
	if err := cmd.Start(); err != nil {
		for _, f := range agentEnds {
			f.Close()
		}
		return nil, fmt.Errorf("workload: start %s: %w", path, err)
	}
	p.pid = cmd.Process.Pid
	// We reap it ourselves through a pidfd (see waitPid), so that a
	// supervisor that is closed can stop waiting.
	cmd.Process.Release()
	p.start, _ = procStart(p.pid)
	if files {
		var ts []*tail
		for i, f := range agentEnds {
			t, skipped := newTail(f, emit[i], backlog)
			ts, p.skipped[i] = append(ts, t), skipped
		}
		p.startTails(ts, outPaths[:])
	} else {
		p.outs = agentEnds[:]
		for i, f := range p.outs {
			p.pumps.Add(1)
			go p.pump(f, emit[i])
		}
	}
	p.waiter = newPidWaiter(p)
	return p, nil
}

// adoptProcess takes over a process a previous agent started, if pid still
// is that process (same boot, same start time) and not a zombie, with its
// output: files are read on from where the last agent stopped (at most
// backlog of what was written since), named pipes of an older agent as
// before.
func adoptProcess(pid int, start uint64, outPaths [2]string, emit [2]func([]byte), backlog int64) (*proc, bool) {
	if pid <= 0 {
		return nil, false
	}
	got, err := procStart(pid)
	if err != nil || got != start {
		return nil, false
	}
	p := &proc{pid: pid, start: start, code: -1, done: make(chan struct{})}
	var ts []*tail
	var tailPaths []string
	for i, fp := range outPaths {
		fi, err := os.Lstat(fp)
		if err != nil {
			continue // logs are lost, the process is not
		}
		if fi.Mode().IsRegular() {
			f, err := os.OpenFile(fp, os.O_RDWR, 0)
			if err != nil {
				continue
			}
			t, skipped := newTail(f, emit[i], backlog)
			ts, tailPaths, p.skipped[i] = append(ts, t), append(tailPaths, fp), skipped
			continue
		}
		agentEnd, childEnd, err := openFIFO(fp)
		if err != nil {
			continue
		}
		childEnd.Close()
		p.outs = append(p.outs, agentEnd)
		p.pumps.Add(1)
		go p.pump(agentEnd, emit[i])
	}
	if len(ts) > 0 {
		p.startTails(ts, tailPaths)
	}
	p.waiter = newPidWaiter(p)
	return p, true
}

// openFIFO makes (if needed) and opens a named pipe twice read-write: the
// agent's end (pollable, so reads take deadlines) and the child's end.
func openFIFO(path string) (agentEnd, childEnd *os.File, err error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("workload: output pipe: %w", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, nil, fmt.Errorf("workload: output pipe %s: not a named pipe", path)
	}
	agentEnd, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: output pipe: %w", err)
	}
	childEnd, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		agentEnd.Close()
		return nil, nil, fmt.Errorf("workload: output pipe: %w", err)
	}
	return agentEnd, childEnd, nil
}

// pidfdWaiter waits on a pidfd through the runtime's poller, so stop (a
// read deadline) interrupts it without a polling loop.
type pidfdWaiter struct {
	p *proc
	f *os.File
}

// pollWaiter is the fallback for kernels without pidfd_open (before 5.3).
type pollWaiter struct {
	p    *proc
	quit chan struct{}
}

func newPidWaiter(p *proc) pidWaiter {
	fd, err := unix.PidfdOpen(p.pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return &pollWaiter{p: p, quit: make(chan struct{})}
	}
	return &pidfdWaiter{p: p, f: os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(p.pid))}
}

// reaped reports whether the process has ended, reaping it (and recording
// its status) when it is our child.
func (p *proc) reaped() bool {
	if p.child {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
		if wpid == p.pid {
			p.code, p.why = exitInfo(syscall.WaitStatus(ws))
			return true
		}
		if errors.Is(err, unix.ECHILD) {
			p.code, p.why = -1, "exit status unknown"
			return true
		}
		return false
	}
	got, err := procStart(p.pid)
	if err != nil || got != p.start {
		p.code, p.why = -1, "exit status unknown (process adopted after an agent restart)"
		return true
	}
	return false
}

func (w *pidfdWaiter) wait() bool {
	defer w.f.Close()
	rc, err := w.f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(uintptr) bool {
		exited = w.p.reaped()
		return exited
	})
	return err == nil && exited
}

func (w *pidfdWaiter) stop() { w.f.SetReadDeadline(time.Now()) }

func (w *pollWaiter) wait() bool {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if w.p.reaped() {
			return true
		}
		select {
		case <-w.quit:
			return false
		case <-t.C:
		}
	}
}

func (w *pollWaiter) stop() { close(w.quit) }

// procStart reads the start time of pid (field 22 of /proc/pid/stat, clock
// ticks since boot). A zombie counts as gone.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("workload: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("workload: malformed /proc stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, errors.New("workload: process is a zombie")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// bootID names this boot: pids and start times from another boot mean
// nothing (a power cut killed every workload).
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// signalGroup signals the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// anyPending reports whether any of the pipes has unread bytes.
func anyPending(fs []*os.File) bool {
	for _, f := range fs {
		rc, err := f.SyscallConn()
		if err != nil {
			continue
		}
		n := 0
		// TIOCINQ is FIONREAD: bytes waiting in the pipe.
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		if n > 0 {
			return true
		}
	}
	return false
}
