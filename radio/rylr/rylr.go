package rylr

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"

	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/serialport"
)

// HiddenBytes is what the module adds on air to every AT+SEND payload
// ("the payload part will increase more 8 bytes", AT command guides).
const HiddenBytes = 8

// MaxData is the most data one AT+SEND accepts (+ERR=13 beyond).
const MaxData = 240

// Encoding says how frame payloads travel over the AT interface.
type Encoding uint8

const (
	// EncodingRaw sends payload bytes as they are (MTU up to 240). Needs a
	// module whose firmware passes CR, LF and NUL inside AT+SEND data.
	EncodingRaw Encoding = iota
	// EncodingBase64 sends standard base64 (MTU up to 180), safe on any
	// firmware. Both ends must use the same encoding.
	EncodingBase64
)

func (e Encoding) String() string {
	switch e {
	case EncodingRaw:
		return "raw"
	case EncodingBase64:
		return "base64"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// ParseEncoding reads "raw" or "base64".
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "", "raw":
		return EncodingRaw, nil
	case "base64", "b64":
		return EncodingBase64, nil
	}
	return EncodingRaw, fmt.Errorf("%w: unknown encoding %q (want raw or base64)", ErrInvalidOpts, s)
}

// Opts configures a module. The zero value probes the model and keeps the
// module's factory radio settings on 915 MHz under US915 rules.
type Opts struct {
	// Model selects the settings and error tables; ModelAuto (zero) reads
	// it from AT+VER?.
	Model Model
	// Address is this module's AT+ADDRESS (0..65535; 0 is the default).
	Address uint16
	// Destination is the AT+SEND target; 0 (the default) reaches every
	// module on the network id.
	Destination uint16
	// NetworkID is AT+NETWORKID; 0 means the model's factory value (18 on
	// the RYLR998, 0 on the RYLR896).
	NetworkID int
	// BandHz is the carrier frequency; 0 means 915 MHz.
	BandHz int
	// Params are SF, bandwidth, coding rate and preamble (AT+PARAMETER).
	// Zero fields take the model's factory value (RYLR998: SF9, 125 kHz,
	// 4/5, 12 symbols). The module always sends an explicit header and a
	// payload CRC; other Params fields are ignored.
	Params lora.Params
	// PowerDBm is AT+CRFOP; 0 means the model's maximum (RYLR998 22 dBm,
	// RYLR896 15 dBm). The lowest selectable setting is therefore 1 dBm.
	PowerDBm int
	// Encoding of payloads on the serial line; zero is EncodingRaw.
	Encoding Encoding
	// Regulator enforces the region's dwell and duty-cycle rules; nil means
	// a fresh US915 regulator.
	Regulator *lora.Regulator
	// Reset is the module's NRST pin (active low), optional. With it the
	// driver resets the module at start and when it stops answering;
	// without it, it sends AT+RESET.
	Reset gpio.PinOut
	// Baud is the UART rate the port was opened at, used to budget command
	// timeouts; 0 means 115200.
	Baud int
	// ReadTimeout is the serial read slice, bounding how late the reader
	// notices Close; 0 means 20 ms.
	ReadTimeout time.Duration
	// CommandTimeout is how long the module may take to answer one command,
	// on top of the line's byte time; 0 means 500 ms.
	CommandTimeout time.Duration
	// Name identifies the device in String() and logs (for example the
	// serial path); "" means "uart".
	Name string
	// Logger receives driver events; nil discards them.
	Logger *slog.Logger
	// Clock is used for timeouts and airtime waits; nil means real time.
	Clock clock.Clock
}

// Stats counts what the driver saw.
type Stats struct {
	Sent, Received uint64
	// Malformed counts lines that broke the AT grammar (bytes dropped on the
	// serial line, noise) and +RCV payloads that did not decode.
	Malformed uint64
	// Overflow counts received frames dropped because nobody was reading.
	Overflow uint64
	// Reboots counts +READY seen outside a reset the driver asked for.
	Reboots uint64
	// Recoveries counts resets the driver made because the module stopped answering.
	Recoveries uint64
	// Reconnects counts serial ports reopened after the device disconnected.
	Reconnects uint64
}

// Dev is one RYLR module on a serial port.
type Dev struct {
	portMu sync.RWMutex // guards port, swapped when the device comes back
	port   serialport.Port
	path   string // set by Open: reopened after a disconnect
	o      Opts   // resolved
	log    *slog.Logger
	clk    clock.Clock
	reg    *lora.Regulator

	model    Model
	version  string
	uid      string
	params   lora.Params // resolved, what the module runs
	network  int
	powerDBm int
	mtu      int

	cmdMu      sync.Mutex // serialises commands and transmissions
	needConfig atomic.Bool

	replies chan response    // answers to commands, from the reader
	ready   chan struct{}    // +READY seen
	rx      chan radio.Frame // received frames
	kick    chan struct{}    // reconfigure requested by an unsolicited +READY
	done    chan struct{}    // closed by Close
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool

	mu          sync.Mutex // guards the fields below
	lastGarbage string
	stats       Stats
}

var (
	_ radio.Radio    = (*Dev)(nil)
	_ radio.Airtimer = (*Dev)(nil)
	_ conn.Resource  = (*Dev)(nil)
)

// errRebooted is returned by a command interrupted by +READY.
var errRebooted = errors.New("rylr: module rebooted during the command")

// errNoAnswer is returned by a command the module did not answer in time.
var errNoAnswer = errors.New("rylr: no answer")

// Open opens the serial device at path, probes the module on it (AT,
// AT+VER?, AT+UID?), checks opts against what the model supports, writes
// the settings that differ, and starts receiving. It fails within about
// 1.5 s wrapping radio.ErrNoDevice when nothing (or only garbage) answers.
// The Dev owns the port: Close closes it.
func Open(ctx context.Context, path string, opts *Opts) (*Dev, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	p, err := serialport.Open(path, o.Baud)
	if err != nil {
		return nil, fmt.Errorf("rylr: %w", err)
	}
	if o.Name == "" {
		o.Name = path
	}
	d, err := newDev(ctx, p, path, &o)
	if err != nil {
		p.Close()
		return nil, err
	}
	return d, nil
}

// newDev is Open on a port already open; on error the caller closes port.
func newDev(ctx context.Context, port serialport.Port, path string, opts *Opts) (*Dev, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Encoding > EncodingBase64 {
		return nil, fmt.Errorf("%w: unknown encoding %d", ErrInvalidOpts, o.Encoding)
	}
	if o.Model > RYLR896 {
		return nil, fmt.Errorf("%w: unknown model %d", ErrInvalidOpts, o.Model)
	}
	if o.BandHz == 0 {
		o.BandHz = 915_000_000
	}
	if o.Baud == 0 {
		o.Baud = serialport.DefaultBaud
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 20 * time.Millisecond
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 500 * time.Millisecond
	}
	if o.Name == "" {
		o.Name = "uart"
	}
	d := &Dev{
		port:    port,
		path:    path,
		o:       o,
		log:     o.Logger,
		clk:     clock.Or(o.Clock),
		reg:     o.Regulator,
		replies: make(chan response, 16),
		ready:   make(chan struct{}, 1),
		rx:      make(chan radio.Frame, 64),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.reg == nil {
		var err error
		if d.reg, err = lora.NewRegulator(lora.US915, nil); err != nil {
			return nil, err
		}
	}
	if err := port.SetReadTimeout(o.ReadTimeout); err != nil {
		return nil, fmt.Errorf("rylr: %s: %w", o.Name, err)
	}
	_ = port.ResetInput() // whatever the module said before we listened is stale
	d.wg.Add(1)
	go d.readLoop()
	if err := d.start(ctx); err != nil {
		_ = d.stop() // the failed start is the error worth reporting
		return nil, err
	}
	d.wg.Add(1)
	go d.maintain()
	return d, nil
}

func (d *Dev) start(ctx context.Context) error {
	d.cmdMu.Lock()
	defer d.cmdMu.Unlock()
	if d.o.Reset != nil {
		if err := d.pulseReset(ctx); err != nil {
			return err
		}
	}
	if err := d.probe(ctx); err != nil {
		return err
	}
	if err := d.resolve(); err != nil {
		return err
	}
	return d.configure(ctx)
}

// probe checks that a module answers AT and identifies it.
func (d *Dev) probe(ctx context.Context) error {
	var err error
	for try := 0; try < 3; try++ {
		if _, err = d.command(ctx, "AT", 400*time.Millisecond); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		d.mu.Lock()
		garbage := d.lastGarbage
		d.mu.Unlock()
		if ctx.Err() != nil {
			return fmt.Errorf("rylr: %s: probe: %w", d.o.Name, ctx.Err())
		}
		if garbage != "" {
			return fmt.Errorf("%w: rylr: %s: no +OK to AT, only unrecognised output (last %q): wrong baud rate or not a REYAX module? (%v)", radio.ErrNoDevice, d.o.Name, garbage, err)
		}
		return fmt.Errorf("%w: rylr: %s: nothing answered AT within 1.2 s: no module connected, wrong port, or wrong baud rate (%d)? (%v)", radio.ErrNoDevice, d.o.Name, d.o.Baud, err)
	}
	r, err := d.command(ctx, "AT+VER?", 0)
	if err != nil {
		return fmt.Errorf("rylr: %s: version: %w", d.o.Name, err)
	}
	d.version = r.value
	if r, err := d.command(ctx, "AT+UID?", 0); err == nil {
		d.uid = r.value
	}
	m, known := modelFromVersion(d.version)
	switch {
	case d.o.Model != ModelAuto:
		d.model = d.o.Model
		if known && m != d.model {
			d.log.Warn("module reports another model", "version", d.version, "configured", d.model)
		}
	case known:
		d.model = m
	default:
		return fmt.Errorf("%w: rylr: %s: unrecognised firmware %q; set the model explicitly", radio.ErrNoDevice, d.o.Name, d.version)
	}
	d.log.Debug("module found", "model", d.model, "version", d.version, "uid", d.uid)
	return nil
}

// resolve fills unset settings from the model's factory values and checks
// them against what the model accepts.
func (d *Dev) resolve() error {
	fp, fnet, fpow := d.model.factory()
	p := d.o.Params
	if p.SpreadingFactor == 0 {
		p.SpreadingFactor = fp.SpreadingFactor
	}
	if p.BandwidthHz == 0 {
		p.BandwidthHz = fp.BandwidthHz
	}
	if p.CodingRate == 0 {
		p.CodingRate = fp.CodingRate
	}
	if p.PreambleSymbols == 0 {
		p.PreambleSymbols = fp.PreambleSymbols
	}
	p.ImplicitHeader, p.NoCRC, p.LDRO = false, false, lora.LDROAuto
	d.params, d.network, d.powerDBm = p, d.o.NetworkID, d.o.PowerDBm
	if d.network == 0 {
		d.network = fnet
	}
	if d.powerDBm == 0 {
		d.powerDBm = fpow
	}
	if err := d.model.validate(p, d.network, d.powerDBm, d.o.BandHz); err != nil {
		return err
	}
	if err := d.reg.Tune(d.o.BandHz); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	limit := MaxData
	if dw := d.reg.Region().Dwell(p); dw > 0 {
		limit = min(limit, p.MaxPayload(dw)-HiddenBytes)
	}
	d.mtu = limit
	if d.o.Encoding == EncodingBase64 {
		d.mtu = limit / 4 * 3
	}
	if d.mtu < 1 {
		return fmt.Errorf("%w: %v with a %d-symbol preamble leaves no payload within the %v dwell limit of %v",
			ErrInvalidOpts, p, p.PreambleSymbols, d.reg.Region().Dwell(p), d.reg.Region())
	}
	return nil
}

// setting is one AT setting: its query name and the value we want.
type setting struct{ name, value string }

func (d *Dev) settings() []setting {
	bw, _ := bwCode(d.params.BandwidthHz)
	return []setting{
		{"ADDRESS", strconv.Itoa(int(d.o.Address))},
		{"NETWORKID", strconv.Itoa(d.network)},
		{"BAND", strconv.Itoa(d.o.BandHz)},
		{"PARAMETER", fmt.Sprintf("%d,%d,%d,%d", d.params.SpreadingFactor, bw, d.params.CodingRate, d.params.PreambleSymbols)},
		{"CRFOP", strconv.Itoa(d.powerDBm)},
	}
}

// configure writes the settings that differ from what the module reports,
// sparing its flash. cmdMu must be held.
func (d *Dev) configure(ctx context.Context) error {
	d.needConfig.Store(false)
	for _, s := range d.settings() {
		r, err := d.command(ctx, "AT+"+s.name+"?", 0)
		if err == nil && r.kind == kindValue && r.name == s.name && sameSetting(s.name, r.value, s.value) {
			continue
		}
		if err != nil && !isATError(err) {
			d.needConfig.Store(true)
			return fmt.Errorf("rylr: %s: query %s: %w", d.o.Name, s.name, err)
		}
		if _, err := d.command(ctx, "AT+"+s.name+"="+s.value, 0); err != nil {
			d.needConfig.Store(true)
			return fmt.Errorf("rylr: %s: configure: %w", d.o.Name, err)
		}
	}
	d.log.Debug("module configured", "params", d.params.String(), "network", d.network, "band_hz", d.o.BandHz, "power_dbm", d.powerDBm)
	return nil
}

// sameSetting compares a reported value with a wanted one; BAND may be
// reported with a unit or padding by some firmware.
func sameSetting(name, got, want string) bool {
	got = string(bytes.TrimSpace([]byte(got)))
	if name == "BAND" {
		got = string(bytes.TrimSuffix([]byte(got), []byte("Hz")))
	}
	return got == want
}

func isATError(err error) bool {
	var ae *ATError
	return errors.As(err, &ae)
}

// byteTime is how long n bytes take on the UART (8N1: 10 bits a byte).
func (d *Dev) byteTime(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(d.o.Baud)
}

// command sends one AT command and waits for its answer: +OK, a +NAME=value
// for queries, or +ERR (returned as *ATError). cmdMu must be held. timeout 0
// means CommandTimeout.
func (d *Dev) command(ctx context.Context, cmd string, timeout time.Duration) (response, error) {
	return d.commandBytes(ctx, []byte(cmd+"\r\n"), cmd, timeout)
}

func (d *Dev) commandBytes(ctx context.Context, line []byte, label string, timeout time.Duration) (response, error) {
	if timeout == 0 {
		timeout = d.o.CommandTimeout
	}
	timeout += d.byteTime(len(line) + 32)
	for drained := false; !drained; { // answers that arrived late belong to nobody
		select {
		case <-d.replies:
		default:
			drained = true
		}
	}
	if _, err := d.getPort().Write(line); err != nil {
		if d.isClosed() {
			return response{}, radio.ErrClosed
		}
		if errors.Is(err, serialport.ErrDisconnected) || errors.Is(err, serialport.ErrClosed) {
			// Gone, or closed by the reader that is reopening it.
			return response{}, fmt.Errorf("%w: rylr: %s: serial device disconnected (reopening): %w", radio.ErrNoDevice, d.o.Name, err)
		}
		return response{}, fmt.Errorf("rylr: %s: write %s: %w", d.o.Name, label, err)
	}
	// A query is answered by +NAME=value only; a stray +OK is someone
	// else's late answer.
	query := ""
	if strings.HasPrefix(label, "AT+") && strings.HasSuffix(label, "?") {
		query = label[3 : len(label)-1]
	}
	t := d.clk.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case r := <-d.replies:
			switch {
			case r.kind == kindOK && query == "", r.kind == kindValue && r.name == query:
				return r, nil
			case r.kind == kindErr:
				if r.code == 5 || r.code == 1 || r.code == 2 {
					// Framing errors: the module may have split our line.
					d.settle()
				}
				return r, &ATError{Model: d.model, Command: label, Code: r.code}
			case r.kind == kindReady:
				d.settle()
				return r, errRebooted
			}
			// +RESET, stale answers: keep waiting for the real one.
		case <-t.C():
			return response{}, fmt.Errorf("%w to %s within %v", errNoAnswer, label, timeout)
		case <-ctx.Done():
			return response{}, ctx.Err()
		case <-d.done:
			return response{}, radio.ErrClosed
		}
	}
}

// settle discards answers that keep coming after an error: a text-only
// module splits a line with binary data into several commands and answers
// each, and those late answers must not be taken for the next command's.
func (d *Dev) settle() {
	quiet := 2*d.o.ReadTimeout + d.byteTime(64)
	deadline := time.Now().Add(10 * quiet)
	for time.Now().Before(deadline) {
		select {
		case <-d.replies:
		case <-time.After(quiet):
			return
		case <-d.done:
			return
		}
	}
}

// pulseReset holds NRST low for 100 ms (the RYLR896 minimum) and waits for
// +READY. cmdMu must be held.
func (d *Dev) pulseReset(ctx context.Context) error {
	d.drainReady()
	if err := d.o.Reset.Out(gpio.Low); err != nil {
		return fmt.Errorf("rylr: %s: reset pin: %w", d.o.Name, err)
	}
	err := d.sleep(ctx, 100*time.Millisecond)
	if err2 := d.o.Reset.Out(gpio.High); err == nil && err2 != nil {
		err = fmt.Errorf("rylr: %s: reset pin: %w", d.o.Name, err2)
	}
	if err != nil {
		return err
	}
	d.waitReady(ctx, 2*time.Second)
	return nil
}

func (d *Dev) drainReady() {
	select {
	case <-d.ready:
	default:
	}
}

// waitReady waits up to timeout for +READY and reports whether it came.
func (d *Dev) waitReady(ctx context.Context, timeout time.Duration) bool {
	t := d.clk.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.ready:
		return true
	case <-t.C():
	case <-ctx.Done():
	case <-d.done:
	}
	return false
}

func (d *Dev) sleep(ctx context.Context, dur time.Duration) error {
	if dur <= 0 {
		return nil
	}
	t := d.clk.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return radio.ErrClosed
	}
}

// recoverLocked resets a module that stopped answering, then checks and
// reconfigures it. cmdMu must be held.
func (d *Dev) recoverLocked(ctx context.Context, why error) error {
	d.mu.Lock()
	d.stats.Recoveries++
	d.mu.Unlock()
	d.log.Warn("module not answering, resetting it", "err", why)
	if d.o.Reset != nil {
		if err := d.pulseReset(ctx); err != nil {
			return err
		}
	} else {
		d.drainReady()
		// A wedged module may still parse commands; a dead one ignores this.
		if _, err := d.getPort().Write([]byte("AT+RESET\r\n")); err != nil {
			return fmt.Errorf("rylr: %s: %w", d.o.Name, err)
		}
		d.waitReady(ctx, 2*time.Second)
	}
	if _, err := d.command(ctx, "AT", 0); err != nil {
		d.needConfig.Store(true)
		return fmt.Errorf("%w: rylr: %s: no answer after reset: %w", radio.ErrNoDevice, d.o.Name, err)
	}
	return d.configure(ctx)
}

// Send transmits payload and returns once the module has had the frame's
// time on air to send it.
func (d *Dev) Send(ctx context.Context, payload []byte) error {
	if d.isClosed() {
		return radio.ErrClosed
	}
	if len(payload) > d.mtu {
		return fmt.Errorf("%w: %d bytes, MTU %d (%v, %v encoding)", radio.ErrFrameTooLarge, len(payload), d.mtu, d.params, d.o.Encoding)
	}
	if len(payload) == 0 {
		return fmt.Errorf("rylr: %s: empty payload (AT+SEND needs at least one byte)", d.o.Name)
	}
	data := payload
	if d.o.Encoding == EncodingBase64 {
		data = make([]byte, base64.StdEncoding.EncodedLen(len(payload)))
		base64.StdEncoding.Encode(data, payload)
	}
	head := "AT+SEND=" + strconv.Itoa(int(d.o.Destination)) + "," + strconv.Itoa(len(data))
	line := make([]byte, 0, len(head)+len(data)+3)
	line = append(append(append(line, head...), ','), data...)
	line = append(line, '\r', '\n')

	d.cmdMu.Lock()
	defer d.cmdMu.Unlock()
	if d.needConfig.Load() {
		if err := d.configure(ctx); err != nil {
			return err
		}
	}
	n := len(data) + HiddenBytes
	if err := d.reg.Check(d.clk.Now(), d.params, n); err != nil {
		return fmt.Errorf("rylr: %s: %w", d.o.Name, err)
	}
	toa := d.params.TimeOnAir(n)
	recovered, busyUntil := false, time.Time{}
	for {
		_, err := d.commandBytes(ctx, line, head, 0)
		var ae *ATError
		switch {
		case err == nil:
			start := d.clk.Now()
			d.reg.Record(start, toa)
			d.mu.Lock()
			d.stats.Sent++
			d.mu.Unlock()
			return d.sleep(ctx, toa)
		case errors.As(err, &ae) && ae.Code == 17:
			// The module is still sending an earlier frame (ours after a
			// restart, or its own retry): give it up to one airtime.
			now := d.clk.Now()
			if busyUntil.IsZero() {
				busyUntil = now.Add(toa + d.o.CommandTimeout)
			}
			if now.After(busyUntil) {
				return err
			}
			if err := d.sleep(ctx, max(toa/8, 5*time.Millisecond)); err != nil {
				return err
			}
		case (errors.Is(err, errNoAnswer) || errors.Is(err, errRebooted)) && !recovered:
			recovered = true
			if errors.Is(err, errRebooted) {
				err = d.configure(ctx)
			} else {
				err = d.recoverLocked(ctx, err)
			}
			if err != nil {
				return err
			}
		case errors.Is(err, errNoAnswer):
			return fmt.Errorf("%w: rylr: %s: %w", radio.ErrTimeout, d.o.Name, err)
		default:
			return err
		}
	}
}

// Receive returns the next frame the module heard.
func (d *Dev) Receive(ctx context.Context) (radio.Frame, error) {
	return radio.NextFrame(ctx, d.rx, d.done)
}

// MTU is the largest payload Send accepts: 240 bytes (180 with base64),
// less when the dwell limit allows fewer at the configured settings.
func (d *Dev) MTU() int { return d.mtu }

// Baud is the serial rate to the module; with the frame size it bounds how
// long the module takes to hand a frame over.
func (d *Dev) Baud() int { return d.o.Baud }

// Airtime is the time on air of a frame carrying n payload bytes, including
// the encoding and the module's 8 hidden bytes.
func (d *Dev) Airtime(n int) time.Duration {
	if d.o.Encoding == EncodingBase64 {
		n = base64.StdEncoding.EncodedLen(n)
	}
	return d.params.TimeOnAir(n + HiddenBytes)
}

// Params returns the radio settings the module runs with.
func (d *Dev) Params() lora.Params { return d.params }

// Model returns the detected or configured model.
func (d *Dev) Model() Model { return d.model }

// Version and UID are the module's AT+VER? and AT+UID? answers.
func (d *Dev) Version() string { return d.version }

// UID is the module's unique id (AT+UID?).
func (d *Dev) UID() string { return d.uid }

// Stats returns a snapshot of the counters.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *Dev) String() string { return "rylr{" + d.model.String() + " " + d.o.Name + "}" }

// Halt stops the driver and releases the port, like Close.
func (d *Dev) Halt() error { return d.Close() }

// Close stops the reader, closes the serial port (returning its error) and
// unblocks pending calls. Only the first call closes; later ones return nil.
func (d *Dev) Close() error {
	if err := d.stop(); err != nil {
		return fmt.Errorf("rylr: close %s: %w", d.o.Name, err)
	}
	return nil
}

// stop closes the port and joins the goroutines; only the first call does
// anything, and it returns the port's close error.
func (d *Dev) stop() error {
	d.closeMu.Lock()
	if d.closed {
		d.closeMu.Unlock()
		return nil
	}
	d.closed = true
	close(d.done)
	d.closeMu.Unlock()
	d.portMu.Lock()
	err := d.port.Close()
	d.portMu.Unlock()
	d.wg.Wait()
	return err
}

func (d *Dev) getPort() serialport.Port {
	d.portMu.RLock()
	defer d.portMu.RUnlock()
	return d.port
}

// reconnect reopens the serial device after it went away (a USB adapter
// unplugged and plugged back, a module power-cycled with its own USB
// bridge), retrying until it succeeds or the Dev closes. The module is
// reconfigured afterwards.
func (d *Dev) reconnect(cause error) bool {
	d.log.Warn("serial device disconnected, reopening", "path", d.path, "err", cause)
	d.getPort().Close()
	for {
		select {
		case <-d.done:
			return false
		case <-time.After(250 * time.Millisecond):
		}
		p, err := serialport.Open(d.path, d.o.Baud)
		if err == nil {
			err = p.SetReadTimeout(d.o.ReadTimeout)
		}
		if err != nil {
			d.log.Debug("reopen failed", "err", err)
			if p != nil {
				p.Close()
			}
			continue
		}
		d.portMu.Lock()
		if d.isClosed() {
			d.portMu.Unlock()
			p.Close()
			return false
		}
		d.port = p
		d.portMu.Unlock()
		d.mu.Lock()
		d.stats.Reconnects++
		d.mu.Unlock()
		d.log.Info("serial device back", "path", d.path)
		d.needConfig.Store(true)
		d.kickConfig()
		return true
	}
}

func (d *Dev) isClosed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// maintain reconfigures the module after an unsolicited reboot, so that
// reception resumes with our settings even when nothing is being sent.
func (d *Dev) maintain() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case <-d.kick:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-d.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		d.cmdMu.Lock()
		var err error
		if d.needConfig.Load() {
			err = d.configure(ctx)
		}
		d.cmdMu.Unlock()
		cancel()
		if err != nil && !d.isClosed() {
			d.log.Warn("reconfiguring after reboot failed, will retry", "err", err)
			select {
			case <-d.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			d.kickConfig()
		}
	}
}

// kickConfig asks the maintenance goroutine to reconfigure the module.
func (d *Dev) kickConfig() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// readLoop splits the serial stream into responses.
func (d *Dev) readLoop() {
	defer d.wg.Done()
	buf := make([]byte, 0, 2048)
	chunk := make([]byte, 512)
	var pendingSince time.Time
	for {
		n, err := d.getPort().Read(chunk)
		if n > 0 {
			buf = append(buf, chunk[:n]...)
			pendingSince = time.Time{}
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			if d.isClosed() {
				return
			}
			if errors.Is(err, serialport.ErrDisconnected) && d.path != "" {
				if !d.reconnect(err) {
					return
				}
				buf = buf[:0]
				continue
			}
			if errors.Is(err, serialport.ErrClosed) {
				return
			}
			d.log.Warn("serial read failed", "err", err)
			select {
			case <-d.done:
				return
			case <-time.After(100 * time.Millisecond): // e.g. a USB adapter unplugged: do not spin
			}
		}
		for len(buf) > 0 {
			r, k, perr := parseResponse(buf)
			if k == 0 {
				break
			}
			d.handle(r, perr)
			buf = buf[k:]
		}
		if len(buf) == 0 {
			buf = buf[:0:cap(buf)]
			continue
		}
		// An incomplete response that gets no more bytes lost some: a +RCV
		// whose length field promises more than arrived. Drop it after a
		// quiet spell so the next response parses.
		if n > 0 {
			continue
		}
		now := time.Now()
		if pendingSince.IsZero() {
			pendingSince = now
		} else if now.Sub(pendingSince) >= 3*d.o.ReadTimeout+d.byteTime(300) {
			d.handle(response{kind: kindUnknown, line: buf}, errMalformed)
			buf = buf[:0]
			pendingSince = time.Time{}
		}
		if cap(buf)-len(buf) < 512 {
			buf = append(make([]byte, 0, 2048+len(buf)), buf...)
		}
	}
}

func (d *Dev) handle(r response, perr error) {
	if errors.Is(perr, errSkip) {
		return
	}
	if perr != nil || r.kind == kindUnknown {
		d.mu.Lock()
		d.stats.Malformed++
		d.lastGarbage = string(r.line)
		d.mu.Unlock()
		d.log.Debug("unrecognised output from module", "line", fmt.Sprintf("%q", r.line))
		return
	}
	switch r.kind {
	case kindRCV:
		d.deliver(r)
	case kindReady:
		select {
		case d.ready <- struct{}{}:
		default:
		}
		// Whatever caused it (our reset, a brown-out, a watchdog, someone
		// pressing reset), settings may be gone: reconfigure as soon as
		// the command path is free, even if nothing is being sent.
		d.needConfig.Store(true)
		if d.cmdMu.TryLock() {
			d.cmdMu.Unlock()
			d.mu.Lock()
			d.stats.Reboots++
			d.mu.Unlock()
			d.log.Warn("module rebooted")
		} else {
			// A command is in flight: it will not be answered.
			d.postReply(r)
		}
		d.kickConfig()
	default:
		d.postReply(r)
	}
}

func (d *Dev) postReply(r response) {
	select {
	case d.replies <- r:
	default:
	}
}

func (d *Dev) deliver(r response) {
	var payload []byte
	if d.o.Encoding == EncodingBase64 {
		payload = make([]byte, base64.StdEncoding.DecodedLen(len(r.data)))
		n, err := base64.StdEncoding.Decode(payload, r.data)
		if err != nil {
			d.mu.Lock()
			d.stats.Malformed++
			d.mu.Unlock()
			d.log.Debug("received frame is not base64", "err", err)
			return
		}
		payload = payload[:n]
	} else {
		payload = bytes.Clone(r.data)
	}
	f := radio.Frame{Payload: payload, RSSI: float64(r.rssi), SNR: float64(r.snr), Time: d.clk.Now()}
	d.mu.Lock() // counted before a reader can see the frame
	defer d.mu.Unlock()
	select {
	case d.rx <- f:
		d.stats.Received++
	default:
		d.stats.Overflow++
	}
}
