package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// Air is the channel for goroutine-based code. Its time is the time
// package's, so it runs in real time in production-like tests and demos,
// and in virtual time inside a testing/synctest bubble (create the Air
// inside the bubble). It is safe for concurrent use.
type Air struct {
	mu  sync.Mutex
	air *air
}

// NewAir returns an Air with no radios. Opts.Start is ignored.
func NewAir(opts *Opts) (*Air, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return &Air{air: newAir(o.Params, o.Channel, o.Seed)}, nil
}

// RadioOpts configures one simulated radio. The zero value is usable.
type RadioOpts struct {
	// Name identifies the radio in String() and logs ("" means "node").
	Name string
	// Region is enforced on Send: frames over the dwell limit or the
	// duty-cycle budget are refused (zero: RegionNone).
	Region lora.Region
	// FrequencyHz picks the EU868 sub-band (0: 868.1 MHz).
	FrequencyHz int
	// QueueLen is the receive queue length; frames arriving while it is
	// full are dropped as a real modem's FIFO would (0 means 64).
	QueueLen int
	// RSSI and SNR are reported on received frames (0 means -90 dBm, 7 dB).
	RSSI, SNR float64
	// Logger receives debug events (nil: discard).
	Logger *slog.Logger
}

// Radio is a simulated LoRa radio on an Air or a Hub. It implements
// radio.Radio, radio.Airtimer and radio.CarrierSenser.
type Radio struct {
	name   string
	params lora.Params
	reg    *lora.Regulator
	mtu    int
	rssi   float64
	snr    float64
	log    *slog.Logger

	inbox     chan radio.Frame
	closed    chan struct{}
	closeOnce sync.Once
	sendMu    sync.Mutex // one transmission at a time
	txEnd     time.Time  // when the last frame leaves; guarded by sendMu

	port port
}

var (
	_ radio.Radio         = (*Radio)(nil)
	_ radio.Airtimer      = (*Radio)(nil)
	_ radio.CarrierSenser = (*Radio)(nil)
)

// port is what a Radio needs from the medium behind it.
type port interface {
	// transmit puts payload on the air now and returns its time on air.
	transmit(payload []byte) (time.Duration, error)
	busy() bool
	stats() Stats
	close() error
}

func newRadio(p lora.Params, o *RadioOpts) (*Radio, error) {
	var ro RadioOpts
	if o != nil {
		ro = *o
	}
	if ro.Name == "" {
		ro.Name = "node"
	}
	if ro.QueueLen < 0 {
		return nil, fmt.Errorf("%w: negative queue length", ErrInvalidOpts)
	}
	if ro.QueueLen == 0 {
		ro.QueueLen = 64
	}
	if ro.RSSI == 0 {
		ro.RSSI = -90
	}
	if ro.SNR == 0 {
		ro.SNR = 7
	}
	reg, err := lora.NewRegulator(ro.Region, &lora.RegulatorOpts{FrequencyHz: ro.FrequencyHz})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	mtu := p.MaxPayload(ro.Region.Dwell(p))
	if mtu < 0 {
		return nil, fmt.Errorf("%w: no frame fits the %v dwell limit at %v", ErrInvalidOpts, ro.Region, p)
	}
	log := ro.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Radio{
		name: ro.Name, params: p, reg: reg, mtu: mtu, rssi: ro.RSSI, snr: ro.SNR, log: log,
		inbox: make(chan radio.Frame, ro.QueueLen), closed: make(chan struct{}),
	}, nil
}

// NewRadio attaches a radio to the air.
func (a *Air) NewRadio(opts *RadioOpts) (*Radio, error) {
	r, err := newRadio(a.air.params, opts)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	st := a.air.addStation(r.name)
	st.owner = r
	a.mu.Unlock()
	r.port = &airPort{a: a, st: st, r: r}
	return r, nil
}

func (r *Radio) String() string { return "sim.Radio{" + r.name + "}" }

// MTU is the largest frame: 255 bytes, or less when the region's dwell
// limit is shorter than a 255-byte frame at the medium's settings.
func (r *Radio) MTU() int { return r.mtu }

// Params are the medium's modulation settings.
func (r *Radio) Params() lora.Params { return r.params }

// Airtime is the time on air of an n-byte frame.
func (r *Radio) Airtime(n int) time.Duration { return r.params.TimeOnAir(n) }

// Stats returns the radio's counters.
func (r *Radio) Stats() Stats { return r.port.stats() }

// Send transmits payload and returns once it has left the antenna (its time
// on air later). If ctx ends during the transmission the frame still
// completes on the air, as a real modem's would, and Send returns ctx.Err().
func (r *Radio) Send(ctx context.Context, payload []byte) error {
	if len(payload) > r.mtu {
		return fmt.Errorf("sim: %s: %w: %d > %d bytes", r.name, radio.ErrFrameTooLarge, len(payload), r.mtu)
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	select {
	case <-r.closed:
		return radio.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	// A Send cancelled mid-frame left the frame on the air: wait for it.
	if d := time.Until(r.txEnd); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-r.closed:
			t.Stop()
			return radio.ErrClosed
		}
	}
	if _, err := r.reg.Admit(time.Now(), r.params, len(payload)); err != nil {
		return fmt.Errorf("sim: %s: %w", r.name, err)
	}
	toa, err := r.port.transmit(append([]byte(nil), payload...))
	if err != nil {
		return fmt.Errorf("sim: %s: %w", r.name, err)
	}
	r.txEnd = time.Now().Add(toa)
	r.log.Debug("frame sent", "len", len(payload), "airtime_ms", toa.Milliseconds())
	t := time.NewTimer(toa)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closed:
		return radio.ErrClosed
	}
}

// Receive returns the next frame.
func (r *Radio) Receive(ctx context.Context) (radio.Frame, error) {
	select {
	case f := <-r.inbox:
		return f, nil
	case <-r.closed:
		return radio.Frame{}, radio.ErrClosed
	case <-ctx.Done():
		return radio.Frame{}, ctx.Err()
	}
}

// ChannelBusy reports whether another radio is transmitting.
func (r *Radio) ChannelBusy(ctx context.Context) (bool, error) {
	select {
	case <-r.closed:
		return false, radio.ErrClosed
	case <-ctx.Done():
		return false, ctx.Err()
	default:
	}
	return r.port.busy(), nil
}

// Close takes the radio off the air. It is idempotent.
func (r *Radio) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed)
		err = r.port.close()
	})
	return err
}

// push queues a received frame without blocking; it reports false when the
// queue was full or the radio closed.
func (r *Radio) push(f radio.Frame) bool {
	select {
	case <-r.closed:
		return false
	default:
	}
	select {
	case r.inbox <- f:
		return true
	default:
		return false
	}
}

type airPort struct {
	a  *Air
	st *station
	r  *Radio
}

func (p *airPort) transmit(payload []byte) (time.Duration, error) {
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.air.onAir(p.st) {
		return 0, radio.ErrClosed
	}
	tx := a.air.startTx(p.st, payload, time.Now())
	toa := tx.end.Sub(tx.start)
	time.AfterFunc(toa, func() {
		a.mu.Lock()
		ds := a.air.endTx(tx)
		a.mu.Unlock()
		for _, d := range ds {
			a.deliver(d)
		}
	})
	return toa, nil
}

func (a *Air) deliver(d delivery) {
	a.mu.Lock()
	var to *Radio
	for _, s := range a.air.stations {
		if s == d.to {
			to = s.owner.(*Radio)
		}
	}
	a.mu.Unlock()
	if to == nil {
		return
	}
	push := func() {
		ok := to.push(radio.Frame{Payload: d.payload, RSSI: to.rssi, SNR: to.snr, Time: time.Now()})
		a.mu.Lock()
		if ok {
			d.to.stats.Received++
		} else {
			d.to.stats.Overflow++
		}
		a.mu.Unlock()
	}
	if d.delay == 0 {
		push()
		return
	}
	time.AfterFunc(d.delay, push)
}

func (p *airPort) busy() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	return p.a.air.busy(p.st, time.Now())
}

func (p *airPort) stats() Stats {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	return p.st.stats
}

func (p *airPort) close() error {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	p.a.air.removeStation(p.st)
	return nil
}
