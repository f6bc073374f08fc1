package serialport

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// Port is an open serial line.
//
// Read returns ErrTimeout (and no data) when nothing arrived within the read
// timeout, and ErrClosed once Close has been called, including for a Read
// that was blocked at the time. Close is idempotent and safe to call from any
// goroutine.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds how long Read waits for the first byte;
	// d <= 0 means wait until data or Close.
	SetReadTimeout(d time.Duration) error
	// ResetInput discards bytes received but not yet read.
	ResetInput() error
}

var (
	// ErrTimeout is returned by Read when the read timeout passed without data.
	ErrTimeout = errors.New("serialport: read timeout")
	// ErrClosed is returned by calls on a port after Close.
	ErrClosed = errors.New("serialport: port closed")
	// ErrDisconnected is returned when the device went away under an open
	// port (a USB adapter unplugged, a pseudo-terminal's other side
	// closed). The port must be closed and opened again.
	ErrDisconnected = errors.New("serialport: device disconnected")
)

// DefaultBaud is the rate Open uses when baud is 0 (the REYAX default).
const DefaultBaud = 115200

// Open opens the serial device at path (for example /dev/serial0 or a
// pseudo-terminal) at baud, 8 data bits, no parity, one stop bit, with
// exclusive access. baud 0 means DefaultBaud.
func Open(path string, baud int) (Port, error) {
	if baud == 0 {
		baud = DefaultBaud
	}
	if baud < 0 {
		return nil, fmt.Errorf("serialport: %s: invalid baud rate %d", path, baud)
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("serialport: open %s at %d baud: %w", path, baud, err)
	}
	return &bugst{p: p, name: path}, nil
}

type bugst struct {
	p      serial.Port
	name   string
	closed atomic.Bool
	// wmu keeps Close from releasing the descriptor under a Write:
	// go.bug.st writes to the raw fd, which the kernel may hand to another
	// file once closed.
	wmu sync.RWMutex
}

func (b *bugst) String() string { return b.name }

func (b *bugst) Read(buf []byte) (int, error) {
	n, err := b.p.Read(buf)
	switch {
	case err != nil:
		return n, b.mapErr(err)
	case n == 0 && len(buf) > 0:
		// go.bug.st/serial reports an expired timeout as (0, nil).
		return 0, ErrTimeout
	}
	return n, nil
}

func (b *bugst) Write(buf []byte) (int, error) {
	b.wmu.RLock()
	defer b.wmu.RUnlock()
	if b.closed.Load() {
		return 0, ErrClosed
	}
	n, err := b.p.Write(buf)
	if err != nil {
		return n, b.mapErr(err)
	}
	return n, nil
}

func (b *bugst) SetReadTimeout(d time.Duration) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if d <= 0 {
		d = serial.NoTimeout
	}
	return b.mapErr(b.p.SetReadTimeout(d))
}

func (b *bugst) ResetInput() error {
	b.wmu.RLock()
	defer b.wmu.RUnlock()
	if b.closed.Load() {
		return ErrClosed
	}
	return b.mapErr(b.p.ResetInputBuffer())
}

func (b *bugst) Close() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.closed.Store(true)
	if err := b.p.Close(); err != nil {
		return fmt.Errorf("serialport: close %s: %w", b.name, err)
	}
	return nil
}

func (b *bugst) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
		// go.bug.st reports a hang-up the same way as our own Close.
		if b.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %s", ErrDisconnected, b.name)
	}
	if errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%w: %s: %v", ErrDisconnected, b.name, err)
	}
	return fmt.Errorf("serialport: %s: %w", b.name, err)
}
