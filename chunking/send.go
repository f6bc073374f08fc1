package chunking

import (
	"fmt"
	"slices"
	"time"
)

// xfer states.
const (
	xSending = iota
	xWaitAck
	xDone
)

// xfer is the sending side of one message: our request or one-way
// message, or our reply to a peer's request.
type xfer struct {
	p        *peer
	counter  uint32
	kind     fragKind
	reply    bool // counter is in the peer's space; polls are RPOLLs
	data     []byte
	frag, n  int
	acked    []bool
	sent     []bool
	nAcked   int
	nSent    int
	state    int
	polls    int
	pollSeq  int
	deadline time.Time
	st       *Stats
	owner    *outMsg // for progress events
}

// outMsg states.
const (
	oQueued = iota
	oSending
	oWaitReply
	oDone
)

type outMsg struct {
	id      MsgID
	p       *peer
	oneWay  bool
	size    int
	payload []byte
	x       *xfer
	state   int
	reply   reasm
	rkind   fragKind
	rackSeq int
	rack    []byte    // the final RACK, repeated on RPOLL
	wait    time.Time // waiting for the reply: ask again if the peer is silent until then
	stats   Stats
	start   time.Time
}

// chooseFrag picks the fragment payload size that minimises the airtime of
// a message of l bytes: LoRa carries payload in blocks of 4·SF bits, so a
// frame a byte or two shorter than the MTU can cost a whole block less.
func (e *Engine) chooseFrag(l int) int {
	maxP := e.maxPayload()
	if l <= maxP {
		return max(l, 1)
	}
	h := hdrLen + e.tagLen
	best, bestT := maxP, time.Duration(1<<62)
	for p := maxP; p >= max(1, maxP-8); p-- {
		n := (l + p - 1) / p
		t := time.Duration(n-1)*e.o.Airtime(p+h) + e.o.Airtime(l-(n-1)*p+h)
		if t < bestT {
			best, bestT = p, t
		}
	}
	return best
}

// Send queues payload for peer to. A request (oneWay false) completes with
// EventReply, a one-way message with EventDelivered; either may end with
// EventFailed. Messages to one peer go one at a time, in order.
func (e *Engine) Send(now time.Time, to Addr, payload []byte, oneWay bool) (MsgID, error) {
	if len(payload) > e.o.MaxMessage {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), e.o.MaxMessage)
	}
	p, err := e.peer(to)
	if err != nil {
		return 0, err
	}
	e.nextID++
	o := &outMsg{id: e.nextID, p: p, oneWay: oneWay, size: len(payload), payload: slices.Clone(payload), start: now, reply: reasm{n: -1}}
	p.out = append(p.out, o)
	if len(p.out) == 1 {
		e.start(now, o)
	}
	return o.id, nil
}

func (e *Engine) newXfer(p *peer, counter uint32, kind fragKind, data []byte, st *Stats) *xfer {
	x := &xfer{p: p, counter: counter, kind: kind, reply: kind == kindReply || kind == kindError, data: data, st: st}
	x.frag = e.chooseFrag(len(data))
	x.n = (len(data) + x.frag - 1) / x.frag
	x.acked = make([]bool, x.n)
	x.sent = make([]bool, x.n)
	return x
}

func (e *Engine) start(now time.Time, o *outMsg) {
	p := o.p
	if p.txNext >= 1<<32-1-uint32(e.o.CounterBlock) {
		// Wrapping would reuse nonces: the link needs a new key.
		e.finish(now, o, fmt.Errorf("chunking: message counters to peer %d exhausted; change the pre-shared key", p.addr))
		return
	}
	if p.txNext >= e.ctr.Tx[p.addr] {
		next := e.ctr.clone()
		next.Tx[p.addr] = p.txNext + uint32(e.o.CounterBlock)
		if err := e.o.Store.Save(next); err != nil {
			e.finish(now, o, fmt.Errorf("chunking: reserve message counters: %w", err))
			return
		}
		e.ctr = next
	}
	kind := kindRequest
	if o.oneWay {
		kind = kindOneWay
	}
	if d := p.lastDone; d != nil {
		// This message's newer counter tells the peer that our previous
		// reply arrived whole (its next frame supersedes the reply there):
		// a final RACK still waiting would only delay it. If this message's
		// frames are lost, the peer's RPOLL is answered with the RACK.
		p.urgent = slices.DeleteFunc(p.urgent, func(it *txItem) bool { return it.finalRack && it.st == &d.stats })
	}
	o.x = e.newXfer(p, p.txNext, kind, withCRC(o.payload), &o.stats)
	o.x.owner = o
	o.payload = nil
	p.txNext++
	o.state = oSending
	o.start = now
	e.burst(now, o.x)
}

// burst queues every unacknowledged fragment; the last asks for an ACK.
func (e *Engine) burst(now time.Time, x *xfer) {
	x.state = xSending
	var items []*txItem
	for i := range x.n {
		if !x.acked[i] {
			items = append(items, &txItem{p: x.p, x: x, idx: i, retry: x.sent[i], st: x.st})
		}
	}
	if len(items) == 0 {
		e.queuePoll(now, x)
		return
	}
	items[len(items)-1].poll = true
	items[len(items)-1].solicit = true
	if x.reply {
		items[0].notBefore = now.Add(e.o.Turnaround)
		x.p.urgent = append(x.p.urgent, items...)
	} else {
		x.p.bulk = append(x.p.bulk, items...)
	}
}

func (e *Engine) queuePoll(now time.Time, x *xfer) {
	x.state = xSending
	x.pollSeq++
	it := &txItem{p: x.p, x: x, solicit: true, retry: true, st: x.st}
	if x.reply {
		h := header{link: x.p.txTag, hint: byte(x.counter), ctl: ctlCtl(ctlRpoll, x.pollSeq)}
		it.frame = e.seal(x.p, h, x.counter, nil)
		it.notBefore = now.Add(e.o.Turnaround)
		x.p.urgent = append(x.p.urgent, it)
		return
	}
	h := header{link: x.p.txTag, hint: byte(x.counter), ctl: ctlCtl(ctlPoll, x.pollSeq), hi: x.counter >> 8}
	it.frame = e.seal(x.p, h, x.counter, nil)
	x.p.bulk = append(x.p.bulk, it)
}

// queueRack tells the replier which reply fragments arrived.
func (e *Engine) queueRack(now time.Time, o *outMsg) {
	o.rackSeq++
	if o.rackSeq > seqMask {
		return
	}
	var body []byte
	if !o.reply.complete() {
		body = encodeAck(o.reply.have, o.reply.n, e.ackLimit)
	}
	h := header{link: o.p.txTag, hint: byte(o.x.counter), ctl: ctlCtl(ctlRack, o.rackSeq)}
	f := e.seal(o.p, h, o.x.counter, body)
	it := &txItem{p: o.p, frame: f, solicit: body != nil, notBefore: now.Add(e.o.Turnaround), st: &o.stats}
	if body == nil {
		// The reply is complete: give our next message to this peer a
		// moment to acknowledge it instead.
		o.rack = f
		it.finalRack = true
		it.notBefore = it.notBefore.Add(e.o.RackDelay)
	}
	o.p.urgent = append(o.p.urgent, it)
}

func (e *Engine) finish(now time.Time, o *outMsg, err error) { e.end(now, o, err, false) }

// end retires o; quiet suppresses its event.
func (e *Engine) end(now time.Time, o *outMsg, err error, quiet bool) {
	if o.state == oDone {
		return
	}
	o.state = oDone
	if o.x != nil {
		o.x.state = xDone
		// lastDone keeps the counter for repeats of the final RACK, not
		// the payload.
		o.x.data = nil
	}
	o.stats.Latency = now.Sub(o.start)
	p := o.p
	if i := slices.Index(p.out, o); i >= 0 {
		p.out = slices.Delete(p.out, i, i+1)
	}
	if e.listenTo == p {
		e.listen, e.listenTo = time.Time{}, nil
	}
	e.buffered -= o.reply.bytes
	o.reply.frags, o.reply.bytes = nil, 0
	switch {
	case quiet:
	case err != nil:
		e.emit(Event{Kind: EventFailed, ID: o.id, Peer: p.addr, Err: err, Stats: o.stats})
	case o.oneWay:
		e.emit(Event{Kind: EventDelivered, ID: o.id, Peer: p.addr, Stats: o.stats})
	case !o.oneWay:
		p.lastDone = o
	}
	if len(p.out) > 0 && p.out[0].state == oQueued {
		e.start(now, p.out[0])
	}
}

// Cancel gives up on an outgoing message: the peer is told to forget it.
// No event follows.
func (e *Engine) Cancel(now time.Time, id MsgID) error {
	for _, p := range e.order {
		for _, o := range p.out {
			if o.id != id {
				continue
			}
			if o.x != nil {
				h := header{link: p.txTag, hint: byte(o.x.counter), ctl: ctlCtl(ctlAbort, 0)}
				p.urgent = append(p.urgent, &txItem{p: p, frame: e.seal(p, h, o.x.counter, nil), st: &o.stats})
			}
			e.end(now, o, ErrCanceled, true)
			return nil
		}
	}
	return ErrUnknownMessage
}

func (e *Engine) progress(o *outMsg) {
	x := o.x
	frac := func(k int) int { return min(o.size, k*x.frag) }
	e.emit(Event{Kind: EventProgress, ID: o.id, Peer: o.p.addr, Sent: frac(x.nSent), Acked: frac(x.nAcked), Total: o.size})
}

// onAck applies an acknowledgement of x.
func (e *Engine) onAck(now time.Time, x *xfer, body []byte) {
	x.polls = 0
	if x.state == xDone {
		return
	}
	acked := make([]bool, x.n)
	if decodeAck(body, acked) != nil {
		return
	}
	grew := false
	for i, a := range acked {
		if a && !x.acked[i] {
			x.acked[i] = true
			x.nAcked++
			grew = true
		}
	}
	if grew && x.owner != nil {
		e.progress(x.owner)
	}
	if x.state == xSending {
		return // a late ACK: the burst on its way already accounts for it
	}
	if x.nAcked < x.n {
		e.burst(now, x)
		return
	}
	x.state = xDone
	if o := x.owner; o != nil {
		if o.oneWay {
			e.finish(now, o, nil)
		} else {
			o.state = oWaitReply
			o.wait = e.replyCheck(now)
		}
	}
}

// onOurs handles an authenticated frame about our message o.
func (e *Engine) onOurs(now time.Time, p *peer, o *outMsg, h header, body []byte) {
	if e.listenTo == p {
		e.listen, e.listenTo = time.Time{}, nil
	}
	o.wait = e.replyCheck(now)
	if o.state == oDone {
		// Our final RACK was lost: the replier asks again, or resends the
		// end of its reply.
		if o.rack != nil && ((!h.isFrag() && h.ctlType() == ctlRpoll) || (h.isFrag() && h.poll())) {
			p.urgent = append(p.urgent, &txItem{p: p, frame: o.rack, notBefore: now.Add(e.o.Turnaround)})
		}
		return
	}
	if !h.isFrag() {
		switch h.ctlType() {
		case ctlRefuse:
			reason := map[int]string{refuseStale: "peer restarted during the exchange", refuseTooLarge: "message too large for the peer",
				refuseCorrupt: "message failed its integrity check", refuseBusy: "peer out of buffer space"}[h.seq()]
			err := fmt.Errorf("%w: %s", ErrRefused, reason)
			if h.seq() == refuseTooLarge {
				err = fmt.Errorf("%w (%w)", err, ErrTooLarge)
			}
			e.finish(now, o, err)
		case ctlAck:
			e.onAck(now, o.x, body)
		case ctlRpoll:
			if o.state == oWaitReply || o.reply.count > 0 {
				e.queueRack(now, o)
			}
		}
		return
	}
	k := h.kind()
	if o.oneWay || (k != kindReply && k != kindError) {
		return
	}
	if o.state == oSending {
		// The reply is the acknowledgement.
		x := o.x
		for i := range x.acked {
			x.acked[i] = true
		}
		x.nAcked, x.state, x.polls = x.n, xDone, 0
		e.progress(o)
		o.state = oWaitReply
		o.wait = e.replyCheck(now)
	}
	if o.reply.count > 0 && o.rkind != k {
		return
	}
	o.rkind = k
	if o.reply.bytes+len(body) > e.o.MaxMessage+4 || e.buffered+len(body) > e.o.MaxBuffered {
		e.finish(now, o, fmt.Errorf("%w: reply exceeds the buffer", ErrTooLarge))
		return
	}
	added, err := o.reply.add(h.idx(), body, h.last())
	if err != nil {
		e.finish(now, o, fmt.Errorf("chunking: peer %d: malformed reply: %w", p.addr, err))
		return
	}
	if added {
		e.buffered += len(body)
	}
	if o.reply.complete() {
		pl, ok := checkCRC(o.reply.assemble())
		if !ok {
			e.finish(now, o, fmt.Errorf("chunking: peer %d: reply failed its integrity check", p.addr))
			return
		}
		ev := Event{Kind: EventReply, ID: o.id, Peer: p.addr, Data: pl}
		if k == kindError {
			ev.Err, ev.Data = &RemoteError{Msg: string(pl)}, nil
		}
		e.queueRack(now, o)
		e.finish(now, o, nil)
		ev.Stats = o.stats
		e.emit(ev)
		return
	}
	if h.poll() {
		e.queueRack(now, o)
	}
}

func (e *Engine) replyCheck(now time.Time) time.Time {
	if e.o.ReplyCheck <= 0 {
		return time.Time{}
	}
	return now.Add(e.o.ReplyCheck)
}
