package chunking

import (
	"fmt"
	"slices"
	"time"
)

type inMsg struct {
	id        MsgID
	counter   uint32
	kind      fragKind
	known     bool // kind seen
	r         reasm
	delivered bool
	dead      bool // refused or aborted
	ackSeq    int
	grace     time.Time
	silence   time.Time // acknowledge if no frame arrives by then
	lastSeen  time.Time
	acked     bool // ACK(complete) sent or due
	rx        *xfer
	stats     Stats
	start     time.Time
}

// Reply answers the request id (from an EventRequest). handlerErr sends
// payload as the text of a handler error. The reply doubles as the
// request's acknowledgement, and it is cached: a repeated request is
// answered from the cache without a new EventRequest.
func (e *Engine) Reply(now time.Time, id MsgID, payload []byte, handlerErr bool) error {
	for _, p := range e.order {
		m := p.in
		if m == nil || m.id != id || m.dead || m.rx != nil || m.kind != kindRequest || !m.delivered {
			continue
		}
		if len(payload) > e.o.MaxMessage {
			payload = []byte(fmt.Sprintf("reply of %d bytes exceeds the link's %d-byte limit", len(payload), e.o.MaxMessage))
			handlerErr = true
		}
		kind := kindReply
		if handlerErr {
			kind = kindError
		}
		m.rx = e.newXfer(p, m.counter, kind, withCRC(payload), &m.stats)
		m.grace = time.Time{}
		e.buffered += len(m.rx.data)
		e.burst(now, m.rx)
		return nil
	}
	return ErrUnknownMessage
}

func (e *Engine) queueAck(now time.Time, p *peer, m *inMsg) {
	// One pending ACK per message: a newer one replaces it.
	p.urgent = slices.DeleteFunc(p.urgent, func(it *txItem) bool { return it.x == nil && it.st == &m.stats })
	m.ackSeq++
	if m.ackSeq > seqMask {
		return
	}
	var body []byte
	if !m.r.complete() {
		body = encodeAck(m.r.have, m.r.n, e.ackLimit)
	}
	h := header{link: p.txTag, hint: byte(m.counter), ctl: ctlCtl(ctlAck, m.ackSeq)}
	// An ACK with gaps asks the sender to resend them at once: stay quiet
	// for that burst (a half-duplex radio that talks to another peer
	// meanwhile is deaf to it).
	p.urgent = append(p.urgent, &txItem{p: p, frame: e.seal(p, h, m.counter, body), notBefore: now.Add(e.o.Turnaround), st: &m.stats, solicit: body != nil})
}

func (e *Engine) queueRefuse(now time.Time, p *peer, counter uint32, reason int) {
	h := header{link: p.txTag, hint: byte(counter), ctl: ctlCtl(ctlRefuse, reason)}
	p.urgent = append(p.urgent, &txItem{p: p, frame: e.seal(p, h, counter, nil), notBefore: now.Add(e.o.Turnaround)})
}

// onTheirs handles an authenticated frame about the peer's message c. It
// reports false for a replayed or stale frame.
func (e *Engine) onTheirs(now time.Time, p *peer, h header, c uint32, body []byte, flen int) bool {
	solicit := (h.isFrag() && h.poll()) || (!h.isFrag() && h.ctlType() == ctlPoll)
	m := p.in
	if m == nil || m.counter != c {
		hi := e.ctr.Rx[p.addr]
		if c <= hi {
			if c == hi && solicit && m == nil {
				// We accepted this message before a restart and kept no
				// state: we can neither finish it nor answer it again.
				e.queueRefuse(now, p, c, refuseStale)
			}
			return false
		}
		if !h.isFrag() && h.ctlType() != ctlPoll {
			return false
		}
		next := e.ctr.clone()
		next.Rx[p.addr] = c
		if err := e.o.Store.Save(next); err != nil {
			// Without a durable record we could answer twice after a
			// restart; drop the frame, the sender will repeat it.
			return false
		}
		e.ctr = next
		if e.listenTo == p {
			// We were waiting for the RACK of our reply (or an answer about
			// an older message): the peer's newer message settles it, and
			// our answer to it must not wait for the old window.
			e.listen, e.listenTo = time.Time{}, nil
		}
		e.dropIn(p)
		e.nextID++
		m = &inMsg{id: e.nextID, counter: c, r: reasm{n: -1}, start: now}
		p.in = m
	}
	m.lastSeen = now
	if h.isFrag() && !h.poll() {
		// More of this burst follows back to back: without carrier sense,
		// talking to anyone now would make us deaf to it.
		if t := now.Add(e.o.Airtime(e.o.MTU) + 2*e.o.Turnaround + 20*time.Millisecond); t.After(e.listen) {
			e.listen, e.listenTo = t, p
		}
	} else if e.listenTo == p {
		e.listen, e.listenTo = time.Time{}, nil
	}
	m.stats.Received++
	m.stats.Airtime += e.o.Airtime(flen)
	m.stats.RSSI, m.stats.SNR = p.rssi, p.snr
	if m.dead {
		return true
	}
	if !h.isFrag() {
		switch h.ctlType() {
		case ctlAbort:
			e.dropIn(p)
			m.dead = true
			p.in = m
		case ctlRack:
			if x := m.rx; x != nil {
				e.onAck(now, x, body)
			}
		case ctlPoll:
			e.respond(now, p, m)
		}
		return true
	}
	k := h.kind()
	if m.known && m.kind != k {
		return true
	}
	m.kind, m.known = k, true
	if !m.r.complete() {
		switch {
		case m.r.bytes+len(body) > e.o.MaxMessage+4:
			e.kill(now, p, m, refuseTooLarge)
			return true
		case e.buffered+len(body) > e.o.MaxBuffered:
			e.kill(now, p, m, refuseBusy)
			return true
		}
		added, err := m.r.add(h.idx(), body, h.last())
		if err != nil {
			e.kill(now, p, m, refuseCorrupt)
			return true
		}
		if added {
			e.buffered += len(body)
		}
		if m.r.complete() && !m.delivered {
			pl, ok := checkCRC(m.r.assemble())
			if !ok {
				e.kill(now, p, m, refuseCorrupt)
				return true
			}
			m.delivered = true
			// The fragments are no longer needed: the bitmap is.
			e.buffered -= m.r.bytes
			m.r.frags, m.r.bytes = nil, 0
			kind := EventRequest
			if k == kindOneWay {
				kind = EventMessage
			}
			e.emit(Event{Kind: kind, ID: m.id, Peer: p.addr, Data: pl, Stats: m.stats})
		}
	}
	m.silence = time.Time{}
	if solicit {
		e.respond(now, p, m)
	} else if e.o.CarrierSense {
		// More of the burst should follow back to back. A pending ACK
		// from an earlier silence is stale now.
		p.urgent = slices.DeleteFunc(p.urgent, func(it *txItem) bool { return it.x == nil && it.st == &m.stats })
		m.silence = now.Add(e.o.Airtime(e.o.MTU) + 2*e.o.Turnaround + 20*time.Millisecond)
	}
	return true
}

// dropIn releases the peer's current incoming message.
func (e *Engine) dropIn(p *peer) {
	if m := p.in; m != nil {
		e.buffered -= m.r.bytes
		if m.rx != nil {
			e.buffered -= len(m.rx.data)
			m.rx.state = xDone
		}
		m.r.frags, m.r.bytes = nil, 0
		p.in = nil
	}
}

func (e *Engine) kill(now time.Time, p *peer, m *inMsg, reason int) {
	e.dropIn(p)
	m.dead = true
	p.in = m
	e.queueRefuse(now, p, m.counter, reason)
}

// respond answers an ACK request about the peer's message m.
func (e *Engine) respond(now time.Time, p *peer, m *inMsg) {
	switch {
	case !m.r.complete() || m.kind == kindOneWay || m.acked || m.rx != nil:
		e.queueAck(now, p, m)
	case m.grace.IsZero():
		// Give the handler a moment: its reply is a better ACK.
		m.grace = now.Add(e.o.ReplyGrace)
	}
}
