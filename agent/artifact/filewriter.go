package artifact

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// directStage is what a direct-I/O write stages before it goes to the
// device: large enough for long sequential writes (an SD card wants them),
// small next to the pull window (directStages of them are on the heap). A
// file smaller than this is written through the page cache.
const directStage = 512 << 10

// writeBehindWindow is how much a buffered write puts in the page cache
// before it starts that window's writeback.
const writeBehindWindow = 8 << 20

// directStages is how many staging buffers a direct write has: one is
// filled while the other is on its way to the device.
const directStages = 2

// directQueue is how many pieces may wait for the writer goroutine.
const directQueue = 8

// fileWriter writes a download into its temporary file at increasing
// offsets.
//
// Where the filesystem takes O_DIRECT (on Linux; ext4 does, as do most
// local filesystems), whole blocks go straight from memory to the device.
// A pull then costs no page-cache copy, no delayed allocation per page and
// no writeback later: on the 2-core machine the benchmark runs on, that
// was a quarter of the pull's CPU time, and the final fsync only has the
// metadata left. It also leaves nothing dirty in the RAM of a 512 MB
// board. The price is that the binary is not in the page cache when it
// first runs: the kernel reads the pages it touches from the disk.
//
// O_DIRECT needs memory and lengths aligned to the disk's blocks. A chunk
// of an object is its own allocation from the nats.go parser, which the Go
// heap places on a page boundary, and the default 128 KiB is a whole number
// of blocks; such chunks are written as they are, several per pwritev,
// without a copy (when the caller promises not to reuse them, see Keep).
// Anything else is copied into reused, aligned staging buffers. A direct
// write returns only when the device has the data, so a goroutine of its
// own does them while the next chunks arrive. The last, partial block is
// written through the page cache, and so is everything from the first
// direct write the filesystem refuses.
//
// Buffered writes start writeback every writeBehindWindow and wait for the
// window before, so their final fsync has little left too.
type fileWriter struct {
	f       *os.File // the temporary file
	off     int64    // bytes written to the file
	flushed int64    // buffered writes: end of the range under writeback

	// Direct writes. The fields above and direct and bypass belong to the
	// writer goroutine while it runs.
	direct  *os.File // the same file opened with O_DIRECT; nil: buffered
	align   int      // block and memory alignment of direct writes
	bypass  bool     // whole blocks bypassed the page cache throughout
	keep    bool     // written slices are never modified: no copy needed
	cur     []byte   // the stage being filled; nil until one is needed
	fill    int      // bytes in cur
	stages  int      // staging buffers allocated
	free    chan []byte
	full    chan piece
	done    chan struct{} // closed when the writer goroutine has ended
	mu      sync.Mutex
	werr    error       // the writer goroutine's first error, under mu
	stop    atomic.Bool // the pull failed: write nothing more
	started bool        // the writer goroutine runs (until done)
	ended   bool        // full is closed
}

// piece is what the writer goroutine writes next: a staging buffer, which
// goes back to free, or a caller's slice.
type piece struct {
	b      []byte
	staged bool
}

// newFileWriter writes to f, which is empty. size is what is expected (-1:
// unknown); it is preallocated where the filesystem can, so that a disk
// too full for it fails before the download, not at the end of it.
func newFileWriter(f *os.File, size int64) (*fileWriter, error) {
	w := &fileWriter{f: f}
	if size > 0 {
		if err := preallocate(f, size); err != nil {
			return nil, err
		}
	}
	if size < directStage {
		return w, nil
	}
	d, align := openDirect(f)
	if d == nil {
		return w, nil
	}
	if align > directStage {
		d.Close()
		return w, nil
	}
	w.direct, w.align, w.bypass = d, align, true
	w.free = make(chan []byte, directStages)
	w.full = make(chan piece, directQueue)
	w.done = make(chan struct{})
	w.started = true
	go w.writePieces()
	return w, nil
}

// Keep promises that slices passed to Write are never modified afterwards,
// so that aligned ones can be written without a copy.
func (w *fileWriter) Keep() { w.keep = true }

// Direct reports whether whole blocks went straight to the device. Valid
// after Close.
func (w *fileWriter) Direct() bool { return w.bypass }

func (w *fileWriter) Write(p []byte) (int, error) {
	if !w.started {
		return w.writeBuffered(p)
	}
	if w.keep && w.fill == 0 && w.aligned(p) {
		w.full <- piece{b: p}
		return len(p), w.writeErr()
	}
	n := 0
	for len(p) > 0 {
		if w.cur == nil {
			if w.stages < directStages {
				w.stages++
				w.cur = alignedBuffer(directStage, w.align)
			} else {
				w.cur = <-w.free
			}
			if err := w.writeErr(); err != nil {
				return n, err
			}
		}
		c := copy(w.cur[w.fill:], p)
		w.fill += c
		n += c
		p = p[c:]
		if w.fill == len(w.cur) {
			w.full <- piece{b: w.cur, staged: true}
			w.cur, w.fill = nil, 0
		}
	}
	return n, nil
}

// aligned reports whether p can be written directly as it is.
func (w *fileWriter) aligned(p []byte) bool {
	return len(p) > 0 && len(p)&(w.align-1) == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))&uintptr(w.align-1) == 0
}

func (w *fileWriter) writeBuffered(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	if w.off-w.flushed >= writeBehindWindow {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}

// writePieces is the writer goroutine of direct writes. Pieces that are
// already queued go to the device together, up to a stage's worth.
func (w *fileWriter) writePieces() {
	defer close(w.done)
	var batch [][]byte
	var staged [directQueue][]byte
	for p, ok := <-w.full; ok; {
		batch = append(batch[:0], p.b)
		size, nstaged := len(p.b), 0
		if p.staged {
			staged[0], nstaged = p.b, 1
		}
		p, ok = piece{}, false
	gather:
		for size < directStage && len(batch) < directQueue {
			select {
			case q, more := <-w.full:
				if !more {
					break gather
				}
				if q.staged && len(q.b)&(w.align-1) != 0 {
					// The end of the file: after this batch.
					p, ok = q, true
					break gather
				}
				batch, size = append(batch, q.b), size+len(q.b)
				if q.staged {
					staged[nstaged], nstaged = q.b, nstaged+1
				}
			default:
				break gather
			}
		}
		if w.writeErr() == nil && !w.stop.Load() {
			w.setErr(w.writeBatch(batch))
		}
		for i := range nstaged {
			w.free <- staged[i][:cap(staged[i])]
			staged[i] = nil
		}
		clear(batch)
		if !ok {
			p, ok = <-w.full
		}
	}
	if w.direct != nil {
		w.setErr(w.direct.Close())
		w.direct = nil
	}
}
func (w *fileWriter) writeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// setErr keeps the first error.
func (w *fileWriter) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.werr == nil {
		w.werr = err
	}
}

// writeBatch writes bufs at the end of the file: whole blocks directly,
// a partial one (only the end of the file has it) through the page cache.
func (w *fileWriter) writeBatch(bufs [][]byte) error {
	var tail []byte
	if w.direct != nil {
		last := bufs[len(bufs)-1]
		whole := len(last) &^ (w.align - 1)
		tail, bufs[len(bufs)-1] = last[whole:], last[:whole]
		if whole == 0 {
			bufs = bufs[:len(bufs)-1]
		}
		n, err := writevAt(w.direct, bufs, w.off)
		w.off += n
		bufs = skipBytes(bufs, n)
		switch {
		case errors.Is(err, syscall.EINVAL):
			// The filesystem takes O_DIRECT opens but not these
			// writes (an alignment it did not report): the page
			// cache takes over, from the same offset.
			w.direct.Close()
			w.direct, w.bypass = nil, false
		case err != nil:
			return err
		}
	}
	for _, b := range bufs {
		if _, err := w.writeBuffered(b); err != nil {
			return err
		}
	}
	if len(tail) > 0 {
		_, err := w.writeBuffered(tail)
		return err
	}
	return nil
}

// skipBytes drops the first n bytes of bufs.
func skipBytes(bufs [][]byte, n int64) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if l := int64(len(bufs[0])); l <= n {
			n -= l
			bufs = bufs[1:]
			continue
		}
		bufs[0] = bufs[0][n:]
		n = 0
	}
	return bufs
}

// Close writes what is staged and waits for the writes. It does not sync
// or close f.
func (w *fileWriter) Close() error {
	if !w.started {
		return nil
	}
	if w.ended {
		return w.writeErr()
	}
	if w.fill > 0 {
		w.full <- piece{b: w.cur[:w.fill], staged: true}
		w.cur, w.fill = nil, 0
	}
	w.ended = true
	close(w.full)
	<-w.done
	return w.writeErr()
}

// release ends the writer goroutine of a write that failed, without
// writing what is staged.
func (w *fileWriter) release() {
	if !w.started || w.ended {
		return
	}
	w.stop.Store(true)
	w.ended = true
	close(w.full)
	<-w.done
}

// alignedBuffer is a heap buffer of n bytes whose address is a multiple of
// align (a power of two), as O_DIRECT needs. The Go heap does not move
// objects, so the alignment holds for the buffer's life.
func alignedBuffer(n, align int) []byte {
	b := make([]byte, n+align)
	skip := (align - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&uintptr(align-1))) & (align - 1)
	return b[skip : skip+n : skip+n]
}
