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
	st        *Stats
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
			it.x.polls++
		}
		return it.frame
	}
	x := it.x
	d := x.data[it.idx*x.frag : min((it.idx+1)*x.frag, len(x.data))]
	h := header{link: it.p.txTag, hint: byte(x.counter), ctl: fragCtl(x.kind, it.idx, it.poll, it.idx == x.n-1)}
	if it.poll {
		x.polls++
	}
	return e.seal(it.p, h, x.counter, d)
}

// live reports whether a queued item is still worth sending.
func (e *Engine) live(it *txItem) bool {
	x := it.x
	if x == nil {
		return true
	}
	if x.state == xDone || (x.owner != nil && x.owner.state == oDone) {
		return false
	}
	if x.reply && (it.p.in == nil || it.p.in.rx != x || it.p.in.dead) {
		return false
	}
	return it.frame != nil || !x.acked[it.idx]
}

// pick chooses the next frame: answers and replies first, then our own
// bursts, one peer's burst at a time, peers served round robin.
func (e *Engine) pick(now time.Time, take bool) *txItem {
	if e.tx != nil || now.Before(e.listen) {
		return nil
	}
	n := len(e.order)
	// prune drops dead items; if the one that was to ask for an ACK is
	// dropped, the last live fragment of its burst asks instead.
	prune := func(q *[]*txItem) {
		for len(*q) > 0 && !e.live((*q)[0]) {
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
					e.queuePoll(now, it.x)
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
	if err == nil {
		e.stats.Sent++
		if it.st != nil {
			it.st.Frames++
			it.st.Airtime += e.o.Airtime(e.frameLen(it))
			if it.retry {
				it.st.Retries++
			}
		}
	}
	x := it.x
	if x != nil && it.frame == nil && err == nil && !x.sent[it.idx] {
		x.sent[it.idx] = true
		x.nSent++
		if x.owner != nil {
			e.progress(x.owner)
		}
	}
	if !it.solicit {
		return
	}
	wait := 2*e.o.Turnaround + e.o.Airtime(hdrLen+e.tagLen+e.ackLimit) + 50*time.Millisecond
	if x == nil {
		// Our ACK with gaps: the answer is a resent fragment.
		wait = 2*e.o.Turnaround + e.o.Airtime(e.o.MTU) + 50*time.Millisecond
	}
	if x != nil && x.reply && !e.o.CarrierSense {
		// The requester may acknowledge with its next message, which can
		// start RackDelay later and take a whole frame: without carrier
		// sense an RPOLL before then would talk over it.
		wait += e.o.RackDelay + e.o.Airtime(e.o.MTU)
		if x.polls > 2 {
			// The requester leaves our RPOLLs unanswered: it may be gone.
			// Back off, with jitter, so an empty address does not hold the
			// channel in step with other stations' timers.
			wait += time.Duration(e.rng.Int64N(int64(wait))) << min(x.polls-2, 3)
		}
	}
	if x != nil && x.state == xSending {
		if x.kind == kindRequest {
			// The answer may be the first reply fragment, after the handler.
			wait += e.o.ReplyGrace + e.o.Airtime(e.o.MTU)
		}
		x.state = xWaitAck
		x.deadline = now.Add(wait)
	}
	e.listen, e.listenTo = now.Add(wait), it.p
}

func (e *Engine) frameLen(it *txItem) int {
	if it.frame != nil {
		return len(it.frame)
	}
	x := it.x
	if x.data == nil {
		return hdrLen + e.tagLen + x.frag // retired while on the air
	}
	return hdrLen + e.tagLen + min(x.frag, len(x.data)-it.idx*x.frag)
}

// Deadline is when Tick must next be called, if anything is pending.
func (e *Engine) Deadline() (time.Time, bool) {
	var t time.Time
	set := func(d time.Time) {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	xd := func(x *xfer) {
		if x != nil && x.state == xWaitAck {
			set(x.deadline)
		}
	}
	for _, p := range e.order {
		// Queued frames can go once the answer we listen for is overdue
		// and their own turnaround has passed (never while transmitting:
		// TxDone comes first).
		if e.tx == nil {
			if len(p.urgent) > 0 {
				t0 := p.urgent[0].notBefore
				if e.listen.After(t0) {
					t0 = e.listen
				}
				set(t0)
			}
			if len(p.bulk) > 0 {
				set(e.listen)
			}
		}
		if len(p.out) > 0 {
			switch o := p.out[0]; o.state {
			case oSending:
				xd(o.x)
			case oWaitReply:
				xd(o.x)
				if o.x.state == xDone {
					set(o.wait)
				}
			}
		}
		if p.in != nil && !p.in.lastSeen.IsZero() && (p.in.rx == nil || p.in.rx.state == xDone) {
			set(p.in.lastSeen.Add(e.o.Inactivity))
		}
		if p.in != nil && !p.in.dead {
			set(p.in.grace)
			set(p.in.silence)
			xd(p.in.rx)
		}
	}
	return t, !t.IsZero()
}

// Tick runs the timers due at now.
func (e *Engine) Tick(now time.Time) {
	if !e.listen.IsZero() && !now.Before(e.listen) {
		e.listen, e.listenTo = time.Time{}, nil
	}
	due := func(x *xfer) bool { return x != nil && x.state == xWaitAck && !now.Before(x.deadline) }
	for _, p := range e.order {
		if m := p.in; m != nil && !m.lastSeen.IsZero() && !now.Before(m.lastSeen.Add(e.o.Inactivity)) &&
			(m.rx == nil || m.rx.state == xDone) {
			// The sender went away: free what its message holds.
			e.dropIn(p)
		}
		if m := p.in; m != nil && !m.dead {
			if !m.silence.IsZero() && !now.Before(m.silence) {
				// The burst stopped short of its last frame.
				m.silence = time.Time{}
				e.respond(now, p, m)
			}
			if !m.grace.IsZero() && !now.Before(m.grace) {
				m.grace = time.Time{}
				if m.rx == nil {
					m.acked = true
					e.queueAck(now, p, m)
				}
			}
			if x := m.rx; due(x) {
				if x.polls >= e.o.MaxAckRequests {
					// The requester went away; nobody waits for this reply.
					x.state = xDone
				} else {
					e.queuePoll(now, x)
				}
			}
		}
		if len(p.out) == 0 {
			continue
		}
		o := p.out[0]
		if o.state == oWaitReply && o.x.state == xDone && !o.wait.IsZero() && !now.Before(o.wait) {
			// Nothing from the peer for a long while: is it still there?
			o.wait = now.Add(e.o.ReplyCheck)
			e.queuePoll(now, o.x)
			continue
		}
		if (o.state != oSending && o.state != oWaitReply) || !due(o.x) {
			continue
		}
		if o.x.polls >= e.o.MaxAckRequests {
			h := header{link: p.txTag, hint: byte(o.x.counter), ctl: ctlCtl(ctlAbort, 0)}
			p.urgent = append(p.urgent, &txItem{p: p, frame: e.seal(p, h, o.x.counter, nil), st: &o.stats})
			e.finish(now, o, fmt.Errorf("%w: peer %d, %d ACK requests unanswered", ErrNoAck, p.addr, o.x.polls))
			continue
		}
		e.queuePoll(now, o.x)
	}
}

// Backoff returns a random wait before retrying a transmission on a busy
// channel: one to eight short-frame airtimes.
func (e *Engine) Backoff() time.Duration {
	return e.o.Turnaround + time.Duration(1+e.rng.IntN(8))*e.o.Airtime(hdrLen+e.tagLen)
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
