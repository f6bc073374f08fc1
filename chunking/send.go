package chunking

import (
	"fmt"
	"slices"
	"time"
)

// xferState is where the sending side of a message stands.
type xferState uint8

const (
	xSending xferState = iota // a burst or a poll is queued or on the air
	xWaitAck                  // it went out; the answer is due by the deadline
	xDone                     // all acknowledged, given up, or superseded
)

func (s xferState) String() string {
	switch s {
	case xSending:
		return "sending"
	case xWaitAck:
		return "waiting for ack"
	case xDone:
		return "done"
	}
	return fmt.Sprintf("xferState(%d)", uint8(s))
}

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
	state    xferState
	polls    int       // ACK requests in a row left unanswered
	silent   time.Time // when the first of them went out
	pollSeq  int
	deadline time.Time
	st       *Stats
	owner    *outMsg // for progress events
}

// newXfer cuts data into fragments of frag bytes.
func newXfer(p *peer, counter uint32, kind fragKind, data []byte, frag int, st *Stats) *xfer {
	x := &xfer{p: p, counter: counter, kind: kind, reply: kind == kindReply || kind == kindError, data: data, st: st, frag: frag}
	x.n = (len(data) + x.frag - 1) / x.frag
	x.acked = make([]bool, x.n)
	x.sent = make([]bool, x.n)
	return x
}

// fragment returns the header and payload of fragment idx; poll asks the
// receiver to answer.
func (x *xfer) fragment(idx int, poll bool) (header, []byte) {
	d := x.data[idx*x.frag : min((idx+1)*x.frag, len(x.data))]
	return header{link: x.p.txTag, hint: byte(x.counter), ctl: fragCtl(x.kind, idx, poll, idx == x.n-1)}, d
}

// queueBurst queues every unacknowledged fragment; the last asks for an
// ACK. A reply's first frame goes at answerAt, our own bursts when their
// turn comes.
func (x *xfer) queueBurst(answerAt time.Time) {
	x.state = xSending
	var items []*txItem
	for i := range x.n {
		if !x.acked[i] {
			items = append(items, &txItem{p: x.p, x: x, idx: i, retry: x.sent[i], st: x.st})
		}
	}
	if len(items) == 0 {
		x.queuePoll(answerAt)
		return
	}
	items[len(items)-1].poll = true
	items[len(items)-1].solicit = true
	if x.reply {
		items[0].notBefore = answerAt
		x.p.urgent = append(x.p.urgent, items...)
	} else {
		x.p.bulk = append(x.p.bulk, items...)
	}
}

// queuePoll asks the receiver of x which fragments it has: an RPOLL for a
// reply (going at answerAt), a POLL for our own message.
func (x *xfer) queuePoll(answerAt time.Time) {
	x.state = xSending
	x.pollSeq++
	it := &txItem{p: x.p, x: x, solicit: true, retry: true, st: x.st}
	if x.reply {
		h := header{link: x.p.txTag, hint: byte(x.counter), ctl: ctlCtl(ctlRpoll, x.pollSeq)}
		it.frame = x.p.sealFrame(h, x.counter, nil)
		it.notBefore = answerAt
		x.p.urgent = append(x.p.urgent, it)
		return
	}
	h := header{link: x.p.txTag, hint: byte(x.counter), ctl: ctlCtl(ctlPoll, x.pollSeq), hi: x.counter >> 8}
	it.frame = x.p.sealFrame(h, x.counter, nil)
	x.p.bulk = append(x.p.bulk, it)
}

// sentOnce records that fragment idx left the antenna; it reports whether
// that was its first time.
func (x *xfer) sentOnce(idx int) bool {
	if x.sent[idx] {
		return false
	}
	x.sent[idx] = true
	x.nSent++
	return true
}

// asked counts an ACK request going out at now.
func (x *xfer) asked(now time.Time) {
	if x.polls == 0 {
		x.silent = now
	}
	x.polls++
}

// waitAck: what asked for an answer is out; the answer is due by deadline.
func (x *xfer) waitAck(deadline time.Time) { x.state, x.deadline = xWaitAck, deadline }

// ackDeadline is when the answer x waits for is overdue; zero if it waits
// for none.
func (x *xfer) ackDeadline() time.Time {
	if x == nil || x.state != xWaitAck {
		return time.Time{}
	}
	return x.deadline
}

// overdue reports whether the answer x waits for is overdue at now.
func (x *xfer) overdue(now time.Time) bool { return passed(now, x.ackDeadline()) }

// ack marks the fragments acknowledged in acked; it reports whether any was
// new.
func (x *xfer) ack(acked []bool) bool {
	grew := false
	for i, a := range acked {
		if a && !x.acked[i] {
			x.acked[i] = true
			x.nAcked++
			grew = true
		}
	}
	return grew
}

// ackAll: the reply acknowledges the whole request.
func (x *xfer) ackAll() {
	for i := range x.acked {
		x.acked[i] = true
	}
	x.nAcked, x.state, x.polls = x.n, xDone, 0
}

// stop sends nothing more of x; a reply's data stays cached for repeated
// requests.
func (x *xfer) stop() { x.state = xDone }

// retire stops x for good: what is kept of a finished request (for repeats
// of its final RACK) is the counter, not the payload.
func (x *xfer) retire() { x.state, x.data = xDone, nil }

// outState is where one of our messages stands.
type outState uint8

const (
	oQueued    outState = iota // behind an earlier message to the same peer
	oSending                   // fragments going out until all are acknowledged
	oWaitReply                 // a request the peer has whole; its reply is due
	oDone                      // answered, delivered, failed or canceled
)

func (s outState) String() string {
	switch s {
	case oQueued:
		return "queued"
	case oSending:
		return "sending"
	case oWaitReply:
		return "waiting for reply"
	case oDone:
		return "done"
	}
	return fmt.Sprintf("outState(%d)", uint8(s))
}

// outMsg is one of our messages to a peer, from Send to its end: our
// request (and the reply coming back) or our one-way message.
type outMsg struct {
	id      MsgID
	p       *peer
	oneWay  bool
	size    int
	payload []byte
	x       *xfer
	state   outState
	reply   reasm
	rkind   fragKind
	rackSeq int
	rack    []byte    // the final RACK, repeated on RPOLL
	wait    time.Time // waiting for the reply: ask again if the peer is silent until then
	until   time.Time // the sender's deadline: sit out the peer's silence until then (zero: RetryBudget)
	stats   Stats
	start   time.Time
}

// kind is how o's fragments are marked.
func (o *outMsg) kind() fragKind {
	if o.oneWay {
		return kindOneWay
	}
	return kindRequest
}

// awaitReply: the peer has the whole request; check is when to ask again
// if it stays silent (zero: never).
func (o *outMsg) awaitReply(check time.Time) { o.state, o.wait = oWaitReply, check }

// deadline is when o's next timer fires: the answer to its last ACK
// request, or the check on a silent peer while the reply is due.
func (o *outMsg) deadline() time.Time {
	switch o.state {
	case oSending:
		return o.x.ackDeadline()
	case oWaitReply:
		if o.x.state == xDone {
			return o.wait
		}
		return o.x.ackDeadline()
	}
	return time.Time{}
}

// retire ends o at now and returns the bytes of reply it held.
func (o *outMsg) retire(now time.Time) int {
	o.state = oDone
	if o.x != nil {
		o.x.retire()
	}
	o.stats.Latency = now.Sub(o.start)
	return o.reply.release()
}

// queueRack tells the replier, at, which reply fragments arrived; limit
// caps the body. The final RACK waits delay more, and is kept to be
// repeated if the replier asks again. It returns the RACK, nil if o has
// used up its sequence numbers.
func (o *outMsg) queueRack(at time.Time, delay time.Duration, limit int) *txItem {
	o.rackSeq++
	if o.rackSeq > seqMask {
		return nil
	}
	body := o.reply.ackBody(limit)
	f := o.p.control(ctlRack, o.rackSeq, o.x.counter, body)
	it := &txItem{p: o.p, frame: f, solicit: body != nil, notBefore: at, st: &o.stats}
	if body == nil {
		// The reply is complete: give our next message to this peer a
		// moment to acknowledge it instead.
		o.rack = f
		it.finalRack = true
		it.notBefore = it.notBefore.Add(delay)
	}
	o.p.urgent = append(o.p.urgent, it)
	return it
}

// repeatRack sends the final RACK again, at: the replier did not get it.
func (o *outMsg) repeatRack(at time.Time) *txItem {
	it := &txItem{p: o.p, frame: o.rack, notBefore: at}
	o.p.urgent = append(o.p.urgent, it)
	return it
}

// progress is o's EventProgress.
func (o *outMsg) progress() Event {
	x := o.x
	frac := func(k int) int { return min(o.size, k*x.frag) }
	return Event{Kind: EventProgress, ID: o.id, Peer: o.p.addr, Sent: frac(x.nSent), Acked: frac(x.nAcked), Total: o.size}
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
// EventFailed. Messages to one peer go one at a time, in order. A silent
// peer is given RetryBudget.
func (e *Engine) Send(now time.Time, to Addr, payload []byte, oneWay bool) (MsgID, error) {
	return e.SendUntil(now, to, payload, oneWay, time.Time{})
}

// SendUntil is Send for a sender with a deadline: the message sits out any
// silence of the peer until then (ErrNoAck after it), however long, instead
// of for RetryBudget. A zero deadline is Send. The peer keeps its part of
// the message for its Inactivity; a silence longer than that ends in
// ErrRefused when the peer is heard again.
func (e *Engine) SendUntil(now time.Time, to Addr, payload []byte, oneWay bool, deadline time.Time) (MsgID, error) {
	if len(payload) > e.o.MaxMessage {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), e.o.MaxMessage)
	}
	p, err := e.peer(to)
	if err != nil {
		return 0, err
	}
	e.nextID++
	o := &outMsg{id: e.nextID, p: p, oneWay: oneWay, size: len(payload), payload: slices.Clone(payload), start: now, reply: reasm{n: -1}, until: deadline}
	p.out = append(p.out, o)
	if len(p.out) == 1 {
		e.start(now, o)
	}
	return o.id, nil
}

// reserve makes sure the Store covers p's next send counter.
func (e *Engine) reserve(p *peer) error {
	if p.txNext >= 1<<32-1-uint32(e.o.CounterBlock) {
		// Wrapping would reuse nonces: the link needs a new key.
		return fmt.Errorf("chunking: message counters to peer %d exhausted; change the pre-shared key", p.addr)
	}
	if p.txNext < e.ctr.Tx[p.addr] {
		return nil
	}
	next := e.ctr.clone()
	next.Tx[p.addr] = p.txNext + uint32(e.o.CounterBlock)
	if err := e.o.Store.Save(next); err != nil {
		return fmt.Errorf("chunking: reserve message counters: %w", err)
	}
	e.ctr = next
	return nil
}

// start puts o, the first of the peer's queue, on the air.
func (e *Engine) start(now time.Time, o *outMsg) {
	p := o.p
	if err := e.reserve(p); err != nil {
		e.finish(now, o, err)
		return
	}
	if d := p.lastDone; d != nil {
		// This message's newer counter tells the peer that our previous
		// reply arrived whole (its next frame supersedes the reply there):
		// a final RACK still waiting would only delay it. If this message's
		// frames are lost, the peer's RPOLL is answered with the RACK.
		p.unqueueFinalRack(d)
	}
	data := withCRC(o.payload)
	o.x = newXfer(p, p.txNext, o.kind(), data, e.chooseFrag(len(data)), &o.stats)
	o.x.owner = o
	o.payload = nil
	p.txNext++
	o.state = oSending
	o.start = now
	o.x.queueBurst(e.answerAt(now))
}

// rack queues a RACK about o's reply. The final one is answered by nobody:
// a replier that lost it asks again.
func (e *Engine) rack(now time.Time, o *outMsg) {
	if it := o.queueRack(e.answerAt(now), e.o.RackDelay, e.ackLimit); it != nil && it.finalRack {
		it.settles = e.rackSettles()
	}
}

func (e *Engine) finish(now time.Time, o *outMsg, err error) { e.end(now, o, err, false) }

// end retires o; quiet suppresses its event.
func (e *Engine) end(now time.Time, o *outMsg, err error, quiet bool) {
	if o.state == oDone {
		return
	}
	e.buffered -= o.retire(now)
	p := o.p
	if i := slices.Index(p.out, o); i >= 0 {
		p.out = slices.Delete(p.out, i, i+1)
	}
	e.quiet.release(p)
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
				p.queueAbort(o)
			}
			e.end(now, o, ErrCanceled, true)
			return nil
		}
	}
	return ErrUnknownMessage
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
	if x.ack(acked) && x.owner != nil {
		e.emit(x.owner.progress())
	}
	if x.state == xSending {
		return // a late ACK: the burst on its way already accounts for it
	}
	if x.nAcked < x.n {
		x.queueBurst(e.answerAt(now))
		return
	}
	x.stop()
	if o := x.owner; o != nil {
		if o.oneWay {
			e.finish(now, o, nil)
		} else {
			o.awaitReply(e.replyCheck(now))
		}
	}
}

// onOurs handles an authenticated frame about our message o.
func (e *Engine) onOurs(now time.Time, p *peer, o *outMsg, h header, body []byte) {
	e.quiet.release(p)
	o.wait = e.replyCheck(now)
	if o.state == oDone {
		// Our final RACK was lost: the replier asks again, or resends the
		// end of its reply.
		if o.rack != nil && ((!h.isFrag() && h.ctlType() == ctlRpoll) || (h.isFrag() && h.poll())) {
			o.repeatRack(e.answerAt(now)).settles = e.rackSettles()
		}
		return
	}
	if !h.isFrag() {
		switch h.ctlType() {
		case ctlRefuse:
			e.finish(now, o, refusal(h.seq()))
		case ctlAck:
			e.onAck(now, o.x, body)
		case ctlRpoll:
			if o.state == oWaitReply || o.reply.count > 0 {
				e.rack(now, o)
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
		o.x.ackAll()
		e.emit(o.progress())
		o.awaitReply(e.replyCheck(now))
	}
	if o.reply.count > 0 && o.rkind != k {
		return
	}
	o.rkind = k
	if o.reply.bytes+len(body) > e.maxSealed() || e.buffered+len(body) > e.o.MaxBuffered {
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
			ev.Err, ev.Data = &RemoteError{Code: CodeHandler, Msg: string(pl)}, nil
		}
		e.rack(now, o)
		e.finish(now, o, nil)
		ev.Stats = o.stats
		e.emit(ev)
		return
	}
	if h.poll() {
		e.rack(now, o)
	}
}
