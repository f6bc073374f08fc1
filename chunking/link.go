package chunking

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/radio"
)

// Opts configure a Link. The zero value works (see EngineOpts); MTU and
// Airtime default to the radio's, CarrierSense to whether it can sense the
// channel, ReplyCheck to 30 s.
type Opts struct {
	EngineOpts
	// Clock is the time source. Nil: the wall clock.
	Clock clock.Clock
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Backlog bounds requests waiting for Serve. Zero: 16; beyond it a
	// request is answered busy: the requester gets ErrPeerBusy.
	Backlog int
}

// Handler answers one request. A returned error reaches the requester as a
// *RemoteError carrying its text, of class ErrHandler.
type Handler func(ctx context.Context, from Addr, req []byte) ([]byte, error)

// Progress reports how far a long request has got, in payload bytes.
type Progress struct {
	Sent, Acked, Total int
}

// RequestOption tunes one Request.
type RequestOption func(*requestOpts) error

type requestOpts struct {
	progress func(Progress)
}

// WithProgress calls fn (from the link's goroutine; it must not block) as
// fragments of the request are sent and acknowledged.
func WithProgress(fn func(Progress)) RequestOption {
	return func(o *requestOpts) error {
		if fn == nil {
			return fmt.Errorf("%w: nil progress callback", ErrInvalidOpts)
		}
		o.progress = fn
		return nil
	}
}

// ErrClosed is returned by calls on a closed Link.
var ErrClosed = errors.New("chunking: link closed")

// Link runs the protocol over a radio: Request sends a request to a peer
// and waits for its reply, Serve answers the requests peers send.
type Link struct {
	r     radio.Radio
	self  Addr
	clk   clock.Clock
	log   *slog.Logger
	cs    radio.CarrierSenser
	stop  context.CancelFunc
	ctx   context.Context
	wg    sync.WaitGroup
	once  sync.Once
	wake  chan struct{}
	rx    chan radio.Frame
	txc   chan []byte
	txErr chan error
	reqs  chan incoming

	mu       sync.Mutex // guards e, waiters and drainers
	e        *Engine
	waiters  map[MsgID]*waiter
	drainers []drainer
}

type waiter struct {
	done     chan Event
	progress func(Progress)
}

type incoming struct {
	id     MsgID
	from   Addr
	data   []byte
	oneWay bool
}

// New starts a link for the radio at address self; psk is the link's
// pre-shared key (at least 16 bytes). Close stops it.
func New(r radio.Radio, self Addr, psk []byte, opts *Opts) (*Link, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.MTU == 0 {
		o.MTU = r.MTU()
	}
	if o.Airtime == nil {
		if at, ok := r.(radio.Airtimer); ok {
			o.Airtime = at.Airtime
		}
	}
	if _, ok := r.(radio.CarrierSenser); ok {
		o.CarrierSense = true
	}
	if o.ReplyCheck == 0 {
		o.ReplyCheck = 30 * time.Second
	}
	if o.Backlog == 0 {
		o.Backlog = 16
	}
	e, err := NewEngine(self, psk, &o.EngineOpts)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Link{r: r, self: self, clk: clock.Or(o.Clock), log: log, ctx: ctx, stop: stop, e: e,
		wake: make(chan struct{}, 1), rx: make(chan radio.Frame, 16), txc: make(chan []byte),
		txErr: make(chan error, 1), reqs: make(chan incoming, o.Backlog), waiters: map[MsgID]*waiter{}}
	l.cs, _ = r.(radio.CarrierSenser)
	l.wg.Add(3)
	go l.receive()
	go l.transmit()
	go l.loop()
	return l, nil
}

func (l *Link) String() string { return fmt.Sprintf("chunking.Link{%d}", l.self) }

// Stats returns the link's frame counters.
func (l *Link) Stats() EngineStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.Stats()
}

// Close stops the link's goroutines (not the radio) and fails pending
// requests with ErrClosed. It is idempotent.
func (l *Link) Close() error {
	l.once.Do(func() {
		l.stop()
		l.wg.Wait()
	})
	return nil
}

func (l *Link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Request sends payload to peer and waits for the reply. Stats describe the
// exchange. A failure wraps one of the classes ErrUnreachable, ErrPeerBusy,
// ErrRefused or ErrHandler when the peer is the cause (a handler failure is
// a *RemoteError), or ErrTooLarge, ErrUnknownPeer, ErrClosed, the radio's or
// the context's error. Once the peer
// has the whole request, the peer drives the reply (and retries it); ctx
// bounds the whole exchange, the handler's run time included.
func (l *Link) Request(ctx context.Context, peer Addr, payload []byte, opts ...RequestOption) ([]byte, Stats, error) {
	var ro requestOpts
	for _, fn := range opts {
		if err := fn(&ro); err != nil {
			return nil, Stats{}, err
		}
	}
	ev, err := l.exchange(ctx, peer, payload, false, ro)
	if err != nil {
		return nil, ev.Stats, err
	}
	return ev.Data, ev.Stats, ev.Err
}

// Send delivers a one-way message to peer and waits for its
// acknowledgement.
func (l *Link) Send(ctx context.Context, peer Addr, payload []byte, opts ...RequestOption) (Stats, error) {
	var ro requestOpts
	for _, fn := range opts {
		if err := fn(&ro); err != nil {
			return Stats{}, err
		}
	}
	ev, err := l.exchange(ctx, peer, payload, true, ro)
	return ev.Stats, err
}

func (l *Link) exchange(ctx context.Context, peer Addr, payload []byte, oneWay bool, ro requestOpts) (Event, error) {
	if l.ctx.Err() != nil {
		return Event{}, ErrClosed
	}
	w := &waiter{done: make(chan Event, 1), progress: ro.progress}
	l.mu.Lock()
	// The caller's deadline is how long the message may sit out a fade; the
	// engine runs on the link's clock, the context on the wall clock.
	now := l.clk.Now()
	var until time.Time
	if d, ok := ctx.Deadline(); ok {
		until = now.Add(time.Until(d))
	}
	id, err := l.e.SendUntil(now, peer, payload, oneWay, until)
	if err == nil {
		l.waiters[id] = w
	}
	l.mu.Unlock()
	if err != nil {
		return Event{}, err
	}
	l.poke()
	select {
	case ev := <-w.done:
		if ev.Kind == EventFailed {
			return ev, ev.Err
		}
		return ev, nil
	case <-ctx.Done():
		l.mu.Lock()
		l.e.Cancel(l.clk.Now(), id)
		delete(l.waiters, id)
		l.mu.Unlock()
		l.poke()
		return Event{}, fmt.Errorf("chunking: request to %d: %w", peer, ctx.Err())
	case <-l.ctx.Done():
		return Event{}, ErrClosed
	}
}

// Serve answers requests with handler until ctx ends (it then returns nil)
// or the link is closed (ErrClosed). Handlers run concurrently, one per
// request; a request repeated by its sender is answered from the reply
// cache without running the handler again. One-way messages go to the
// handler too; its answer is discarded.
func (l *Link) Serve(ctx context.Context, handler Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.ctx.Done():
			return ErrClosed
		case in := <-l.reqs:
			wg.Add(1)
			go func() {
				defer wg.Done()
				ans, err := handler(ctx, in.from, in.data)
				if in.oneWay {
					return
				}
				herr := false
				if err != nil {
					ans, herr = []byte(err.Error()), true
				}
				l.mu.Lock()
				if err := l.e.Reply(l.clk.Now(), in.id, ans, herr); err != nil {
					l.log.Debug("reply dropped", "peer", in.from, "err", err)
				}
				l.mu.Unlock()
				l.poke()
			}()
		}
	}
}

func (l *Link) receive() {
	defer l.wg.Done()
	for {
		f, err := l.r.Receive(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, radio.ErrClosed) {
				return
			}
			l.log.Warn("radio receive failed", "err", err)
			t := l.clk.NewTimer(100 * time.Millisecond)
			select {
			case <-l.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			continue
		}
		select {
		case l.rx <- f:
		case <-l.ctx.Done():
			return
		}
	}
}

func (l *Link) transmit() {
	defer l.wg.Done()
	for {
		select {
		case f := <-l.txc:
			l.txErr <- l.r.Send(l.ctx, f)
		case <-l.ctx.Done():
			return
		}
	}
}

// loop owns the engine's I/O: frames in, frames out, timers, events.
func (l *Link) loop() {
	defer l.wg.Done()
	timer := l.clk.NewTimer(time.Hour)
	defer timer.Stop()
	txBusy := false
	// backoff holds frames while the channel is busy (listen before talk);
	// pause holds them after the radio refused one.
	var backoff, pause time.Time
	defer l.failAll()
	for {
		l.mu.Lock()
		now := l.clk.Now()
		if d, ok := l.e.Deadline(); ok && !d.After(now) {
			l.e.Tick(now)
		}
		evs := l.events()
		settleAt := l.releaseDrainers(now)
		ready := !txBusy && !now.Before(backoff) && !now.Before(pause) && l.e.Ready(now)
		l.mu.Unlock()
		l.dispatch(evs)
		if ready {
			busy := false
			if l.cs != nil {
				busy, _ = l.cs.ChannelBusy(l.ctx)
			}
			l.mu.Lock()
			if busy {
				backoff = now.Add(l.e.Backoff())
			} else if f := l.e.NextFrame(l.clk.Now()); f != nil {
				txBusy = true
				l.mu.Unlock()
				select {
				case l.txc <- f:
				case <-l.ctx.Done():
					return
				}
				continue
			}
			l.mu.Unlock()
		}
		l.mu.Lock()
		next, ok := l.e.Deadline()
		l.mu.Unlock()
		hold := backoff
		if pause.After(hold) {
			hold = pause
		}
		// Against the same now as ready: a hold that ended since then
		// kept this pass from sending, and still needs its wake-up.
		if hold.After(now) && (!ok || hold.After(next)) {
			// Due frames held back by a busy channel (or a refusing radio)
			// wait for the hold to end. The engine may have no deadline of
			// its own, since to it they are due now, and nothing may be
			// received to wake the loop: the station we deferred to may
			// have left the air mid-frame.
			next, ok = hold, true
		}
		if !settleAt.IsZero() && (!ok || settleAt.Before(next)) {
			// A Drain waits for a peer's chance to ask again: no frame
			// may come to wake the loop.
			next, ok = settleAt, true
		}
		wait := time.Hour
		if ok {
			wait = max(next.Sub(l.clk.Now()), 0)
		}
		timer.Stop()
		timer.Reset(wait)
		select {
		case <-l.ctx.Done():
			return
		case f := <-l.rx:
			l.mu.Lock()
			acc := l.e.Stats().Accepted
			l.e.Receive(l.clk.Now(), f.Payload, f.RSSI, f.SNR)
			if l.e.Stats().Accepted > acc {
				// The transmission we backed off from was our peer's, and it
				// has ended: the answer it calls for goes after the
				// turnaround, not after a random back-off.
				backoff = time.Time{}
			}
			l.mu.Unlock()
		case err := <-l.txErr:
			txBusy = false
			if err != nil {
				// The frame did not go out; the protocol recovers it like a
				// lost one. Do not hammer a radio that refuses: a spent
				// duty-cycle budget takes a while to come back.
				d := time.Second
				if errors.Is(err, radio.ErrDutyCycle) {
					d = 10 * time.Second
				}
				pause = l.clk.Now().Add(d)
				l.log.Warn("radio send failed", "err", err)
			}
			l.mu.Lock()
			l.e.TxDone(l.clk.Now(), err)
			l.mu.Unlock()
		case <-timer.C():
		case <-l.wake:
		}
	}
}

// events collects the engine's events; the caller holds mu.
func (l *Link) events() []Event {
	var evs []Event
	for ev, ok := l.e.Event(); ok; ev, ok = l.e.Event() {
		evs = append(evs, ev)
	}
	return evs
}

func (l *Link) dispatch(evs []Event) {
	for _, ev := range evs {
		switch ev.Kind {
		case EventRequest:
			select {
			case l.reqs <- incoming{id: ev.ID, from: ev.Peer, data: ev.Data}:
			default:
				l.mu.Lock()
				l.e.Busy(l.clk.Now(), ev.ID)
				l.mu.Unlock()
			}
		case EventMessage:
			select {
			case l.reqs <- incoming{id: ev.ID, from: ev.Peer, data: ev.Data, oneWay: true}:
			default:
				l.log.Warn("one-way message dropped: backlog full", "peer", ev.Peer)
			}
		case EventProgress:
			l.mu.Lock()
			w := l.waiters[ev.ID]
			l.mu.Unlock()
			if w != nil && w.progress != nil {
				w.progress(Progress{Sent: ev.Sent, Acked: ev.Acked, Total: ev.Total})
			}
		case EventReply, EventDelivered, EventFailed:
			if ev.Err != nil {
				l.log.Debug("exchange ended with an error", "peer", ev.Peer, "err", ev.Err,
					"frames", ev.Stats.Frames, "retries", ev.Stats.Retries, "airtime_ms", ev.Stats.Airtime.Milliseconds())
			}
			l.mu.Lock()
			w := l.waiters[ev.ID]
			delete(l.waiters, ev.ID)
			l.mu.Unlock()
			if w != nil {
				w.done <- ev
			}
		}
	}
}

func (l *Link) failAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, w := range l.waiters {
		w.done <- Event{Kind: EventFailed, ID: id, Err: ErrClosed}
		delete(l.waiters, id)
	}
}
