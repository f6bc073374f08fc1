package sx127xsim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// Opts configures the emulated chip. The zero value is a genuine SX1276.
type Opts struct {
	// Version is what RegVersion (0x42) reads; 0 means 0x12.
	Version byte
	// Air carries transmitted frames to other radios and brings theirs in;
	// nil keeps the chip to itself (use OnTransmit and Deliver). The chip
	// waits the time on air before handing a frame to Air.
	Air radio.Radio
	// OnTransmit, if set, is called with each frame when its transmission
	// completes.
	OnTransmit func(payload []byte)
	// Name is the port name in String(); "" means "sx127xsim".
	Name string
}

// Packet is a frame arriving at the antenna.
type Packet struct {
	Payload []byte
	RSSI    float64 // dBm
	SNR     float64 // dB
	// CRCError delivers the frame with PayloadCrcError set, as after
	// interference.
	CRCError bool
}

// Chip is an emulated SX1276. It implements spi.PortCloser and spi.Conn.
type Chip struct {
	o    Opts
	dio0 *gpiotest.Pin
	rst  *resetPin

	mu        sync.Mutex
	regs      [0x80]byte
	fifo      [256]byte
	txTimer   *time.Timer
	dio0Dead  bool
	txStuck   bool
	resets    int
	connected bool
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
}

var (
	_ spi.PortCloser = (*Chip)(nil)
	_ spi.Conn       = (*Chip)(nil)
)

// New returns a chip fresh out of power-on reset.
func New(opts *Opts) *Chip {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Version == 0 {
		o.Version = 0x12
	}
	if o.Name == "" {
		o.Name = "sx127xsim"
	}
	c := &Chip{o: o, done: make(chan struct{}),
		dio0: &gpiotest.Pin{N: "DIO0", EdgesChan: make(chan gpio.Level, 4)}}
	c.rst = &resetPin{Pin: gpiotest.Pin{N: "RESET", L: gpio.High}, c: c}
	c.powerOn()
	if o.Air != nil {
		c.wg.Add(1)
		go c.airLoop()
	}
	return c
}

// DIO0 is the chip's DIO0 line; the chip raises edges on it.
func (c *Chip) DIO0() gpio.PinIO { return c.dio0 }

// Reset is the chip's NRESET line: driving it low resets the chip.
func (c *Chip) Reset() gpio.PinIO { return c.rst }

// Resets counts hardware resets through the RESET pin.
func (c *Chip) Resets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// SetDIO0Dead stops (or restores) DIO0 edges; the IRQ flags still work.
func (c *Chip) SetDIO0Dead(dead bool) {
	c.mu.Lock()
	c.dio0Dead = dead
	c.mu.Unlock()
}

// SetTxStuck makes transmissions never complete (until a reset clears it
// or SetTxStuck(false)).
func (c *Chip) SetTxStuck(stuck bool) {
	c.mu.Lock()
	c.txStuck = stuck
	c.mu.Unlock()
}

// Reg returns the current value of a register, for assertions.
func (c *Chip) Reg(addr byte) byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked(addr)
}

// Mode returns RegOpMode's mode bits (0 sleep, 1 standby, 3 TX, 5 RX
// continuous) and whether LoRa mode is on.
func (c *Chip) Mode() (mode byte, lora bool) {
	v := c.Reg(0x01)
	return v & 0x07, v&0x80 != 0
}

// Params decodes the modem registers.
func (c *Chip) Params() lora.Params {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paramsLocked()
}

// FrequencyHz decodes RegFrf.
func (c *Chip) FrequencyHz() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	frf := uint64(c.regs[0x06])<<16 | uint64(c.regs[0x07])<<8 | uint64(c.regs[0x08])
	return int((frf*32_000_000 + 1<<18) >> 19)
}

var bwHz = [...]int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}

func (c *Chip) paramsLocked() lora.Params {
	mc1, mc2, mc3 := c.regs[0x1D], c.regs[0x1E], c.regs[0x26]
	bw := 0
	if i := int(mc1 >> 4); i < len(bwHz) {
		bw = bwHz[i]
	}
	ldro := lora.LDROOff
	if mc3&0x08 != 0 {
		ldro = lora.LDROOn
	}
	return lora.Params{
		SpreadingFactor: int(mc2 >> 4),
		BandwidthHz:     bw,
		CodingRate:      int(mc1>>1) & 0x07,
		PreambleSymbols: int(c.regs[0x20])<<8 | int(c.regs[0x21]),
		ImplicitHeader:  mc1&0x01 != 0,
		NoCRC:           mc2&0x04 == 0,
		LDRO:            ldro,
	}
}

// powerOn loads the register reset values (datasheet table 41, LoRa column
// where it differs).
func (c *Chip) powerOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *Chip) resetLocked() {
	if c.txTimer != nil {
		c.txTimer.Stop()
		c.txTimer = nil
	}
	clear(c.regs[:])
	clear(c.fifo[:])
	for _, rv := range [][2]byte{
		{0x01, 0x09}, {0x06, 0x6C}, {0x07, 0x80}, {0x08, 0x00}, {0x09, 0x4F}, {0x0B, 0x2B}, {0x0C, 0x20},
		{0x0E, 0x80}, {0x1D, 0x72}, {0x1E, 0x70}, {0x1F, 0x64}, {0x21, 0x08}, {0x22, 0x01}, {0x23, 0xFF},
		{0x26, 0x04}, {0x31, 0xC3}, {0x37, 0x0A}, {0x39, 0x12}, {0x42, 0x12}, {0x4D, 0x84},
	} {
		c.regs[rv[0]] = rv[1]
	}
	c.regs[0x42] = c.o.Version
	c.txStuck = false
}

// String implements spi.Port.
func (c *Chip) String() string { return c.o.Name }

// Connect implements spi.Port; it accepts mode 0, 8 bits, up to 10 MHz.
func (c *Chip) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		return nil, errors.New("sx127xsim: Connect called twice")
	}
	if mode&3 != spi.Mode0 || bits != 8 {
		return nil, fmt.Errorf("sx127xsim: the SX1276 needs SPI mode 0 with 8-bit words, got %v/%d", mode, bits)
	}
	if f > 10*physic.MegaHertz {
		return nil, fmt.Errorf("sx127xsim: %v is above the chip's 10 MHz", f)
	}
	c.connected = true
	return c, nil
}

// LimitSpeed implements spi.PortCloser.
func (c *Chip) LimitSpeed(f physic.Frequency) error { return nil }

// Close implements spi.PortCloser: the chip stops its timers and air loop.
func (c *Chip) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.txTimer != nil {
		c.txTimer.Stop()
	}
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// Duplex implements conn.Conn.
func (c *Chip) Duplex() conn.Duplex { return conn.Full }

// Tx implements conn.Conn: one chip-select window.
func (c *Chip) Tx(w, r []byte) error {
	if len(r) != 0 && len(r) != len(w) {
		return fmt.Errorf("sx127xsim: full duplex needs len(r) == len(w), got %d and %d", len(r), len(w))
	}
	if len(w) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r == nil {
		r = make([]byte, len(w))
	}
	r[0] = 0
	addr := w[0] & 0x7F
	write := w[0]&0x80 != 0
	for i := 1; i < len(w); i++ {
		a := addr
		if a != 0x00 { // registers auto-increment; the FIFO does not
			a = addr + byte(i-1)
			if a >= 0x80 {
				a = 0x7F
			}
		}
		if write {
			r[i] = 0
			c.writeLocked(a, w[i])
		} else {
			r[i] = c.readLocked(a)
		}
	}
	return nil
}

// TxPackets implements spi.Conn; packets with KeepCS form one window.
func (c *Chip) TxPackets(p []spi.Packet) error {
	var w, r []byte
	start := 0
	for i, pk := range p {
		w = append(w, pk.W...)
		r = append(r, make([]byte, len(pk.W))...)
		if pk.KeepCS && i < len(p)-1 {
			continue
		}
		if err := c.Tx(w, r); err != nil {
			return err
		}
		off := 0
		for j := start; j <= i; j++ {
			copy(p[j].R, r[off:off+len(p[j].W)])
			off += len(p[j].W)
		}
		w, r, start = w[:0], r[:0], i+1
	}
	return nil
}

func (c *Chip) readLocked(a byte) byte {
	if a == 0x00 {
		v := c.fifo[c.regs[0x0D]]
		c.regs[0x0D]++
		return v
	}
	return c.regs[a]
}

func (c *Chip) writeLocked(a, v byte) {
	switch a {
	case 0x00:
		c.fifo[c.regs[0x0D]] = v
		c.regs[0x0D]++
	case 0x01:
		c.setOpModeLocked(v)
	case 0x12: // write 1 to clear
		c.regs[0x12] &^= v
	case 0x10, 0x13, 0x19, 0x1A, 0x42: // read-only
	default:
		c.regs[a] = v
	}
}

func (c *Chip) setOpModeLocked(v byte) {
	old := c.regs[0x01]
	if (v^old)&0x80 != 0 && old&0x07 != 0 {
		// LongRangeMode only changes in sleep; the rest of the write applies.
		v = v&^0x80 | old&0x80
	}
	c.regs[0x01] = v
	mode := v & 0x07
	if c.txTimer != nil && mode != 0x03 {
		c.txTimer.Stop() // leaving TX aborts the transmission
		c.txTimer = nil
	}
	if v&0x80 == 0 || mode != 0x03 || old&0x07 == 0x03 {
		return
	}
	// Start a transmission of PayloadLength bytes from FifoTxBaseAddr.
	n := int(c.regs[0x22])
	payload := make([]byte, n)
	base := c.regs[0x0E]
	for i := range payload {
		payload[i] = c.fifo[byte(int(base)+i)]
	}
	if c.txStuck {
		return
	}
	toa := c.paramsLocked().TimeOnAir(n)
	c.txTimer = time.AfterFunc(toa, func() { c.txDone(payload) })
}

func (c *Chip) txDone(payload []byte) {
	c.mu.Lock()
	if c.closed || c.regs[0x01]&0x07 != 0x03 {
		c.mu.Unlock()
		return
	}
	c.txTimer = nil
	c.regs[0x01] = c.regs[0x01]&^0x07 | 0x01 // back to standby
	c.regs[0x12] |= 0x08
	edge := c.regs[0x40]>>6 == 0x01
	air, hook := c.o.Air, c.o.OnTransmit
	c.mu.Unlock()
	// The frame has left before the host can learn it (OnTransmit first).
	if hook != nil {
		hook(payload)
	}
	if edge {
		c.raiseDIO0()
	}
	if air != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = air.Send(ctx, payload)
		cancel()
	}
}

func (c *Chip) raiseDIO0() {
	c.mu.Lock()
	dead := c.dio0Dead
	c.mu.Unlock()
	if dead {
		return
	}
	select {
	case c.dio0.EdgesChan <- gpio.High:
	default: // an edge nobody serviced; the level stays high
	}
}

// Deliver makes a frame arrive at the antenna. It is received only in LoRa
// RX continuous mode; it reports whether the chip took it.
func (c *Chip) Deliver(p Packet) bool {
	if len(p.Payload) == 0 || len(p.Payload) > 255 {
		return false
	}
	c.mu.Lock()
	if c.regs[0x01] != 0x85 || int(c.regs[0x23]) < len(p.Payload) {
		c.mu.Unlock()
		return false
	}
	base := c.regs[0x0F]
	for i, b := range p.Payload {
		c.fifo[byte(int(base)+i)] = b
	}
	c.regs[0x10] = base
	c.regs[0x13] = byte(len(p.Payload))
	snr := int(math.Round(p.SNR * 4))
	snr = max(-128, min(127, snr))
	c.regs[0x19] = byte(int8(snr))
	// Invert RSSI = -157 + raw + raw/16 (+ SNR when negative).
	target := p.RSSI + 157
	if p.SNR < 0 {
		target -= float64(int8(snr) / 4)
	}
	raw := int(math.Round(target * 16 / 17))
	c.regs[0x1A] = byte(max(0, min(255, raw)))
	flags := byte(0x40 | 0x10)
	if p.CRCError {
		flags |= 0x20
	}
	c.regs[0x12] |= flags
	edge := c.regs[0x40]>>6 == 0x00
	c.mu.Unlock()
	if edge {
		c.raiseDIO0()
	}
	return true
}

func (c *Chip) airLoop() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		f, err := c.o.Air.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, radio.ErrClosed) {
				return
			}
			continue
		}
		c.Deliver(Packet{Payload: f.Payload, RSSI: f.RSSI, SNR: f.SNR})
	}
}

// resetPin resets the chip while driven low.
type resetPin struct {
	gpiotest.Pin
	c *Chip
}

func (p *resetPin) Out(l gpio.Level) error {
	p.Pin.Out(l)
	if l == gpio.Low {
		p.c.mu.Lock()
		p.c.resets++
		p.c.resetLocked()
		p.c.mu.Unlock()
	}
	return nil
}
