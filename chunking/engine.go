package chunking

import (
	"fmt"
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

// sent counts a frame this side transmitted for the exchange.
func (s *Stats) sent(airtime time.Duration, retry bool) {
	s.Frames++
	s.Airtime += airtime
	if retry {
		s.Retries++
	}
}

// heard counts an authenticated frame received for the exchange.
func (s *Stats) heard(airtime time.Duration, rssi, snr float64) {
	s.Received++
	s.Airtime += airtime
	s.RSSI, s.SNR = rssi, snr
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
	// RetryBudget is how long a message sits out its peer's silence: from
	// the first of a run of unanswered ACK requests (POLLs, RPOLLs) until it
	// is aborted, unless its sender gave it a deadline (SendUntil), which
	// then bounds it instead. The requests are spaced out as the silence
	// grows (timers.go), so a long fade costs little airtime. Zero: 2
	// minutes; at least 10 s.
	RetryBudget time.Duration
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
	// comes back later is refused. Zero: derived from the modulation, so
	// that a sender with the same RetryBudget is never forgotten while it
	// still polls (timers.go, inactivity).
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

	sched        // the transmit side the peers share (schedule.go)
	buffered int // bytes held for reassembly and cached replies, all peers
	ackLimit int // most bytes an ACK or RACK body takes
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
	if o.RetryBudget == 0 {
		o.RetryBudget = defaultRetryBudget
	}
	if o.RetryBudget < minRetryBudget {
		return nil, fmt.Errorf("%w: RetryBudget %v, want at least %v", ErrInvalidOpts, o.RetryBudget, minRetryBudget)
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
	if o.MaxMessage < 1 || (e.maxSealed()+e.maxPayload()-1)/e.maxPayload() > maxFrags {
		return nil, fmt.Errorf("%w: MaxMessage %d needs more than %d fragments at MTU %d", ErrInvalidOpts, o.MaxMessage, maxFrags, o.MTU)
	}
	e.ackLimit = min(maxAckBody, e.maxPayload())
	if e.o.Inactivity == 0 {
		e.o.Inactivity = e.inactivity()
	}
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

// maxSealed is the largest message on the air: MaxMessage and its CRC.
func (e *Engine) maxSealed() int { return e.o.MaxMessage + crcLen }

// Overhead is the number of bytes each fragment spends on header and tag.
func (e *Engine) Overhead() int { return hdrLen + e.tagLen }

// Stats returns the frame counters.
func (e *Engine) Stats() EngineStats { return e.stats }

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
		o := p.ours(h.hint)
		if o == nil {
			continue
		}
		if pt, err := p.open.Open(nil, h.nonce(o.x.counter, nonce), body, aad); err == nil {
			e.stats.Accepted++
			p.rssi, p.snr = rssi, snr
			o.stats.heard(e.o.Airtime(len(frame)), rssi, snr)
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
