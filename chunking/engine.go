package chunking

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// Addr is a radio's address on a link. Addresses are mixed into the key
// derivation and the on-air link byte; they are never sent in clear.
type Addr uint8

// MsgID names one message within an Engine: an outgoing message (returned
// by Send) or an incoming request (carried by its EventRequest, passed back
// to Reply).
type MsgID uint64

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventRequest: a request arrived whole; answer it with Engine.Reply.
	EventRequest EventKind = iota + 1
	// EventMessage: a one-way message arrived whole.
	EventMessage
	// EventReply: the reply to our request arrived. Err is a *RemoteError
	// when the peer's handler failed.
	EventReply
	// EventDelivered: the peer acknowledged our one-way message.
	EventDelivered
	// EventFailed: our message was given up; Err says why.
	EventFailed
	// EventProgress: fragments of our message were sent or acknowledged.
	EventProgress
)

func (k EventKind) String() string {
	switch k {
	case EventRequest:
		return "request"
	case EventMessage:
		return "message"
	case EventReply:
		return "reply"
	case EventDelivered:
		return "delivered"
	case EventFailed:
		return "failed"
	case EventProgress:
		return "progress"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is an output of the Engine.
type Event struct {
	Kind EventKind
	ID   MsgID
	Peer Addr
	// Data is the message (EventRequest, EventMessage, EventReply).
	Data []byte
	Err  error
	// Progress of an outgoing message, in payload bytes: sent at least once,
	// and acknowledged, out of Total.
	Sent, Acked, Total int
	// Stats of the exchange, on completion and failure.
	Stats Stats
}

// Stats describe one exchange as seen by this side.
type Stats struct {
	// Frames this side transmitted for the exchange.
	Frames int
	// Retries counts retransmitted fragments and repeated ACK requests.
	Retries int
	// Received counts authenticated frames received for the exchange.
	Received int
	// Airtime is the time on air of the frames sent and received.
	Airtime time.Duration
	// RSSI (dBm) and SNR (dB) of the last frame heard from the peer.
	RSSI, SNR float64
	// Latency is from Send to completion.
	Latency time.Duration
}

// EngineStats count frames at the link level.
type EngineStats struct {
	// Sent is the number of frames handed to the radio.
	Sent int
	// Accepted frames passed authentication and replay checks.
	Accepted int
	// Dropped frames were foreign, malformed, forged, replayed or stale.
	Dropped int
}

// RemoteError is the error text the peer's handler returned.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "chunking: peer handler: " + e.Msg }

// Errors callers branch on.
var (
	// ErrInvalidOpts wraps every configuration error.
	ErrInvalidOpts = errors.New("chunking: invalid options")
	// ErrTooLarge: the message exceeds MaxMessage (ours or the peer's).
	ErrTooLarge = errors.New("chunking: message too large")
	// ErrNoAck: the retry budget of ACK requests ran out.
	ErrNoAck = errors.New("chunking: peer does not acknowledge")
	// ErrRefused: the peer refused the message (restarted mid-exchange,
	// out of buffer space, or the message failed its integrity check).
	ErrRefused = errors.New("chunking: peer refused the message")
	// ErrUnknownPeer: the address is not among the configured peers.
	ErrUnknownPeer = errors.New("chunking: unknown peer")
	// ErrUnknownMessage: Reply or Cancel named no live message.
	ErrUnknownMessage = errors.New("chunking: no such message")
	// ErrCanceled: Cancel was called.
	ErrCanceled = errors.New("chunking: canceled")
)

// EngineOpts configure an Engine. The zero value works on a SF7/BW125
// radio with a 255-byte MTU, accepting any peer address.
type EngineOpts struct {
	// LinkID separates links sharing a pre-shared key (0 is a valid id).
	LinkID byte
	// Peers lists the addresses frames are accepted from and sent to.
	// Empty: any address.
	Peers []Addr
	// MTU is the radio's largest frame. Zero: 255.
	MTU int
	// Airtime is the time on air of an n-byte frame (radio.Airtimer). Nil:
	// LoRa SF7/BW125/CR4/5 with an 8-symbol preamble. It sizes fragments
	// (frame lengths that end on a LoRa symbol boundary are preferred),
	// timers and the airtime in Stats.
	Airtime func(n int) time.Duration
	// MaxMessage caps a message (request or reply). Zero: 64 KiB. At most
	// 2048 fragments.
	MaxMessage int
	// MaxAckRequests is the retry budget: consecutive unanswered ACK
	// requests before a message is aborted. Zero: 32; at least 16.
	MaxAckRequests int
	// MaxBuffered caps the bytes held for reassembly and cached replies
	// across peers. Zero: 4 × MaxMessage.
	MaxBuffered int
	// Store persists message counters. Nil: in memory, which is only safe
	// for tests and simulations (a restart would reuse nonces).
	Store CounterStore
	// CounterBlock is how many send counters are reserved per Store write.
	// Zero: 32.
	CounterBlock int
	// Cipher seals every frame. Zero: CCM8.
	Cipher Cipher
	// ReplyGrace is how long a receiver waits for its handler's answer
	// (which doubles as the acknowledgement) before acknowledging a
	// complete request on its own. Zero: 250 ms.
	ReplyGrace time.Duration
	// Turnaround is the radio's receive-to-transmit switch time plus driver
	// latency; answers wait this long and timers allow for it. Zero: 10 ms.
	Turnaround time.Duration
	// Inactivity frees the state of a peer's message (partial reassembly or
	// cached reply) after this long without a frame about it; a sender that
	// comes back later is refused. Zero: 60 s.
	Inactivity time.Duration
	// ReplyCheck is how long a requester whose request was acknowledged
	// waits in silence before asking the peer whether it still has the
	// request (a restarted peer then refuses it at once). Zero: never; the
	// caller's deadline bounds the wait. Link sets 30 s.
	ReplyCheck time.Duration
	// RackDelay is how long a requester holds the final RACK of a reply
	// before sending it: a message to the same peer that starts meanwhile
	// acknowledges the reply instead (its newer counter tells the replier
	// the reply arrived), so back-to-back requests do not pay a RACK each.
	// It must stay well under the replier's RPOLL timer (about 190 ms at
	// SF7/BW125). Zero: 60 ms; negative: send the RACK at once.
	RackDelay time.Duration
	// CarrierSense says the driver listens before it talks (the radio is a
	// radio.CarrierSenser): a receiver then acknowledges a burst whose last
	// frame was lost when the channel falls silent, instead of waiting to
	// be polled. Without carrier sense that ACK could collide with the rest
	// of the burst, so it is off by default.
	CarrierSense bool
	// Seed seeds the back-off jitter.
	Seed uint64
}

// Engine is the link protocol without I/O: it is fed frames and the time,
// and it yields frames to transmit, events and its next deadline. It is not
// safe for concurrent use. See the package documentation for the loop that
// drives it.
type Engine struct {
	self   Addr
	psk    []byte
	o      EngineOpts
	tagLen int
	any    bool
	ctr    Counters
	peers  map[Addr]*peer
	order  []*peer
	byTag  [256][]Addr
	events []Event
	nextID MsgID
	rng    *rand.Rand
	stats  EngineStats

	tx       *txItem // frame on the air
	listen   time.Time
	listenTo *peer
	rr       int
	bulkPeer *peer
	buffered int
	ackLimit int
}

type peer struct {
	addr       Addr
	seal, open cipher.AEAD
	txTag      byte
	txNext     uint32
	out        []*outMsg // queue; out[0] is active once started
	lastDone   *outMsg   // the last finished request, to repeat its RACK
	in         *inMsg    // the peer's latest message
	urgent     []*txItem // answers and replies: sent before our own bursts
	bulk       []*txItem
	rssi, snr  float64
}

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

// reasm holds the fragments of one message.
type reasm struct {
	frags [][]byte
	have  []bool
	count int
	n     int // -1 until the last fragment arrives
	bytes int
}

// NewEngine returns an engine for the radio at address self on a link
// keyed by psk (at least 16 bytes, shared by every radio of the link).
func NewEngine(self Addr, psk []byte, opts *EngineOpts) (*Engine, error) {
	var o EngineOpts
	if opts != nil {
		o = *opts
	}
	if len(psk) < 16 {
		return nil, fmt.Errorf("%w: pre-shared key of %d bytes, want at least 16", ErrInvalidOpts, len(psk))
	}
	if o.MTU == 0 {
		o.MTU = lora.MaxFrame
	}
	if o.Airtime == nil {
		o.Airtime = lora.Params{}.TimeOnAir
	}
	if o.MaxMessage == 0 {
		o.MaxMessage = 64 << 10
	}
	if o.MaxAckRequests == 0 {
		o.MaxAckRequests = 32
	}
	if o.MaxAckRequests < 16 {
		return nil, fmt.Errorf("%w: MaxAckRequests %d, want at least 16", ErrInvalidOpts, o.MaxAckRequests)
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = 4 * o.MaxMessage
	}
	if o.Store == nil {
		o.Store = &MemStore{}
	}
	if o.CounterBlock <= 0 {
		o.CounterBlock = 32
	}
	if o.ReplyGrace == 0 {
		o.ReplyGrace = 250 * time.Millisecond
	}
	if o.Inactivity == 0 {
		o.Inactivity = time.Minute
	}
	if o.Turnaround == 0 {
		o.Turnaround = 10 * time.Millisecond
	}
	switch {
	case o.RackDelay == 0:
		o.RackDelay = 60 * time.Millisecond
	case o.RackDelay < 0:
		o.RackDelay = 0
	}
	e := &Engine{self: self, psk: slices.Clone(psk), o: o, peers: map[Addr]*peer{},
		rng: rand.New(rand.NewPCG(o.Seed, 0x6e6578666965)), any: len(o.Peers) == 0}
	switch o.Cipher {
	case CCM8:
		e.tagLen = 8
	case ChaCha20Poly1305:
		e.tagLen = 16
	default:
		return nil, fmt.Errorf("%w: unknown cipher %d", ErrInvalidOpts, o.Cipher)
	}
	if o.MTU < hdrLen+pollExt+e.tagLen+8 || o.MTU > 4096 {
		return nil, fmt.Errorf("%w: MTU %d too small for the link header and tag", ErrInvalidOpts, o.MTU)
	}
	if o.MaxMessage < 1 || (o.MaxMessage+4+e.maxPayload()-1)/e.maxPayload() > maxFrags {
		return nil, fmt.Errorf("%w: MaxMessage %d needs more than %d fragments at MTU %d", ErrInvalidOpts, o.MaxMessage, maxFrags, o.MTU)
	}
	e.ackLimit = min(48, o.MTU-hdrLen-e.tagLen)
	c, err := o.Store.Load()
	if err != nil {
		return nil, err
	}
	if c.Tx == nil {
		c.Tx = map[Addr]uint32{}
	}
	if c.Rx == nil {
		c.Rx = map[Addr]uint32{}
	}
	e.ctr = c
	addrs := o.Peers
	if e.any {
		addrs = nil
		for a := range 256 {
			addrs = append(addrs, Addr(a))
		}
	}
	for _, a := range addrs {
		if a == self {
			continue
		}
		// Only the link byte is needed up front; keys are derived when a
		// peer is first used.
		_, tag, err := pairSecrets(psk, o.LinkID, CCM8, a, self)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(e.byTag[tag], a) {
			e.byTag[tag] = append(e.byTag[tag], a)
		}
	}
	if !e.any {
		for _, a := range o.Peers {
			if _, err := e.peer(a); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

func (e *Engine) maxPayload() int { return e.o.MTU - hdrLen - e.tagLen }

// Overhead is the number of bytes each fragment spends on header and tag.
func (e *Engine) Overhead() int { return hdrLen + e.tagLen }

// Stats returns the frame counters.
func (e *Engine) Stats() EngineStats { return e.stats }

func (e *Engine) peer(a Addr) (*peer, error) {
	if p := e.peers[a]; p != nil {
		return p, nil
	}
	if a == e.self || (!e.any && !slices.Contains(e.o.Peers, a)) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownPeer, a)
	}
	seal, txTag, err := pairSecrets(e.psk, e.o.LinkID, e.o.Cipher, e.self, a)
	if err != nil {
		return nil, err
	}
	open, _, err := pairSecrets(e.psk, e.o.LinkID, e.o.Cipher, a, e.self)
	if err != nil {
		return nil, err
	}
	p := &peer{addr: a, seal: seal, open: open, txTag: txTag, txNext: max(e.ctr.Tx[a], 1)}
	e.peers[a] = p
	e.order = append(e.order, p)
	return p, nil
}

func (e *Engine) emit(ev Event) { e.events = append(e.events, ev) }

// Event returns the next pending event, if any.
func (e *Engine) Event() (Event, bool) {
	if len(e.events) == 0 {
		return Event{}, false
	}
	ev := e.events[0]
	e.events[0] = Event{}
	e.events = e.events[1:]
	return ev, true
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

func withCRC(payload []byte) []byte {
	c := crc32.ChecksumIEEE(payload)
	return append(append(make([]byte, 0, len(payload)+4), payload...), byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
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

func (e *Engine) seal(p *peer, h header, counter uint32, body []byte) []byte {
	var n [nonceLen]byte
	b := h.appendTo(make([]byte, 0, h.size()+len(body)+e.tagLen))
	return p.seal.Seal(b, h.nonce(counter, n[:p.seal.NonceSize()]), body, b)
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

func (e *Engine) progress(o *outMsg) {
	x := o.x
	frac := func(k int) int { return min(o.size, k*x.frag) }
	e.emit(Event{Kind: EventProgress, ID: o.id, Peer: o.p.addr, Sent: frac(x.nSent), Acked: frac(x.nAcked), Total: o.size})
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

// theirs reports whether h's counter is in the sender's own space (a frame
// about a message the sender originated) rather than ours.
func theirs(h header) bool {
	if h.isFrag() {
		return h.kind() == kindRequest || h.kind() == kindOneWay
	}
	t := h.ctlType()
	return t == ctlPoll || t == ctlRack || t == ctlAbort
}

// Receive processes one frame from the radio. Nothing in a frame is acted
// on before it is authenticated; foreign frames cost a table lookup.
func (e *Engine) Receive(now time.Time, frame []byte, rssi, snr float64) {
	h, body, err := parseHeader(frame, e.tagLen)
	if err != nil {
		e.stats.Dropped++
		return
	}
	var n [nonceLen]byte
	aad := frame[:h.size()]
	for _, a := range e.byTag[h.link] {
		p, err := e.peer(a)
		if err != nil {
			continue
		}
		nonce := n[:p.open.NonceSize()]
		if theirs(h) {
			for _, c := range e.candidates(p, h) {
				if pt, err := p.open.Open(nil, h.nonce(c, nonce), body, aad); err == nil {
					p.rssi, p.snr = rssi, snr
					if e.onTheirs(now, p, h, c, pt, len(frame)) {
						e.stats.Accepted++
					} else {
						e.stats.Dropped++
					}
					return
				}
			}
			continue
		}
		var o *outMsg
		if len(p.out) > 0 && p.out[0].x != nil && byte(p.out[0].x.counter) == h.hint {
			o = p.out[0]
		} else if d := p.lastDone; d != nil && byte(d.x.counter) == h.hint {
			o = d
		} else {
			continue
		}
		if pt, err := p.open.Open(nil, h.nonce(o.x.counter, nonce), body, aad); err == nil {
			e.stats.Accepted++
			p.rssi, p.snr = rssi, snr
			o.stats.Received++
			o.stats.Airtime += e.o.Airtime(len(frame))
			o.stats.RSSI, o.stats.SNR = rssi, snr
			e.onOurs(now, p, o, h, pt)
			return
		}
	}
	e.stats.Dropped++
}

// candidates lists the counters a frame of the peer's own message may
// carry: the one nearest to the highest seen with the same low byte, then
// further ahead in case messages were lost in between. A POLL carries the
// upper bits and so resynchronises a receiver that lost track.
func (e *Engine) candidates(p *peer, h header) []uint32 {
	if h.hasHi() {
		return []uint32{h.hi<<8 | uint32(h.hint)}
	}
	hi := e.ctr.Rx[p.addr]
	base := int64(hi) + int64(int8(h.hint-byte(hi)))
	var out []uint32
	for k := int64(0); k < 4; k++ {
		if c := base + 256*k; c > 0 && c <= 1<<32-1 {
			out = append(out, uint32(c))
		}
	}
	return out
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

func checkCRC(data []byte) ([]byte, bool) {
	if len(data) < 4 {
		return nil, false
	}
	pl := data[:len(data)-4]
	c := crc32.ChecksumIEEE(pl)
	t := data[len(data)-4:]
	return pl, t[0] == byte(c>>24) && t[1] == byte(c>>16) && t[2] == byte(c>>8) && t[3] == byte(c)
}

var errFragments = errors.New("fragments disagree on the message length")

// add stores fragment idx; it reports whether it was new.
func (r *reasm) add(idx int, data []byte, last bool) (bool, error) {
	if idx >= maxFrags || (r.n >= 0 && idx >= r.n) || (last && idx+1 < len(r.have) && slices.Contains(r.have[idx+1:], true)) {
		return false, errFragments
	}
	if last {
		if r.n >= 0 && r.n != idx+1 {
			return false, errFragments
		}
		r.n = idx + 1
	}
	if idx >= len(r.have) {
		r.have = append(r.have, make([]bool, idx+1-len(r.have))...)
		r.frags = append(r.frags, make([][]byte, idx+1-len(r.frags))...)
	}
	if r.have[idx] {
		return false, nil
	}
	r.have[idx] = true
	r.frags[idx] = slices.Clone(data)
	r.count++
	r.bytes += len(data)
	return true, nil
}

func (r *reasm) complete() bool { return r.n >= 0 && r.count == r.n }

func (r *reasm) assemble() []byte {
	out := make([]byte, 0, r.bytes)
	for _, f := range r.frags[:r.n] {
		out = append(out, f...)
	}
	return out
}
