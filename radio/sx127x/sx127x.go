package sx127x

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// ErrInvalidOpts is wrapped by New for settings the chip cannot use.
var ErrInvalidOpts = errors.New("sx127x: invalid options")

// Opts configures the radio. The zero value is 915 MHz, SF7, 125 kHz,
// CR 4/5, 8-symbol preamble, explicit header, CRC on, private sync word,
// +17 dBm on PA_BOOST, under US915 rules.
type Opts struct {
	// FrequencyHz is the carrier; 0 means 915 MHz. The SX1276 high band
	// covers 862-1020 MHz; 779-960 MHz is accepted.
	FrequencyHz int
	// Params are the modulation settings (zero fields: lora.Params
	// defaults). SF7..SF12 with an explicit header; LDRO follows Params.LDRO.
	Params lora.Params
	// SyncWord is RegSyncWord; 0 means 0x12 (private networks; LoRaWAN
	// uses 0x34).
	SyncWord byte
	// PowerDBm is the PA_BOOST output power, 2..20; 0 means 17. Above 17 the
	// +20 dBm mode (RegPaDac) and a higher current limit are enabled.
	PowerDBm int
	// Regulator enforces the region's dwell and duty-cycle rules; nil means
	// a fresh US915 regulator tuned to FrequencyHz.
	Regulator *lora.Regulator
	// SPIMaxHz caps the SPI clock; 0 means 8 MHz (the chip allows 10).
	SPIMaxHz physic.Frequency
	// EdgeSlice bounds each DIO0 wait, and so how late Close is noticed;
	// 0 means 20 ms.
	EdgeSlice time.Duration
	// TxMargin is added to 1.5 times the time on air before a transmission
	// is declared stuck; 0 means 50 ms.
	TxMargin time.Duration
	// Name identifies the radio in String() and logs; "" uses the port's name.
	Name string
	// Logger receives driver events; nil discards them.
	Logger *slog.Logger
	// Clock is used for timeouts and timestamps; nil means real time.
	Clock clock.Clock
}

// Stats counts what the driver saw.
type Stats struct {
	Sent, Received uint64
	// CRCErrors counts frames dropped for a payload CRC error.
	CRCErrors uint64
	// Overflow counts frames dropped because nobody was receiving.
	Overflow uint64
	// MissedEdges counts transmissions that completed without a DIO0 edge.
	MissedEdges uint64
	// Recoveries counts chip resets after a stuck transmission.
	Recoveries uint64
}

// Dev is one SX1276 on an SPI port.
type Dev struct {
	c     spi.Conn
	reset gpio.PinOut
	dio0  gpio.PinIn
	o     Opts // resolved
	name  string
	log   *slog.Logger
	clk   clock.Clock
	reg   *lora.Regulator
	mtu   int

	busMu sync.Mutex // one SPI transaction sequence at a time
	w, r  []byte     // SPI buffers, guarded by busMu

	txMu   sync.Mutex // one transmission at a time
	txDone chan struct{}
	rx     chan radio.Frame
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	polling bool // DIO0 gives no edges: poll RegIrqFlags
	stats   Stats
}

var (
	_ radio.Radio    = (*Dev)(nil)
	_ radio.Airtimer = (*Dev)(nil)
	_ conn.Resource  = (*Dev)(nil)
)

// New connects to the chip on port, resets it with reset (optional: nil
// skips the hardware reset), checks RegVersion == 0x12 (else an error
// wrapping radio.ErrNoDevice), configures LoRa mode and starts continuous
// receive with DIO0 (required) mapped to RxDone.
func New(port spi.Port, reset gpio.PinOut, dio0 gpio.PinIn, opts *Opts) (*Dev, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if port == nil {
		return nil, fmt.Errorf("%w: no SPI port", ErrInvalidOpts)
	}
	if dio0 == nil || dio0 == gpio.INVALID {
		return nil, fmt.Errorf("%w: no DIO0 pin", ErrInvalidOpts)
	}
	if reset == gpio.INVALID {
		reset = nil
	}
	if err := resolve(&o); err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = port.String()
	}
	d := &Dev{reset: reset, dio0: dio0, o: o, name: name, log: o.Logger, clk: clock.Or(o.Clock), reg: o.Regulator,
		w: make([]byte, 257), r: make([]byte, 257),
		txDone: make(chan struct{}, 1), rx: make(chan radio.Frame, 32), done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.reg == nil {
		var err error
		if d.reg, err = lora.NewRegulator(lora.US915, &lora.RegulatorOpts{FrequencyHz: o.FrequencyHz}); err != nil {
			return nil, err
		}
	}
	if err := d.reg.Tune(o.FrequencyHz); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	d.mtu = lora.MaxFrame
	if dw := d.reg.Region().Dwell(o.Params); dw > 0 {
		d.mtu = o.Params.MaxPayload(dw)
	}
	if d.mtu < 1 {
		return nil, fmt.Errorf("%w: %v leaves no payload within the %v dwell limit of %v", ErrInvalidOpts, o.Params, d.reg.Region().Dwell(o.Params), d.reg.Region())
	}
	c, err := port.Connect(o.SPIMaxHz, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("sx127x: %s: connect: %w", name, err)
	}
	d.c = c
	// DIO0 is a push-pull output of the chip: no bias needed, and not
	// every GPIO driver can set one.
	if err := dio0.In(gpio.PullNoChange, gpio.RisingEdge); err != nil {
		return nil, fmt.Errorf("sx127x: %s: DIO0 %s: %w", name, dio0, err)
	}
	if err := d.init(); err != nil {
		return nil, err
	}
	d.wg.Add(1)
	go d.irqLoop()
	return d, nil
}

func resolve(o *Opts) error {
	if o.FrequencyHz == 0 {
		o.FrequencyHz = 915_000_000
	}
	if o.FrequencyHz < 779_000_000 || o.FrequencyHz > 960_000_000 {
		return fmt.Errorf("%w: frequency %d Hz outside 779..960 MHz", ErrInvalidOpts, o.FrequencyHz)
	}
	o.Params = o.Params.Resolved()
	if err := o.Params.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	if o.Params.SpreadingFactor < 7 {
		return fmt.Errorf("%w: SF%d: the SX1276 runs SF6 only with an implicit header and has no SF5", ErrInvalidOpts, o.Params.SpreadingFactor)
	}
	if o.Params.ImplicitHeader {
		return fmt.Errorf("%w: implicit header not supported (frames carry their length)", ErrInvalidOpts)
	}
	if o.SyncWord == 0 {
		o.SyncWord = 0x12
	}
	if o.PowerDBm == 0 {
		o.PowerDBm = 17
	}
	if o.PowerDBm < 2 || o.PowerDBm > 20 {
		return fmt.Errorf("%w: PA_BOOST power %d dBm not in 2..20", ErrInvalidOpts, o.PowerDBm)
	}
	if o.SPIMaxHz == 0 {
		o.SPIMaxHz = 8 * physic.MegaHertz
	}
	if o.EdgeSlice <= 0 {
		o.EdgeSlice = 20 * time.Millisecond
	}
	if o.TxMargin <= 0 {
		o.TxMargin = 50 * time.Millisecond
	}
	return nil
}

// Frf returns the RegFrf value for a carrier: f·2^19/32 MHz (61.035 Hz steps).
func Frf(hz int) uint32 {
	return uint32((uint64(hz)<<19 + 16_000_000) / 32_000_000)
}

var bwCodes = [...]int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}

// regValue is one step of an initialisation table.
type regValue struct {
	r reg
	v byte
}

// config returns the register table for the resolved options.
func (d *Dev) config() []regValue {
	p := d.o.Params
	bw := 0
	for i, b := range bwCodes {
		if b == p.BandwidthHz {
			bw = i
		}
	}
	mc2 := byte(p.SpreadingFactor << 4)
	if !p.NoCRC {
		mc2 |= crcOn
	}
	mc3 := byte(agcAutoOn)
	if p.LowDataRateOptimize() {
		mc3 |= ldroOn
	}
	pa, dac, ocp := byte(paBoost|paMaxPower|byte(d.o.PowerDBm-2)), byte(paDacNorm), byte(ocp100mA)
	if d.o.PowerDBm > 17 {
		pa, dac, ocp = paBoost|paMaxPower|byte(d.o.PowerDBm-5), paDacHigh, ocp140mA
	}
	frf := Frf(d.o.FrequencyHz)
	return []regValue{
		{regFrfMsb, byte(frf >> 16)},
		{regFrfMid, byte(frf >> 8)},
		{regFrfLsb, byte(frf)},
		{regPaConfig, pa},
		{regPaDac, dac},
		{regOcp, ocp},
		{regLna, lnaMaxGainBoost},
		{regFifoTxBaseAddr, 0}, // whole 256-byte FIFO for either direction
		{regFifoRxBaseAddr, 0},
		{regModemConfig1, byte(bw<<4 | p.CodingRate<<1)}, // explicit header
		{regModemConfig2, mc2},
		{regModemConfig3, mc3},
		{regPreambleMsb, byte(p.PreambleSymbols >> 8)},
		{regPreambleLsb, byte(p.PreambleSymbols)},
		{regMaxPayloadLength, 0xFF},
		{regDetectOptimize, detectOptSF7_12},
		{regDetectionThresh, detectThrSF7_12},
		{regSyncWord, d.o.SyncWord},
		{regIrqFlagsMask, 0},
		{regIrqFlags, irqAll},
	}
}

// init resets the chip, identifies it and configures it for continuous
// receive.
func (d *Dev) init() error {
	if d.reset != nil {
		// NRESET low ≥ 100 µs, then ≥ 5 ms until the chip is ready
		// (datasheet §7.2.2; LoRaMac-node waits 1 ms and 6 ms).
		if err := d.reset.Out(gpio.Low); err != nil {
			return fmt.Errorf("sx127x: %s: reset pin: %w", d.name, err)
		}
		d.pause(time.Millisecond)
		if err := d.reset.Out(gpio.High); err != nil {
			return fmt.Errorf("sx127x: %s: reset pin: %w", d.name, err)
		}
		d.pause(6 * time.Millisecond)
	}
	d.busMu.Lock()
	defer d.busMu.Unlock()
	v, err := d.read(regVersion)
	if err != nil {
		return err
	}
	if v != chipVersion {
		hint := "another chip on this chip select?"
		if v == 0x00 || v == 0xFF {
			hint = "no chip answering: check wiring, chip select and power"
		}
		return fmt.Errorf("%w: sx127x: %s: RegVersion reads 0x%02X, want 0x12 (%s)", radio.ErrNoDevice, d.name, v, hint)
	}
	// LongRangeMode is writable only in sleep.
	if err := d.write(regOpMode, opSleep); err != nil {
		return err
	}
	if err := d.write(regOpMode, opLoRa|opSleep); err != nil {
		return err
	}
	if m, err := d.read(regOpMode); err != nil {
		return err
	} else if m&opLoRa == 0 {
		return fmt.Errorf("%w: sx127x: %s: chip refuses LoRa mode (RegOpMode 0x%02X)", radio.ErrNoDevice, d.name, m)
	}
	if err := d.write(regOpMode, opLoRa|opStandby); err != nil {
		return err
	}
	for _, rv := range d.config() {
		if err := d.write(rv.r, rv.v); err != nil {
			return err
		}
	}
	return d.listenLocked()
}

func (d *Dev) pause(t time.Duration) {
	tm := d.clk.NewTimer(t)
	<-tm.C()
}

// listenLocked maps DIO0 to RxDone and enters continuous receive.
func (d *Dev) listenLocked() error {
	if err := d.write(regDioMapping1, dio0RxDone); err != nil {
		return err
	}
	return d.write(regOpMode, opLoRa|opRxCont)
}

// read returns one register; busMu must be held.
func (d *Dev) read(r reg) (byte, error) {
	d.w[0], d.w[1] = byte(r), 0
	if err := d.c.Tx(d.w[:2], d.r[:2]); err != nil {
		return 0, fmt.Errorf("sx127x: %s: read 0x%02X: %w", d.name, byte(r), err)
	}
	return d.r[1], nil
}

// write sets one register; busMu must be held.
func (d *Dev) write(r reg, v byte) error {
	d.w[0], d.w[1] = byte(r)|spiWrite, v
	if err := d.c.Tx(d.w[:2], d.r[:2]); err != nil {
		return fmt.Errorf("sx127x: %s: write 0x%02X: %w", d.name, byte(r), err)
	}
	return nil
}

// burst reads or writes n FIFO bytes in one chip-select window; busMu must
// be held. The result of a read is in d.r[1:n+1].
func (d *Dev) burst(write bool, data []byte, n int) error {
	d.w[0] = byte(regFifo)
	if write {
		d.w[0] |= spiWrite
		copy(d.w[1:], data)
	} else {
		clear(d.w[1 : n+1])
	}
	if err := d.c.Tx(d.w[:n+1], d.r[:n+1]); err != nil {
		return fmt.Errorf("sx127x: %s: FIFO: %w", d.name, err)
	}
	return nil
}

// Send transmits payload and returns when the chip reports TxDone.
func (d *Dev) Send(ctx context.Context, payload []byte) error {
	if d.isClosed() {
		return radio.ErrClosed
	}
	if len(payload) == 0 || len(payload) > d.mtu {
		return fmt.Errorf("%w: %d bytes, MTU %d at %v", radio.ErrFrameTooLarge, len(payload), d.mtu, d.o.Params)
	}
	d.txMu.Lock()
	defer d.txMu.Unlock()
	now := d.clk.Now()
	toa, err := d.reg.Admit(now, d.o.Params, len(payload))
	if err != nil {
		return fmt.Errorf("sx127x: %s: %w", d.name, err)
	}
	select {
	case <-d.txDone: // a stale completion must not end this transmission
	default:
	}
	d.busMu.Lock()
	err = d.startTx(payload)
	d.busMu.Unlock()
	if err != nil {
		return err
	}
	t := d.clk.NewTimer(toa + toa/2 + d.o.TxMargin)
	defer t.Stop()
	select {
	case <-d.txDone:
		d.mu.Lock()
		d.stats.Sent++
		d.mu.Unlock()
		d.busMu.Lock()
		defer d.busMu.Unlock()
		return d.listenLocked()
	case <-ctx.Done():
		d.abortTx()
		return ctx.Err()
	case <-d.done:
		return radio.ErrClosed
	case <-t.C():
	}
	return d.txTimeout(toa)
}

func (d *Dev) startTx(payload []byte) error {
	steps := []regValue{
		{regOpMode, opLoRa | opStandby},
		{regIrqFlags, irqAll},
		{regFifoAddrPtr, 0},
	}
	for _, s := range steps {
		if err := d.write(s.r, s.v); err != nil {
			return err
		}
	}
	if err := d.burst(true, payload, len(payload)); err != nil {
		return err
	}
	for _, s := range []regValue{
		{regPayloadLength, byte(len(payload))},
		{regDioMapping1, dio0TxDone},
		{regOpMode, opLoRa | opTx},
	} {
		if err := d.write(s.r, s.v); err != nil {
			return err
		}
	}
	return nil
}

// abortTx stops a transmission the caller gave up on and listens again.
func (d *Dev) abortTx() {
	d.busMu.Lock()
	defer d.busMu.Unlock()
	_ = d.write(regOpMode, opLoRa|opStandby)
	_ = d.write(regIrqFlags, irqAll)
	_ = d.listenLocked()
}

// txTimeout handles a transmission whose DIO0 edge did not come in time.
func (d *Dev) txTimeout(toa time.Duration) error {
	d.busMu.Lock()
	flags, err := d.read(regIrqFlags)
	if err == nil && flags&irqTxDone != 0 {
		// The frame left but DIO0 did not tell us: poll from now on.
		_ = d.write(regIrqFlags, irqTxDone)
		err = d.listenLocked()
		d.busMu.Unlock()
		d.mu.Lock()
		first := !d.polling
		d.polling = true
		d.stats.MissedEdges++
		d.stats.Sent++
		d.mu.Unlock()
		if first {
			d.log.Warn("DIO0 raised no edge for TxDone; polling the IRQ flags instead", "pin", d.dio0.String())
		}
		return err
	}
	d.busMu.Unlock()
	d.mu.Lock()
	d.stats.Recoveries++
	d.mu.Unlock()
	d.log.Warn("transmission did not complete, resetting the radio", "airtime_ms", toa.Milliseconds(), "irq_flags", flags)
	if rerr := d.init(); rerr != nil {
		return fmt.Errorf("%w: sx127x: %s: no TxDone within %v, and the reset failed: %w", radio.ErrTimeout, d.name, toa+toa/2+d.o.TxMargin, rerr)
	}
	return fmt.Errorf("%w: sx127x: %s: no TxDone within %v (radio reset)", radio.ErrTimeout, d.name, toa+toa/2+d.o.TxMargin)
}

// Receive returns the next frame received with a valid CRC.
func (d *Dev) Receive(ctx context.Context) (radio.Frame, error) {
	return radio.NextFrame(ctx, d.rx, d.done)
}

// irqLoop waits for DIO0 and services the chip's IRQ flags.
func (d *Dev) irqLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		default:
		}
		edge := d.dio0.WaitForEdge(d.o.EdgeSlice)
		d.mu.Lock()
		polling := d.polling
		d.mu.Unlock()
		if edge || polling {
			d.service()
		}
	}
}

// service reads and clears the IRQ flags and acts on them.
func (d *Dev) service() {
	d.busMu.Lock()
	flags, err := d.read(regIrqFlags)
	if err != nil || flags == 0 {
		d.busMu.Unlock()
		return
	}
	_ = d.write(regIrqFlags, flags)
	var f radio.Frame
	got, crcErr := false, false
	if flags&irqRxDone != 0 {
		if flags&irqPayloadCrcError != 0 {
			crcErr = true
		} else {
			f, got = d.readPacket()
		}
	}
	d.busMu.Unlock()
	if flags&irqTxDone != 0 {
		select {
		case d.txDone <- struct{}{}:
		default:
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if crcErr {
		d.stats.CRCErrors++
	}
	if got {
		select {
		case d.rx <- f:
			d.stats.Received++
		default:
			d.stats.Overflow++
		}
	}
}

// readPacket reads the frame the chip just received; busMu must be held.
func (d *Dev) readPacket() (radio.Frame, bool) {
	n, err := d.read(regRxNbBytes)
	if err != nil || n == 0 {
		return radio.Frame{}, false
	}
	cur, err := d.read(regFifoRxCurrentAddr)
	if err != nil {
		return radio.Frame{}, false
	}
	snrRaw, err1 := d.read(regPktSnrValue)
	rssiRaw, err2 := d.read(regPktRssiValue)
	if err1 != nil || err2 != nil || d.write(regFifoAddrPtr, cur) != nil || d.burst(false, nil, int(n)) != nil {
		return radio.Frame{}, false
	}
	payload := make([]byte, n)
	copy(payload, d.r[1:int(n)+1])
	snr := float64(int8(snrRaw)) / 4
	rssi := rssiOffsetHF + int(rssiRaw) + int(rssiRaw)>>4
	if snr < 0 {
		rssi += int(int8(snrRaw)) / 4
	}
	return radio.Frame{Payload: payload, RSSI: float64(rssi), SNR: snr, Time: d.clk.Now()}, true
}

// MTU is 255 bytes, or less when the dwell limit allows fewer.
func (d *Dev) MTU() int { return d.mtu }

// Airtime is the time on air of an n-byte frame at the configured settings.
func (d *Dev) Airtime(n int) time.Duration { return d.o.Params.TimeOnAir(n) }

// Params returns the modulation settings in use.
func (d *Dev) Params() lora.Params { return d.o.Params }

// Stats returns a snapshot of the counters.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *Dev) String() string { return "sx127x{" + d.name + "}" }

// Halt stops receiving, puts the chip to sleep and joins the IRQ goroutine.
// It is idempotent; the Dev is closed afterwards.
func (d *Dev) Halt() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		d.wg.Wait()
		d.busMu.Lock()
		err = d.write(regOpMode, opLoRa|opSleep)
		d.busMu.Unlock()
	})
	return err
}

// Close is Halt: the SPI port and pins belong to the caller.
func (d *Dev) Close() error { return d.Halt() }

func (d *Dev) isClosed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}
