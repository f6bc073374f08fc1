// Package chunkbench adapts the chunking engine to the linkbench harness,
// so the nexfield link is measured on the same simulated air, in the same
// runs, as the baselines.
package chunkbench

import (
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/linkbench"
	"github.com/nexfield/nexfield/radio/lora"
)

// Scheme is the nexfield link as a linkbench.Scheme. Every message is sent
// as a request: an answer from the application (the harness's Exchange)
// becomes the reply and doubles as the acknowledgement; without one (the
// harness's Transfer) the receiver acknowledges the complete request.
type Scheme struct {
	// Label overrides the name in tables (zero: "nexfield").
	Label string
	// Opts are the engine options; Airtime and Seed are filled in.
	Opts chunking.EngineOpts
}

// Name implements linkbench.Scheme.
func (s Scheme) Name() string {
	if s.Label != "" {
		return s.Label
	}
	return "nexfield"
}

// Params implements linkbench.Scheme: the link uses the bench's settings.
func (s Scheme) Params(base lora.Params) lora.Params { return base }

var psk = []byte("nexfield-linkbench-pre-shared-key")

// NewPair implements linkbench.Scheme: radio 1 (a) and radio 2 (b).
func (s Scheme) NewPair(seed uint64) (linkbench.Endpoint, linkbench.Endpoint, error) {
	return &Endpoint{opts: s.Opts, self: 1, peer: 2, seed: seed}, &Endpoint{opts: s.Opts, self: 2, peer: 1, seed: seed ^ 0x9e3779b97f4a7c15}, nil
}

// Timer ids.
const (
	timerTx = iota + 1
	timerEngine
	timerBackoff
)

// Endpoint drives one chunking.Engine from the harness's callbacks: the
// adapter is the whole "I/O layer", about forty lines.
type Endpoint struct {
	opts       chunking.EngineOpts
	self, peer chunking.Addr
	seed       uint64
	e          *chunking.Engine
	txBusy     bool
	backoff    bool
	backoffEnd time.Time
	req        chunking.MsgID // the last request delivered, answered by the next Send
	haveReq    bool
	// Err is the last engine error (construction or send).
	Err error
}

func (p *Endpoint) engine(env linkbench.Env) *chunking.Engine {
	if p.e == nil && p.Err == nil {
		o := p.opts
		o.Airtime = env.Airtime
		o.Seed = p.seed
		o.CarrierSense = true // the harness's Env.ChannelBusy
		o.Peers = []chunking.Addr{p.peer}
		p.e, p.Err = chunking.NewEngine(p.self, psk, &o)
	}
	return p.e
}

// Send implements linkbench.Endpoint.
func (p *Endpoint) Send(env linkbench.Env, msg []byte) {
	e := p.engine(env)
	if e == nil {
		env.Fail(p.Err)
		return
	}
	if p.haveReq {
		p.haveReq = false
		if err := e.Reply(env.Now(), p.req, msg, false); err != nil {
			env.Fail(err)
		}
	} else if _, err := e.Send(env.Now(), p.peer, msg, false); err != nil {
		env.Fail(err)
	}
	p.pump(env)
}

// OnFrame implements linkbench.Endpoint.
func (p *Endpoint) OnFrame(env linkbench.Env, frame []byte) {
	if e := p.engine(env); e != nil {
		acc := e.Stats().Accepted
		e.Receive(env.Now(), frame, 0, 0)
		if p.backoff && e.Stats().Accepted > acc {
			// The channel was busy with our peer, whose frame has ended:
			// answer after the turnaround, not after the back-off.
			p.backoff = false
			env.StopTimer(timerBackoff)
		}
		p.pump(env)
	}
}

// OnTimer implements linkbench.Endpoint.
func (p *Endpoint) OnTimer(env linkbench.Env, id int) {
	e := p.engine(env)
	if e == nil {
		return
	}
	switch id {
	case timerTx:
		p.txBusy = false
		e.TxDone(env.Now(), nil)
	case timerBackoff:
		p.backoff = false
	case timerEngine:
		e.Tick(env.Now())
	}
	p.pump(env)
}

func (p *Endpoint) pump(env linkbench.Env) {
	e := p.e
	now := env.Now()
	for {
		ev, ok := e.Event()
		if !ok {
			break
		}
		switch ev.Kind {
		case chunking.EventRequest:
			p.req, p.haveReq = ev.ID, true
			env.Deliver(ev.Data)
		case chunking.EventMessage, chunking.EventReply:
			env.Deliver(ev.Data)
		case chunking.EventFailed:
			env.Fail(ev.Err)
		}
	}
	if !p.txBusy && !p.backoff && e.Ready(now) {
		if env.ChannelBusy() {
			d := e.Backoff()
			p.backoff, p.backoffEnd = true, now.Add(d)
			env.SetTimer(timerBackoff, d)
		} else if f := e.NextFrame(now); f != nil {
			end, err := env.Transmit(f)
			if err != nil {
				e.TxDone(now, err)
			} else {
				p.txBusy = true
				env.SetTimer(timerTx, end.Sub(now))
			}
		}
	}
	if t, ok := e.Deadline(); ok {
		if p.backoff && t.Before(p.backoffEnd) {
			// Due frames held back by a busy channel wait for the back-off.
			t = p.backoffEnd
		}
		env.SetTimer(timerEngine, max(t.Sub(now), 0))
	} else {
		env.StopTimer(timerEngine)
	}
}

var _ linkbench.Scheme = Scheme{}
