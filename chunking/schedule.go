package chunking

import (
	"fmt"
	"time"
)

// txItem is one frame queued for a peer: a sealed control frame, or a
// fragment of a message, sealed when it goes out.
type txItem struct {
	p         *peer
	notBefore time.Time
	frame     []byte // a sealed control frame, or nil for a fragment of x
	x         *xfer
	idx       int
	poll      bool
	solicit   bool // an answer is expected: stay quiet after sending
	retry     bool
	finalRack bool // the final RACK of a reply, which our next message makes redundant
	// settles: a final acknowledgement, which nobody answers; a peer that
	// lost it asks again within this long.
	settles time.Duration
	st      *Stats
}

// sched is the transmit side the peers share: one radio, one channel.
type sched struct {
	tx       *txItem // handed out by NextFrame, on the air until TxDone
	quiet    quiet
	rr       int   // round-robin cursor into Engine.order
	bulkPeer *peer // whose burst is going out: it ends before another's starts
}

// quiet is a window in which the engine keeps off the air because a frame
// is due from a peer: the answer to a frame that asked for one, or the rest
// of the peer's burst. A half-duplex radio that transmits hears nothing.
type quiet struct {
	until time.Time
	from  *peer
}

// expect keeps quiet until t for a frame from p.
func (q *quiet) expect(t time.Time, p *peer) { q.until, q.from = t, p }

// release ends the window if it waits for p: what p had to send has come,
// or no longer matters.
func (q *quiet) release(p *peer) {
	if q.from == p {
		*q = quiet{}
	}
}

// expire ends a window that has passed.
func (q *quiet) expire(now time.Time) {
	if passed(now, q.until) {
		*q = quiet{}
	}
}

// passed reports whether the timer t is set and due at now.
func passed(now, t time.Time) bool { return !t.IsZero() && !now.Before(t) }

// earliest collects the soonest of the timers it is given; unset (zero)
// ones do not count.
type earliest struct{ t time.Time }

func (e *earliest) add(t time.Time) {
	if !t.IsZero() && (e.t.IsZero() || t.Before(e.t)) {
		e.t = t
	}
}

// live reports whether it is still worth sending.
func (it *txItem) live() bool {
	x := it.x
	if x == nil {
		return true
	}
	if x.state == xDone || (x.owner != nil && x.owner.state == oDone) {
		return false
	}
	if x.reply && (it.p.in == nil || it.p.in.rx != x || it.p.in.state == inDead) {
		return false
	}
	return it.frame != nil || !x.acked[it.idx]
}

// size is the length of its frame; overhead is the header and tag of a
// fragment.
func (it *txItem) size(overhead int) int {
	if it.frame != nil {
		return len(it.frame)
	}
	x := it.x
	if x.data == nil {
		return overhead + x.frag // retired while on the air
	}
	return overhead + min(x.frag, len(x.data)-it.idx*x.frag)
}

// Ready reports whether a frame is waiting to be transmitted now.
func (e *Engine) Ready(now time.Time) bool { return e.pick(now, false) != nil }

// NextFrame returns the frame to transmit now, or nil. Call it when the
// radio is idle (and, with carrier sense, the channel is clear), transmit
// the frame, then call TxDone.
func (e *Engine) NextFrame(now time.Time) []byte {
	it := e.pick(now, true)
	if it == nil {
		return nil
	}
	e.tx = it
	if it.frame != nil {
		if it.x != nil && it.solicit {
			it.x.asked(now)
		}
		return it.frame
	}
	x := it.x
	if it.poll {
		x.asked(now)
	}
	h, d := x.fragment(it.idx, it.poll)
	return it.p.sealFrame(h, x.counter, d)
}

// pick chooses the next frame: answers and replies first, then our own
// bursts, one peer's burst at a time, peers served round robin.
func (e *Engine) pick(now time.Time, take bool) *txItem {
	if e.tx != nil || now.Before(e.quiet.until) {
		return nil
	}
	n := len(e.order)
	// prune drops dead items; if the one that was to ask for an ACK is
	// dropped, the last live fragment of its burst asks instead.
	prune := func(q *[]*txItem) {
		for len(*q) > 0 && !(*q)[0].live() {
			it := (*q)[0]
			*q = (*q)[1:]
			if it.poll && it.x != nil && it.x.state == xSending && (it.x.owner == nil || it.x.owner.state != oDone) {
				last := -1
				for i, o := range *q {
					if o.x == it.x && o.frame == nil {
						last = i
					}
				}
				if last >= 0 {
					(*q)[last].poll, (*q)[last].solicit = true, true
				} else if it.x.reply == (q == &it.p.urgent) {
					it.x.queuePoll(e.answerAt(now))
				}
			}
		}
	}
	for k := range n {
		p := e.order[(e.rr+k)%n]
		prune(&p.urgent)
		if len(p.urgent) > 0 && !now.Before(p.urgent[0].notBefore) {
			it := p.urgent[0]
			if take {
				p.urgent = p.urgent[1:]
				e.rr = (e.rr + k + 1) % n
			}
			return it
		}
	}
	try := func(p *peer) *txItem {
		prune(&p.bulk)
		if len(p.bulk) == 0 {
			return nil
		}
		it := p.bulk[0]
		if take {
			p.bulk = p.bulk[1:]
			e.bulkPeer = p
		}
		return it
	}
	if e.bulkPeer != nil {
		if it := try(e.bulkPeer); it != nil {
			return it
		}
	}
	for k := range n {
		p := e.order[(e.rr+k)%n]
		if it := try(p); it != nil {
			if take {
				e.rr = (e.rr + k + 1) % n
			}
			return it
		}
	}
	return nil
}

// TxDone reports that the frame from NextFrame has left the antenna (err
// nil) or could not be sent.
func (e *Engine) TxDone(now time.Time, err error) {
	it := e.tx
	if it == nil {
		return
	}
	e.tx = nil
	if it.settles > 0 {
		// Sent or not, the peer may ask for it again until then.
		if t := now.Add(it.settles); t.After(it.p.settle) {
			it.p.settle = t
		}
	}
	if err == nil {
		e.stats.Sent++
		if it.st != nil {
			it.st.sent(e.o.Airtime(it.size(e.Overhead())), it.retry)
		}
	}
	x := it.x
	if x != nil && it.frame == nil && err == nil && x.sentOnce(it.idx) && x.owner != nil {
		e.emit(x.owner.progress())
	}
	if !it.solicit {
		return
	}
	wait := e.answerWait(it)
	if x != nil && x.state == xSending {
		x.waitAck(now.Add(wait))
	}
	e.quiet.expect(now.Add(wait), it.p)
}

// Deadline is when Tick must next be called, if anything is pending.
func (e *Engine) Deadline() (time.Time, bool) {
	var t earliest
	for _, p := range e.order {
		// Queued frames can go once the answer we listen for is overdue
		// and their own turnaround has passed (never while transmitting:
		// TxDone comes first).
		if e.tx == nil {
			if len(p.urgent) > 0 {
				t0 := p.urgent[0].notBefore
				if e.quiet.until.After(t0) {
					t0 = e.quiet.until
				}
				t.add(t0)
			}
			if len(p.bulk) > 0 {
				t.add(e.quiet.until)
			}
		}
		if len(p.out) > 0 {
			t.add(p.out[0].deadline())
		}
		if p.in != nil {
			t.add(p.in.deadline(e.o.Inactivity))
		}
	}
	return t.t, !t.t.IsZero()
}

// Tick runs the timers due at now.
func (e *Engine) Tick(now time.Time) {
	e.quiet.expire(now)
	for _, p := range e.order {
		e.tickIn(now, p)
		e.tickOut(now, p)
	}
}

// tickIn runs the timers of the peer's message to us.
func (e *Engine) tickIn(now time.Time, p *peer) {
	if m := p.in; m != nil && passed(now, m.forgetAt(e.o.Inactivity)) {
		// The sender went away: free what its message holds.
		e.dropIn(p)
	}
	m := p.in
	if m == nil || m.state == inDead {
		return
	}
	if passed(now, m.silence) {
		// The burst stopped short of its last frame.
		m.silence = time.Time{}
		e.respond(now, p, m)
	}
	if passed(now, m.grace) {
		m.grace = time.Time{}
		if m.rx == nil {
			m.acked = true
			e.ack(now, p, m)
		}
	}
	if x := m.rx; x.overdue(now) {
		if e.budgetSpent(x, time.Time{}, now) {
			// The requester went away; nobody waits for this reply.
			x.stop()
		} else {
			x.queuePoll(e.answerAt(now))
		}
	}
}

// tickOut runs the timers of our message to the peer.
func (e *Engine) tickOut(now time.Time, p *peer) {
	if len(p.out) == 0 {
		return
	}
	o := p.out[0]
	switch {
	case o.state == oWaitReply && o.x.state == xDone && passed(now, o.wait):
		// Nothing from the peer for a long while: is it still there?
		o.wait = now.Add(e.o.ReplyCheck)
		o.x.queuePoll(e.answerAt(now))
	case (o.state != oSending && o.state != oWaitReply) || !o.x.overdue(now):
	case e.budgetSpent(o.x, o.until, now):
		p.queueAbort(o)
		e.finish(now, o, fmt.Errorf("%w: peer %d left %d ACK requests unanswered for %v", ErrNoAck, p.addr, o.x.polls, now.Sub(o.x.silent).Round(time.Millisecond)))
	default:
		o.x.queuePoll(e.answerAt(now))
	}
}

// pending reports whether a frame is on the air or waiting to be sent.
func (e *Engine) pending() bool {
	if e.tx != nil {
		return true
	}
	for _, p := range e.order {
		if len(p.urgent) > 0 || len(p.bulk) > 0 {
			return true
		}
	}
	return false
}

// Settled reports whether the engine can stop without leaving a peer
// behind: no frame is queued or on the air, no reply of ours is still on
// its way, and no peer can still ask again for a final acknowledgement we
// sent (the final RACK of a reply, the ACK of a whole message: nobody
// answers them, so a peer that lost one asks again and only a running
// engine can repeat it). If not, next is when to ask again; zero means
// after the next frame in or out.
func (e *Engine) Settled(now time.Time) (next time.Time, settled bool) {
	if e.pending() {
		return time.Time{}, false
	}
	for _, p := range e.order {
		if m := p.in; m != nil && m.state != inDead && m.rx != nil && m.rx.state != xDone {
			return time.Time{}, false // its RPOLLs and resends need us
		}
		if p.settle.After(now) && p.settle.After(next) {
			next = p.settle
		}
	}
	return next, next.IsZero()
}
