package chunking

import (
	"fmt"
	"time"
)

// inState is where a peer's message to us stands.
type inState uint8

const (
	inReceiving inState = iota // fragments arriving
	inDelivered                // whole and handed over; a request waits for (or has) its reply
	inDead                     // refused or aborted: later frames about it are ignored
)

func (s inState) String() string {
	switch s {
	case inReceiving:
		return "receiving"
	case inDelivered:
		return "delivered"
	case inDead:
		return "dead"
	}
	return fmt.Sprintf("inState(%d)", uint8(s))
}

// inMsg is the peer's latest message to us: its reassembly, the ACKs we
// owe it, and, for a request, our reply.
type inMsg struct {
	id       MsgID
	counter  uint32
	kind     fragKind
	known    bool // kind seen
	r        reasm
	state    inState
	ackSeq   int
	grace    time.Time
	silence  time.Time // acknowledge if no frame arrives by then
	lastSeen time.Time
	acked    bool // ACK(complete) sent or due
	refusal  int  // why we refused it, a REFUSE reason; 0 if we did not
	rx       *xfer
	stats    Stats
	start    time.Time
}

// forgetAt is when m is freed for lack of frames about it: Inactivity after
// the last one, unless our reply is still on its way (its own retry budget
// bounds that). Zero: not yet.
func (m *inMsg) forgetAt(inactivity time.Duration) time.Time {
	if m.lastSeen.IsZero() || (m.rx != nil && m.rx.state != xDone) {
		return time.Time{}
	}
	return m.lastSeen.Add(inactivity)
}

// deadline is when m's next timer fires.
func (m *inMsg) deadline(inactivity time.Duration) time.Time {
	var t earliest
	t.add(m.forgetAt(inactivity))
	if m.state != inDead {
		t.add(m.grace)
		t.add(m.silence)
		t.add(m.rx.ackDeadline())
	}
	return t.t
}

// release frees what m holds, its reassembly and its reply, and returns
// the bytes freed.
func (m *inMsg) release() int {
	n := m.r.release()
	if m.rx != nil {
		n += len(m.rx.data)
		m.rx.stop()
	}
	return n
}

// request returns the delivered request id that waits for its answer.
func (e *Engine) request(id MsgID) (*peer, *inMsg) {
	for _, p := range e.order {
		if m := p.in; m != nil && m.id == id && m.state == inDelivered && m.rx == nil && m.kind == kindRequest {
			return p, m
		}
	}
	return nil, nil
}

// Reply answers the request id (from an EventRequest). handlerErr sends
// payload as the text of a handler error (the requester's *RemoteError,
// CodeHandler). The reply doubles as the request's acknowledgement, and it
// is cached: a repeated request is answered from the cache without a new
// EventRequest.
func (e *Engine) Reply(now time.Time, id MsgID, payload []byte, handlerErr bool) error {
	p, m := e.request(id)
	if m == nil {
		return ErrUnknownMessage
	}
	if len(payload) > e.o.MaxMessage {
		payload = []byte(fmt.Sprintf("reply of %d bytes exceeds the link's %d-byte limit", len(payload), e.o.MaxMessage))
		handlerErr = true
	}
	kind := kindReply
	if handlerErr {
		kind = kindError
	}
	data := withCRC(payload)
	m.rx = newXfer(p, m.counter, kind, data, e.chooseFrag(len(data)), &m.stats)
	m.grace = time.Time{}
	e.buffered += len(m.rx.data)
	m.rx.queueBurst(e.answerAt(now))
	return nil
}

// Busy answers the request id (from an EventRequest) that this side has no
// room to handle: the requester's exchange fails at once with ErrPeerBusy,
// and the request may be sent again later.
func (e *Engine) Busy(now time.Time, id MsgID) error {
	p, m := e.request(id)
	if m == nil {
		return ErrUnknownMessage
	}
	e.refuse(now, p, m, refuseBacklog)
	return nil
}

// onTheirs handles an authenticated frame about the peer's message c. It
// reports false for a replayed or stale frame.
func (e *Engine) onTheirs(now time.Time, p *peer, h header, c uint32, body []byte, flen int) bool {
	solicit := (h.isFrag() && h.poll()) || (!h.isFrag() && h.ctlType() == ctlPoll)
	m := p.in
	if m == nil || m.counter != c {
		if m = e.newIn(now, p, h, c, solicit); m == nil {
			return false
		}
	}
	m.lastSeen = now
	if h.isFrag() && !h.poll() {
		// More of this burst follows back to back: without carrier sense,
		// talking to anyone now would make us deaf to it.
		if t := now.Add(e.burstGap()); t.After(e.quiet.until) {
			e.quiet.expect(t, p)
		}
	} else {
		e.quiet.release(p)
	}
	m.stats.heard(e.o.Airtime(flen), p.rssi, p.snr)
	if m.state == inDead {
		if m.refusal != 0 && !h.isFrag() && h.ctlType() == ctlPoll {
			// The sender asks again: our REFUSE was lost.
			p.queueRefuse(m.counter, m.refusal, e.answerAt(now))
		}
		return true
	}
	if !h.isFrag() {
		switch h.ctlType() {
		case ctlAbort:
			e.bury(p, m)
		case ctlRack:
			if x := m.rx; x != nil {
				e.onAck(now, x, body)
			}
		case ctlPoll:
			e.respond(now, p, m)
		}
		return true
	}
	if !e.onFragment(now, p, m, h, body) {
		return true
	}
	m.silence = time.Time{}
	if solicit {
		e.respond(now, p, m)
	} else if e.o.CarrierSense {
		// More of the burst should follow back to back. A pending ACK
		// from an earlier silence is stale now.
		p.unqueueAck(m)
		m.silence = now.Add(e.burstGap())
	}
	return true
}

// newIn starts the peer's message c, newer than any before it, and returns
// it; nil drops the frame (replayed, stale, or not a way to start).
func (e *Engine) newIn(now time.Time, p *peer, h header, c uint32, solicit bool) *inMsg {
	hi := e.ctr.Rx[p.addr]
	if c <= hi {
		if c == hi && solicit && p.in == nil {
			// We accepted this message before a restart and kept no
			// state: we can neither finish it nor answer it again.
			p.queueRefuse(c, refuseStale, e.answerAt(now))
		}
		return nil
	}
	if !h.isFrag() && h.ctlType() != ctlPoll {
		return nil
	}
	next := e.ctr.clone()
	next.Rx[p.addr] = c
	if err := e.o.Store.Save(next); err != nil {
		// Without a durable record we could answer twice after a
		// restart; drop the frame, the sender will repeat it.
		return nil
	}
	e.ctr = next
	// If we were waiting for the RACK of our reply (or an answer about an
	// older message), the peer's newer message settles it, and our answer
	// to it must not wait for the old window.
	e.quiet.release(p)
	e.dropIn(p)
	e.nextID++
	p.in = &inMsg{id: e.nextID, counter: c, r: reasm{n: -1}, start: now}
	return p.in
}

// onFragment stores a fragment of m and delivers m once it is whole. It
// reports false if the frame is ignored (its kind is not the message's)
// or m is refused.
func (e *Engine) onFragment(now time.Time, p *peer, m *inMsg, h header, body []byte) bool {
	k := h.kind()
	if m.known && m.kind != k {
		return false
	}
	m.kind, m.known = k, true
	if m.r.complete() {
		return true
	}
	switch {
	case m.r.bytes+len(body) > e.maxSealed():
		e.refuse(now, p, m, refuseTooLarge)
		return false
	case e.buffered+len(body) > e.o.MaxBuffered:
		e.refuse(now, p, m, refuseBusy)
		return false
	}
	added, err := m.r.add(h.idx(), body, h.last())
	if err != nil {
		e.refuse(now, p, m, refuseCorrupt)
		return false
	}
	if added {
		e.buffered += len(body)
	}
	if !m.r.complete() || m.state != inReceiving {
		return true
	}
	pl, ok := checkCRC(m.r.assemble())
	if !ok {
		e.refuse(now, p, m, refuseCorrupt)
		return false
	}
	m.state = inDelivered
	// The fragments are no longer needed: the bitmap is.
	e.buffered -= m.r.release()
	kind := EventRequest
	if k == kindOneWay {
		kind = EventMessage
	}
	e.emit(Event{Kind: kind, ID: m.id, Peer: p.addr, Data: pl, Stats: m.stats})
	return true
}

// dropIn releases the peer's current incoming message.
func (e *Engine) dropIn(p *peer) {
	if m := p.in; m != nil {
		e.buffered -= m.release()
		p.in = nil
	}
}

// bury frees m but keeps it, dead, as the peer's latest message, so that
// later frames about it are ignored.
func (e *Engine) bury(p *peer, m *inMsg) {
	e.dropIn(p)
	m.state = inDead
	p.in = m
}

// refuse buries m and tells its sender why.
func (e *Engine) refuse(now time.Time, p *peer, m *inMsg, reason int) {
	e.bury(p, m)
	m.refusal = reason
	p.queueRefuse(m.counter, reason, e.answerAt(now))
}

// ack queues an ACK about m. A complete one is answered by nobody: a
// sender that lost it asks again.
func (e *Engine) ack(now time.Time, p *peer, m *inMsg) {
	if it := p.queueAck(m, e.answerAt(now), e.ackLimit); it != nil && !it.solicit {
		it.settles = e.ackSettles(m.kind)
	}
}

// respond answers an ACK request about the peer's message m.
func (e *Engine) respond(now time.Time, p *peer, m *inMsg) {
	switch {
	case !m.r.complete() || m.kind == kindOneWay || m.acked || m.rx != nil:
		e.ack(now, p, m)
	case m.grace.IsZero():
		// Give the handler a moment: its reply is a better ACK.
		m.grace = now.Add(e.o.ReplyGrace)
	}
}
