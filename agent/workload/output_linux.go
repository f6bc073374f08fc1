package workload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A workload's stdout and stderr are regular files in the state dir,
// <id>.stdout and <id>.stderr, which the process appends to. A write to a
// file never waits for a reader, so a workload never stalls on its output
// whatever the agent does: read slowly, wait for NATS, not run at all (a
// crash, an upgrade, systemd's RestartSec). The supervisor tails the files,
// woken by inotify, and frees what it has delivered by punching a hole
// over it: the size grows, the blocks on disk do not, and where the data
// begins is where the next reader, after an agent restart, goes on.
//
// While no agent runs, the files grow at the rate the workload writes; the
// next reader delivers at most Opts.OutputBacklog of it (the newest) and
// skips the rest. A filesystem that cannot punch holes gets named pipes
// instead: writers then block once 64 KiB are unread.

const (
	// tailChunk is what one read of an output file takes; stdout and
	// stderr take turns, so a flood on one does not hold up the other.
	tailChunk = 16 << 10
	// punchEvery: delivered output is freed in steps of this much (and
	// exactly when a reader stops, so the next one starts at the byte).
	punchEvery = 256 << 10
	// tailPoll is how often output files are read when inotify is not
	// available (no instance left for the user).
	tailPoll = 100 * time.Millisecond
)

// tail delivers one output file line by line.
type tail struct {
	f       *os.File // read-write: punching a hole needs it
	emit    func([]byte)
	off     int64  // the first byte not delivered
	buf     []byte // bytes from off on that were read: a line not complete yet
	chunk   []byte
	punched int64
}

// openOutput creates (or reopens) an output file and returns the agent's
// end and the child's, opened for appending. A named pipe of an older
// agent at the path is replaced.
func openOutput(path string) (agentEnd, childEnd *os.File, err error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("workload: output file: %w", err)
		}
	}
	childEnd, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: output file: %w", err)
	}
	agentEnd, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		childEnd.Close()
		return nil, nil, fmt.Errorf("workload: output file: %w", err)
	}
	return agentEnd, childEnd, nil
}

// newTail starts reading f where the last reader stopped: the first byte
// of data after the hole punched over what it delivered, past the zeros
// punching leaves in the block it stopped in. More than backlog bytes
// after that are skipped, up to a line start; skipped says how many.
func newTail(f *os.File, emit func([]byte), backlog int64) (t *tail, skipped int64) {
	t = &tail{f: f, emit: emit, chunk: make([]byte, tailChunk)}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	t.off = size
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if off, err := unix.Seek(int(fd), 0, unix.SEEK_DATA); err == nil {
				t.off = off
			}
		})
	}
	t.off += t.skip(func(b byte) bool { return b == 0 }, size)
	if size-t.off > backlog {
		from := size - backlog
		// Go on at the start of a line.
		from += t.skipFrom(from, func(b byte) bool { return b != '\n' }, size) + 1
		skipped, t.off = min(from, size)-t.off, min(from, size)
	}
	t.punched = -1
	t.punch()
	return t, skipped
}

func (t *tail) skip(while func(byte) bool, size int64) int64 { return t.skipFrom(t.off, while, size) }

// skipFrom counts the bytes from off on for which while holds.
func (t *tail) skipFrom(off int64, while func(byte) bool, size int64) int64 {
	n := int64(0)
	for off+n < size {
		got, err := t.f.ReadAt(t.chunk, off+n)
		for _, b := range t.chunk[:got] {
			if !while(b) {
				return n
			}
			n++
		}
		if err != nil || got == 0 {
			break
		}
	}
	return n
}

// read takes what is there (up to one chunk), delivers the complete lines
// (a line longer than lineMax in lineMax pieces) and reports whether there
// may be more.
func (t *tail) read() (more bool) {
	n, err := t.f.ReadAt(t.chunk, t.off+int64(len(t.buf)))
	if n == 0 {
		return false
	}
	t.buf = append(t.buf, t.chunk[:n]...)
	used := 0
	for {
		rest := t.buf[used:]
		i := bytes.IndexByte(rest, '\n')
		switch {
		case i >= 0 && i <= lineMax:
			t.emit(append([]byte(nil), rest[:i]...))
			used += i + 1
			continue
		case len(rest) >= lineMax:
			t.emit(append([]byte(nil), rest[:lineMax]...))
			used += lineMax
			continue
		}
		break
	}
	t.buf = append(t.buf[:0], t.buf[used:]...)
	t.off += int64(used)
	if t.off-t.punched >= punchEvery {
		t.punch()
	}
	return n == len(t.chunk) && err == nil
}

// flush delivers a last line without its newline (the process is gone).
func (t *tail) flush() {
	if len(t.buf) > 0 {
		t.emit(append([]byte(nil), t.buf...))
		t.off += int64(len(t.buf))
		t.buf = t.buf[:0]
	}
}

// punch frees what has been delivered.
func (t *tail) punch() {
	if t.off <= t.punched {
		return
	}
	if t.off > 0 {
		rc, err := t.f.SyscallConn()
		if err != nil {
			return
		}
		rc.Control(func(fd uintptr) {
			unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, t.off)
		})
	}
	t.punched = t.off
}

// punchSupported reports whether files in dir can have holes punched.
func punchSupported(dir string) bool {
	f, err := os.CreateTemp(dir, ".punch-*")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 8192)); err != nil {
		return false
	}
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096) == nil
}

// startTails delivers the output files of p on one goroutine, woken by
// inotify (or every tailPoll without it), until release.
func (p *proc) startTails(ts []*tail, paths []string) {
	p.tailQuit, p.tailDone = make(chan struct{}), make(chan struct{})
	wake := newWake(paths)
	p.tailWake = wake
	go func() {
		defer close(p.tailDone)
		defer func() {
			for _, t := range ts {
				t.punch()
				t.f.Close()
			}
			if wake != nil {
				wake.Close()
			}
		}()
		ev := make([]byte, 4096)
		for {
			more := false
			for _, t := range ts {
				if t.read() {
					more = true
				}
			}
			select {
			case <-p.tailQuit:
				for more && time.Now().Before(p.tailUntil) {
					more = false
					for _, t := range ts {
						if t.read() {
							more = true
						}
					}
				}
				if p.tailFlush {
					for _, t := range ts {
						t.flush()
					}
				}
				return
			default:
			}
			if more {
				continue
			}
			if wake != nil {
				if _, err := wake.Read(ev); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					wake.Close()
					wake = nil
				}
				continue
			}
			tm := time.NewTimer(tailPoll)
			select {
			case <-p.tailQuit:
			case <-tm.C:
			}
			tm.Stop()
		}
	}()
}

// stopTails ends the tail goroutine. drain > 0: the process is gone, so
// what is in the files is read (for up to drain) and delivered, a last
// line without newline included; 0: it stops at once, leaving the rest to
// the next reader.
func (p *proc) stopTails(drain time.Duration) {
	if p.tailQuit == nil {
		return
	}
	p.tailUntil, p.tailFlush = time.Now().Add(drain), drain > 0
	close(p.tailQuit)
	if p.tailWake != nil {
		p.tailWake.SetReadDeadline(time.Now())
	}
	<-p.tailDone
	p.tailQuit = nil
}

// newWake is an inotify instance watching paths for writes, nil when the
// user has none left.
func newWake(paths []string) *os.File {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	for _, p := range paths {
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil
		}
	}
	return os.NewFile(uintptr(fd), "inotify")
}
