package rylrsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// HiddenBytes is the per-frame overhead the emulator puts on air, as the
// real module does.
const HiddenBytes = 8

// DefaultVersion is what AT+VER? answers unless Opts.Version is set.
const DefaultVersion = "RYLR998_REYAX_V1.2.2"

// Opts configures an emulated module. The zero value is a factory-fresh
// RYLR998 at 115200 baud, text-only, with no air (frames vanish).
type Opts struct {
	// Baud is the UART rate whose byte time the emulator spends on every
	// command and answer; 0 means 115200.
	Baud int
	// BinarySafe makes AT+SEND take exactly the declared number of data
	// bytes, whatever they are. Otherwise data ends at the first CR, LF or
	// NUL, as in a firmware that reads commands as text lines.
	BinarySafe bool
	// Air carries frames to other modules; nil means transmissions vanish
	// and nothing is ever received. If it implements radio.Airtimer its Send
	// is taken to last the frame's time on air itself (radio/sim does);
	// otherwise the emulator waits the airtime before handing the frame over.
	Air radio.Radio
	// Instant drops all timing (UART bytes, airtime, boot time), for tests
	// of logic only.
	Instant bool
	// BootTime is how long a reset takes before +READY; 0 means 100 ms.
	BootTime time.Duration
	// Version and UID answer AT+VER? and AT+UID?; empty means
	// DefaultVersion and a 24-digit id derived from the tty number.
	Version, UID string
	// Logger receives emulator events; nil discards them.
	Logger *slog.Logger
}

// Settings are the module's stored settings.
type Settings struct {
	Address    int
	NetworkID  int
	BandHz     int
	SF, BWCode int
	CR         int
	Preamble   int
	PowerDBm   int
	Baud       int
	Mode       int
}

func factory(baud int) Settings {
	return Settings{NetworkID: 18, BandHz: 915_000_000, SF: 9, BWCode: 7, CR: 1, Preamble: 12, PowerDBm: 22, Baud: baud}
}

var bwHz = map[int]int{7: 125000, 8: 250000, 9: 500000}

func (s Settings) params() lora.Params {
	return lora.Params{SpreadingFactor: s.SF, BandwidthHz: bwHz[s.BWCode], CodingRate: s.CR, PreambleSymbols: s.Preamble}
}

// Stats counts what the emulated module did.
type Stats struct {
	Commands    int // complete command lines processed
	FlashWrites int // settings stored (each AT+ setter)
	Sent        int // frames transmitted
	Received    int // frames delivered as +RCV
	Errors      int // +ERR answers
}

// Module is one emulated RYLR998 on a pseudo-terminal.
type Module struct {
	o    Opts
	log  *slog.Logger
	ptm  *os.File // master: the module's side of the UART
	tty  *os.File // slave, kept open so the host can close and reopen it
	path string

	out  chan []byte // serial output, written by one goroutine in order
	done chan struct{}
	wg   sync.WaitGroup

	mu        sync.Mutex
	set       Settings
	booting   bool // ignoring input until +READY
	silent    bool // wedged: ignores input, answers nothing
	txBusy    bool
	stats     Stats
	closeOnce sync.Once
}

// New opens a pseudo-terminal and starts the module on it; Path is the tty
// a driver opens. The module greets with +READY as after power-up.
func New(opts *Opts) (*Module, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Baud == 0 {
		o.Baud = 115200
	}
	if o.BootTime == 0 {
		o.BootTime = 100 * time.Millisecond
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	ptm, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("rylrsim: open pseudo-terminal: %w", err)
	}
	if o.UID == "" {
		// Distinct per emulated module, stable for a given tty.
		n, _ := strconv.Atoi(strings.TrimPrefix(tty.Name(), "/dev/pts/"))
		o.UID = fmt.Sprintf("%024X", uint64(0xA0FE1D00)+uint64(n))
	}
	// creack/pty's ioctls go through File.Fd, which leaves the master in
	// blocking mode, outside Go's poller: a Read blocked on it would then
	// survive Close. Re-wrap a non-blocking duplicate so Close unblocks it.
	if ptm, err = pollable(ptm); err != nil {
		tty.Close()
		return nil, fmt.Errorf("rylrsim: pseudo-terminal: %w", err)
	}
	// Raw until the host opens it: a cooked tty would echo our own output
	// back to us and translate CR/LF in binary payloads.
	if err := makeRaw(tty); err != nil {
		ptm.Close()
		tty.Close()
		return nil, fmt.Errorf("rylrsim: raw mode: %w", err)
	}
	m := &Module{o: o, log: o.Logger, ptm: ptm, tty: tty, path: tty.Name(),
		out: make(chan []byte, 256), done: make(chan struct{}), set: factory(o.Baud)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.wg.Add(2)
	go m.writeLoop()
	go m.readLoop()
	if o.Air != nil {
		m.wg.Add(1)
		go m.airLoop()
	}
	m.reboot(false)
	return m, nil
}

func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path is the pseudo-terminal a driver opens as its serial port.
func (m *Module) Path() string { return m.path }

func (m *Module) String() string { return "rylrsim{" + m.path + "}" }

// Settings returns the stored settings.
func (m *Module) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set
}

// Stats returns the counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Reset reboots the module as its reset pin would: it stops listening for
// BootTime, then says +READY. Stored settings survive (they are in flash).
func (m *Module) Reset() { m.reboot(false) }

// FactoryReset restores factory settings and reboots, like a module whose
// flash was lost or that another host reconfigured.
func (m *Module) FactoryReset() { m.reboot(true) }

// SetSilent makes the module ignore its UART (a wedged firmware) until a
// reset or SetSilent(false).
func (m *Module) SetSilent(s bool) {
	m.mu.Lock()
	m.silent = s
	m.mu.Unlock()
}

// Inject writes raw bytes to the host as if the module had sent them, for
// tests of garbage, truncated lines and dropped bytes.
func (m *Module) Inject(b []byte) { m.emit(bytes.Clone(b)) }

// Close stops the module and closes the pseudo-terminal.
func (m *Module) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.ptm.Close()
		m.tty.Close()
		m.wg.Wait()
	})
	return nil
}

func (m *Module) reboot(wipe bool) {
	m.mu.Lock()
	if wipe {
		m.set = factory(m.o.Baud)
	}
	m.booting, m.silent = true, false
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if !m.o.Instant {
			select {
			case <-time.After(m.o.BootTime):
			case <-m.done:
				return
			}
		}
		m.mu.Lock()
		m.booting = false
		m.mu.Unlock()
		m.emit([]byte("+READY\r\n"))
	}()
}

// byteTime is the UART time of n bytes at the current baud (8N1).
func (m *Module) byteTime(n int) time.Duration {
	if m.o.Instant {
		return 0
	}
	m.mu.Lock()
	baud := m.set.Baud
	m.mu.Unlock()
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// emit queues serial output; the writer spends its byte time.
func (m *Module) emit(b []byte) {
	select {
	case m.out <- b:
	case <-m.done:
	}
}

func (m *Module) writeLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case b := <-m.out:
			if d := m.byteTime(len(b)); d > 0 {
				sleepPrecise(d)
			}
			// Nobody reading the tty for a second is a host that went away;
			// drop rather than wedge the module.
			m.ptm.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := m.ptm.Write(b); err != nil && !errors.Is(err, os.ErrClosed) {
				m.log.Debug("serial output dropped", "err", err)
			}
		}
	}
}

// sleepPrecise waits d; the byte time of short answers is well under the
// timer slack of time.Sleep on some kernels, so the tail is spun.
func sleepPrecise(d time.Duration) {
	end := time.Now().Add(d)
	if d > 2*time.Millisecond {
		time.Sleep(d - time.Millisecond)
	}
	for time.Now().Before(end) {
	}
}

// waitPrecise is sleepPrecise that gives up (false) when the module closes.
func (m *Module) waitPrecise(d time.Duration) bool {
	end := time.Now().Add(d)
	if d > 2*time.Millisecond {
		t := time.NewTimer(d - time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.done:
			return false
		}
	}
	for time.Now().Before(end) {
	}
	return true
}

func (m *Module) readLoop() {
	defer m.wg.Done()
	var buf []byte
	var started time.Time // when the first byte of the pending command arrived
	chunk := make([]byte, 1024)
	for {
		n, err := m.ptm.Read(chunk)
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			// EIO while no process has the tty open cannot happen (we keep
			// it open), but do not spin if it does.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.mu.Lock()
		ignore := m.booting || m.silent
		m.mu.Unlock()
		if ignore {
			buf = buf[:0]
			continue
		}
		if len(buf) == 0 {
			started = time.Now()
		}
		buf = append(buf, chunk[:n]...)
		for {
			line, k, ok := m.nextCommand(buf)
			if !ok {
				break
			}
			// The host's bytes arrive at once over a pty; a UART would have
			// spent their byte time.
			if d := m.byteTime(k) - time.Since(started); d > 0 {
				sleepPrecise(d)
			}
			started = time.Now()
			m.execute(line)
			buf = buf[k:]
		}
		if len(buf) > 4096 { // a host spewing without line ends
			buf = buf[:0]
		}
	}
}

// command is one complete input unit: a text line, or an AT+SEND with its
// data when binary-safe.
type command struct {
	text    string
	data    []byte
	hasData bool
	err     int // +ERR code to answer instead of executing, 0 if none
}

var sendPrefix = []byte("AT+SEND=")

// nextCommand splits one command off buf.
func (m *Module) nextCommand(buf []byte) (command, int, bool) {
	if m.o.BinarySafe && bytes.HasPrefix(buf, sendPrefix) {
		// AT+SEND=<addr>,<len>,<data>\r\n with exactly len data bytes.
		rest := buf[len(sendPrefix):]
		a := bytes.IndexByte(rest, ',')
		if a >= 0 {
			b := bytes.IndexByte(rest[a+1:], ',')
			if b >= 0 {
				lenField := rest[a+1 : a+1+b]
				n, err := strconv.Atoi(string(lenField))
				dataStart := len(sendPrefix) + a + 1 + b + 1
				if err == nil && n >= 0 && n <= 4096 {
					end := dataStart + n
					if len(buf) < end+2 {
						return command{}, 0, false
					}
					if buf[end] == '\r' && buf[end+1] == '\n' {
						return command{text: string(buf[:dataStart-1]), data: buf[dataStart:end], hasData: true}, end + 2, true
					}
					// Length does not match the data: the rest of the line is
					// thrown away with it.
					i := bytes.Index(buf[dataStart:], []byte("\r\n"))
					if i < 0 {
						return command{}, 0, false
					}
					return command{err: 5}, dataStart + i + 2, true
				}
			}
		}
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return command{}, 0, false
	}
	if i == 0 || buf[i-1] != '\r' {
		return command{err: 1}, i + 1, true
	}
	line := buf[:i-1]
	c := command{text: string(line)}
	if bytes.HasPrefix(line, sendPrefix) {
		// Text firmware: the data is whatever is left of the line, up to a NUL.
		parts := bytes.SplitN(line, []byte(","), 3)
		if len(parts) == 3 {
			d := parts[2]
			if z := bytes.IndexByte(d, 0); z >= 0 {
				d = d[:z]
			}
			c.text = string(bytes.Join(parts[:2], []byte(",")))
			c.data, c.hasData = d, true
		}
	}
	return c, i + 1, true
}

func (m *Module) reply(s string) { m.emit([]byte(s + "\r\n")) }

func (m *Module) fail(code int) {
	m.mu.Lock()
	m.stats.Errors++
	m.mu.Unlock()
	m.reply("+ERR=" + strconv.Itoa(code))
}

func (m *Module) execute(c command) {
	m.mu.Lock()
	m.stats.Commands++
	m.mu.Unlock()
	if c.err != 0 {
		m.fail(c.err)
		return
	}
	text := c.text
	if text == "" {
		return
	}
	if !strings.HasPrefix(text, "AT") {
		m.fail(2)
		return
	}
	if text == "AT" {
		m.reply("+OK")
		return
	}
	cmd, arg, isSet := strings.Cut(strings.TrimPrefix(text, "AT+"), "=")
	query := strings.HasSuffix(cmd, "?") && !isSet
	cmd = strings.TrimSuffix(cmd, "?")
	if !query && !isSet && cmd != "RESET" && cmd != "FACTORY" {
		m.fail(4)
		return
	}
	m.mu.Lock()
	s := m.set
	m.mu.Unlock()
	switch cmd {
	case "RESET":
		m.reply("+RESET")
		m.reboot(false)
	case "FACTORY":
		m.mu.Lock()
		m.set = factory(m.o.Baud)
		m.stats.FlashWrites++
		m.mu.Unlock()
		m.reply("+FACTORY")
	case "VER":
		m.answer(query, "VER", m.o.Version)
	case "UID":
		m.answer(query, "UID", m.o.UID)
	case "CPIN":
		m.answer(query, "CPIN", "No Password!")
	case "SEND":
		m.send(c, arg, s)
	default:
		if query {
			m.query(cmd, s)
			return
		}
		m.store(cmd, arg, s)
	}
}

func (m *Module) answer(query bool, name, value string) {
	if !query {
		m.fail(4)
		return
	}
	m.reply("+" + name + "=" + value)
}

func (m *Module) query(cmd string, s Settings) {
	var v string
	switch cmd {
	case "ADDRESS":
		v = strconv.Itoa(s.Address)
	case "NETWORKID":
		v = strconv.Itoa(s.NetworkID)
	case "BAND":
		v = strconv.Itoa(s.BandHz)
	case "PARAMETER":
		v = fmt.Sprintf("%d,%d,%d,%d", s.SF, s.BWCode, s.CR, s.Preamble)
	case "CRFOP":
		v = strconv.Itoa(s.PowerDBm)
	case "IPR":
		v = strconv.Itoa(s.Baud)
	case "MODE":
		v = strconv.Itoa(s.Mode)
	default:
		m.fail(4)
		return
	}
	m.reply("+" + cmd + "=" + v)
}

func ints(arg string, n int) ([]int, bool) {
	parts := strings.Split(arg, ",")
	if len(parts) != n {
		return nil, false
	}
	out := make([]int, n)
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func (m *Module) store(cmd, arg string, s Settings) {
	switch cmd {
	case "ADDRESS":
		v, ok := ints(arg, 1)
		if !ok || v[0] < 0 || v[0] > 65535 {
			m.fail(4)
			return
		}
		s.Address = v[0]
	case "NETWORKID":
		v, ok := ints(arg, 1)
		if !ok || !((v[0] >= 3 && v[0] <= 15) || v[0] == 18) {
			m.fail(4)
			return
		}
		if v[0] != 18 && s.Preamble != 12 {
			m.fail(18)
			return
		}
		s.NetworkID = v[0]
	case "BAND":
		v, ok := ints(strings.TrimSuffix(arg, ",M"), 1)
		if !ok || v[0] < 820_000_000 || v[0] > 960_000_000 {
			m.fail(4)
			return
		}
		s.BandHz = v[0]
	case "PARAMETER":
		v, ok := ints(arg, 4)
		if !ok {
			m.fail(4)
			return
		}
		sf, bw, cr, pre := v[0], v[1], v[2], v[3]
		maxSF := map[int]int{7: 9, 8: 10, 9: 11}[bw]
		if maxSF == 0 || sf < 7 || sf > maxSF || cr < 1 || cr > 4 {
			m.fail(4)
			return
		}
		if pre < 4 || pre > 24 || (s.NetworkID != 18 && pre != 12) {
			m.fail(18)
			return
		}
		s.SF, s.BWCode, s.CR, s.Preamble = sf, bw, cr, pre
	case "CRFOP":
		v, ok := ints(arg, 1)
		if !ok || v[0] < 0 || v[0] > 22 {
			m.fail(4)
			return
		}
		s.PowerDBm = v[0]
	case "IPR":
		v, ok := ints(arg, 1)
		valid := map[int]bool{300: true, 1200: true, 4800: true, 9600: true, 19200: true, 28800: true, 38400: true, 57600: true, 115200: true}
		if !ok || !valid[v[0]] {
			m.fail(4)
			return
		}
		s.Baud = v[0]
	case "MODE":
		v, ok := ints(strings.SplitN(arg, ",", 2)[0], 1)
		if !ok || v[0] < 0 || v[0] > 2 {
			m.fail(4)
			return
		}
		s.Mode = v[0]
	default:
		m.fail(4)
		return
	}
	m.mu.Lock()
	m.set = s
	m.stats.FlashWrites++
	m.mu.Unlock()
	m.reply("+OK")
}

func (m *Module) send(c command, arg string, s Settings) {
	if !c.hasData {
		m.fail(4)
		return
	}
	head := strings.SplitN(strings.TrimPrefix(c.text, "AT+SEND="), ",", 2)
	if len(head) != 2 {
		m.fail(4)
		return
	}
	dst, err1 := strconv.Atoi(head[0])
	n, err2 := strconv.Atoi(head[1])
	if err1 != nil || err2 != nil || dst < 0 || dst > 65535 || n < 0 {
		m.fail(4)
		return
	}
	if n > 240 {
		m.fail(13)
		return
	}
	if n != len(c.data) {
		m.fail(5)
		return
	}
	m.mu.Lock()
	if m.txBusy {
		m.mu.Unlock()
		m.fail(17)
		return
	}
	m.txBusy = true
	m.stats.Sent++
	m.mu.Unlock()
	frame := make([]byte, HiddenBytes+n)
	frame[0] = byte(s.NetworkID)
	frame[1], frame[2] = byte(s.Address>>8), byte(s.Address)
	frame[3], frame[4] = byte(dst>>8), byte(dst)
	frame[5] = byte(n)
	frame[6], frame[7] = s.digest()
	copy(frame[HiddenBytes:], c.data)
	m.reply("+OK")
	toa := s.params().TimeOnAir(len(frame))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			m.txBusy = false
			m.mu.Unlock()
		}()
		_, timedAir := m.o.Air.(radio.Airtimer)
		if !m.o.Instant && !timedAir && !m.waitPrecise(toa) {
			return
		}
		if m.o.Air == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*toa+time.Second)
		defer cancel()
		go func() {
			select {
			case <-m.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := m.o.Air.Send(ctx, frame); err != nil {
			m.log.Debug("air refused frame", "err", err)
		}
	}()
}

// digest packs what makes two modules able to hear each other besides the
// network id: SF, bandwidth and carrier (100 kHz resolution).
func (s Settings) digest() (byte, byte) {
	return byte(s.SF<<4 | s.BWCode), byte(s.BandHz / 100_000)
}

func (m *Module) airLoop() {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.done
		cancel()
	}()
	for {
		f, err := m.o.Air.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, radio.ErrClosed) {
				return
			}
			continue
		}
		p := f.Payload
		if len(p) < HiddenBytes || int(p[5]) != len(p)-HiddenBytes {
			continue // not a frame of this module family
		}
		m.mu.Lock()
		s, deaf := m.set, m.booting || m.silent || m.txBusy || m.set.Mode == 1
		m.mu.Unlock()
		d0, d1 := s.digest()
		dst := int(p[3])<<8 | int(p[4])
		if deaf || int(p[0]) != s.NetworkID || p[6] != d0 || p[7] != d1 || (dst != 0 && dst != s.Address) {
			continue
		}
		src := int(p[1])<<8 | int(p[2])
		data := p[HiddenBytes:]
		line := make([]byte, 0, len(data)+32)
		line = fmt.Appendf(line, "+RCV=%d,%d,", src, len(data))
		line = append(line, data...)
		line = fmt.Appendf(line, ",%d,%d\r\n", int(f.RSSI), int(f.SNR))
		m.mu.Lock()
		m.stats.Received++
		m.mu.Unlock()
		m.emit(line)
	}
}
