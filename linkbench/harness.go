package linkbench

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// Env is what an endpoint can do. Calls are only valid from inside the
// endpoint's callbacks.
type Env interface {
	// Now is the virtual time.
	Now() time.Time
	// Transmit queues frame on the radio (sent at once if the radio is
	// idle, else right after the frames already queued) and returns when it
	// will have left the antenna.
	Transmit(frame []byte) (time.Time, error)
	// SetTimer arms timer id to fire after d, replacing an armed one.
	SetTimer(id int, d time.Duration)
	// StopTimer disarms timer id.
	StopTimer(id int)
	// Airtime is the time on air of an n-byte frame from this endpoint.
	Airtime(n int) time.Duration
	// ChannelBusy reports whether the peer is transmitting.
	ChannelBusy() bool
	// Deliver hands a whole received message to the application.
	Deliver(msg []byte)
	// Fail reports that the endpoint gave up on the message it was sending.
	Fail(err error)
}

// Endpoint is one side of a link scheme, written sans-IO.
type Endpoint interface {
	// Send asks the endpoint to transfer msg to its peer.
	Send(env Env, msg []byte)
	// OnFrame is called for every frame the radio receives.
	OnFrame(env Env, frame []byte)
	// OnTimer is called when timer id fires.
	OnTimer(env Env, id int)
}

// Scheme is a link protocol under test.
type Scheme interface {
	// Name is a short label for tables ("schc", "meshtastic", "nexfield").
	Name() string
	// Params returns the PHY settings the scheme transmits with, given the
	// bench's (a scheme may use a longer preamble, say).
	Params(base lora.Params) lora.Params
	// NewPair returns the two endpoints of one link, a (initiator) and b.
	NewPair(seed uint64) (a, b Endpoint, err error)
}

// Config is one bench run's setting.
type Config struct {
	// Params is the PHY setting (zero: SF7/BW125/CR4/5, 8-symbol preamble).
	Params lora.Params
	// Channel is the channel model, applied in both directions.
	Channel sim.Channel
	// Seed seeds the channel and the endpoints.
	Seed uint64
	// Horizon bounds a run in virtual time (0: 12 h); a message not
	// delivered by then counts as failed.
	Horizon time.Duration
}

// Result is the outcome of one run.
type Result struct {
	// OK is true when every message arrived once, intact.
	OK bool
	// Delivered is the application bytes delivered intact.
	Delivered int
	// Airtime is the time on air of every frame, both directions.
	Airtime time.Duration
	// Frames is the number of frames transmitted, both directions.
	Frames int
	// Elapsed is the virtual time from the first send to the last event.
	Elapsed time.Duration
	// Err is why the run failed (nil when OK).
	Err error
}

// Errors a Result may carry.
var (
	ErrNotDelivered = errors.New("linkbench: message not delivered")
	ErrCorrupted    = errors.New("linkbench: message delivered with wrong content")
	ErrDuplicate    = errors.New("linkbench: message delivered more than once")
)

type env struct {
	m      *sim.Medium
	node   *sim.Node
	ep     Endpoint
	timers map[int]*sim.Timer
	got    [][]byte
	failed error
	onMsg  func(msg []byte)
}

func (e *env) Now() time.Time                       { return e.m.Now() }
func (e *env) Transmit(f []byte) (time.Time, error) { return e.node.Transmit(f) }
func (e *env) Airtime(n int) time.Duration          { return e.node.Airtime(n) }
func (e *env) ChannelBusy() bool                    { return e.node.ChannelBusy() }
func (e *env) Fail(err error)                       { e.failed = err }

func (e *env) SetTimer(id int, d time.Duration) {
	e.timers[id].Stop()
	e.timers[id] = e.m.AfterFunc(d, func() {
		delete(e.timers, id)
		e.ep.OnTimer(e, id)
	})
}

func (e *env) StopTimer(id int) {
	e.timers[id].Stop()
	delete(e.timers, id)
}

func (e *env) Deliver(msg []byte) {
	e.got = append(e.got, append([]byte(nil), msg...))
	if e.onMsg != nil {
		m := append([]byte(nil), msg...)
		// The answer is produced after the callback returns, as an
		// application would.
		e.m.AfterFunc(0, func() { e.onMsg(m) })
	}
}

type pair struct {
	m    *sim.Medium
	a, b *env
}

func newPair(s Scheme, cfg Config) (*pair, error) {
	m, err := sim.NewMedium(&sim.Opts{Params: cfg.Params, Channel: cfg.Channel, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	ea, eb, err := s.NewPair(cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("linkbench: %s: %w", s.Name(), err)
	}
	p := &pair{m: m}
	mk := func(name string, ep Endpoint) (*env, error) {
		e := &env{m: m, ep: ep, timers: map[int]*sim.Timer{}}
		e.node = m.AddNode(name, func(f radio.Frame) { ep.OnFrame(e, f.Payload) })
		if err := e.node.SetParams(s.Params(m.Params())); err != nil {
			return nil, err
		}
		return e, nil
	}
	if p.a, err = mk("a", ea); err != nil {
		return nil, err
	}
	if p.b, err = mk("b", eb); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pair) run(cfg Config) Result {
	h := cfg.Horizon
	if h == 0 {
		h = 12 * time.Hour
	}
	start := p.m.Now()
	p.m.Run(start.Add(h))
	sa, sb := p.a.node.Stats(), p.b.node.Stats()
	return Result{
		Airtime: sa.TxAirtime + sb.TxAirtime,
		Frames:  sa.TxFrames + sb.TxFrames,
		Elapsed: p.m.Now().Sub(start),
	}
}

func check(got [][]byte, want []byte) error {
	switch {
	case len(got) == 0:
		return ErrNotDelivered
	case len(got) > 1:
		return ErrDuplicate
	case !bytes.Equal(got[0], want):
		return ErrCorrupted
	}
	return nil
}

// Transfer runs one transfer of msg from a to b.
func Transfer(s Scheme, cfg Config, msg []byte) Result {
	p, err := newPair(s, cfg)
	if err != nil {
		return Result{Err: err}
	}
	p.a.ep.Send(p.a, msg)
	r := p.run(cfg)
	r.Err = check(p.b.got, msg)
	if r.Err == nil {
		r.OK, r.Delivered = true, len(msg)
	} else if p.a.failed != nil {
		r.Err = fmt.Errorf("%w: %w", r.Err, p.a.failed)
	}
	return r
}

// Exchange runs one request from a to b answered by b with reply; the
// Result counts both messages.
func Exchange(s Scheme, cfg Config, req, reply []byte) Result {
	p, err := newPair(s, cfg)
	if err != nil {
		return Result{Err: err}
	}
	p.b.onMsg = func([]byte) { p.b.ep.Send(p.b, reply) }
	p.a.ep.Send(p.a, req)
	r := p.run(cfg)
	errReq, errRep := check(p.b.got, req), check(p.a.got, reply)
	if errReq == nil {
		r.Delivered += len(req)
	}
	if errRep == nil {
		r.Delivered += len(reply)
	}
	r.Err = errors.Join(errReq, errRep)
	r.OK = r.Err == nil
	return r
}

// PHYLimit is the payload rate, in bytes per second of airtime, of 255-byte
// frames back to back at p with an 8-symbol preamble.
func PHYLimit(p lora.Params) float64 {
	p.PreambleSymbols = 8
	return lora.MaxFrame / p.TimeOnAir(lora.MaxFrame).Seconds()
}
