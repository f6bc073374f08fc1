package chunking

import (
	"encoding/binary"
	"errors"
)

// On-air frame (see README for the diagram):
//
//	byte 0     link byte: HKDF(PSK, link id, source, destination), 1 byte
//	byte 1     low 8 bits of the 32-bit message counter
//	bytes 2-3  control word, big-endian:
//	           fragment: 1 k k p l i i i i i i i i i i i
//	                     k: request, one-way, reply, error reply; p: end of
//	                     burst, answer me; l: last fragment; i: index
//	           control:  0 t t t s s s s s s s s s s s s
//	                     t: ACK, POLL, RACK, ABORT, REFUSE, RPOLL;
//	                     s: sequence
//	[bytes 4-6 POLL only: bits 8-31 of the counter, so a receiver that lost
//	 track of the counter can resynchronise]
//	ciphertext, then the 8-byte tag
//
// The header is the AEAD's associated data. The 13-byte nonce is never
// sent: it is the control word and the full counter, so every distinct
// header (and so every distinct plaintext) gets its own nonce.
const (
	hdrLen    = 4
	pollExt   = 3
	nonceLen  = 13
	maxFrags  = 1 << 11
	fragFlag  = 0x8000
	pollFlag  = 0x1000
	lastFlag  = 0x0800
	idxMask   = 0x07ff
	seqMask   = 0x0fff
	kindShift = 13
	typeShift = 12
)

// Fragment kinds: which message the payload belongs to.
type fragKind uint8

const (
	kindRequest fragKind = iota // a request; answered by a reply
	kindOneWay                  // a message answered by an ACK only
	kindReply                   // the reply to the destination's request
	kindError                   // the reply is the handler's error text
)

// Control frame types.
type ctlType uint8

const (
	ctlAck    ctlType = iota // receiver → sender: which fragments arrived (empty body: all)
	ctlPoll                  // sender → receiver: answer with an ACK
	ctlRack                  // requester → replier: which reply fragments arrived
	ctlAbort                 // sender → receiver: forget the message
	ctlRefuse                // receiver → sender: the message cannot be taken; seq is the reason
	ctlRpoll                 // replier → requester: answer with an RACK
)

// Reasons a receiver refuses a message, carried in a REFUSE frame's
// sequence field (so each reason has its own nonce); refusal says what
// each means to the sender.
const (
	refuseStale    = 1 // counter already used: the receiver restarted mid-exchange
	refuseTooLarge = 2
	refuseCorrupt  = 3
	refuseBusy     = 4 // out of buffer space
	refuseBacklog  = 5 // a whole request nobody is ready to handle (Engine.Busy)
)

type header struct {
	link byte
	hint byte
	ctl  uint16
	hi   uint32 // POLL only: counter bits 8-31
}

func (h header) isFrag() bool     { return h.ctl&fragFlag != 0 }
func (h header) kind() fragKind   { return fragKind(h.ctl>>kindShift) & 3 }
func (h header) poll() bool       { return h.ctl&pollFlag != 0 }
func (h header) last() bool       { return h.ctl&lastFlag != 0 }
func (h header) idx() int         { return int(h.ctl & idxMask) }
func (h header) ctlType() ctlType { return ctlType(h.ctl>>typeShift) & 7 }
func (h header) seq() int         { return int(h.ctl & seqMask) }
func (h header) size() int        { return hdrLen + h.extLen() }
func (h header) hasHi() bool      { return !h.isFrag() && h.ctlType() == ctlPoll }
func (h header) extLen() int {
	if h.hasHi() {
		return pollExt
	}
	return 0
}

func fragCtl(k fragKind, idx int, poll, last bool) uint16 {
	c := uint16(fragFlag) | uint16(k)<<kindShift | uint16(idx)&idxMask
	if poll {
		c |= pollFlag
	}
	if last {
		c |= lastFlag
	}
	return c
}

func ctlCtl(t ctlType, seq int) uint16 { return uint16(t)<<typeShift | uint16(seq)&seqMask }

var (
	errShort   = errors.New("chunking: frame too short")
	errBadType = errors.New("chunking: unknown frame type")
)

// parseHeader splits a received frame into its header and sealed body. It
// checks only the structure; authenticity is the AEAD's job.
func parseHeader(b []byte, tagLen int) (header, []byte, error) {
	if len(b) < hdrLen+tagLen {
		return header{}, nil, errShort
	}
	h := header{link: b[0], hint: b[1], ctl: binary.BigEndian.Uint16(b[2:4])}
	if !h.isFrag() && h.ctlType() > ctlRpoll {
		return header{}, nil, errBadType
	}
	if h.hasHi() {
		if len(b) < hdrLen+pollExt+tagLen {
			return header{}, nil, errShort
		}
		h.hi = uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	}
	return h, b[h.size():], nil
}

func (h header) appendTo(b []byte) []byte {
	b = append(b, h.link, h.hint, byte(h.ctl>>8), byte(h.ctl))
	if h.hasHi() {
		b = append(b, byte(h.hi>>16), byte(h.hi>>8), byte(h.hi))
	}
	return b
}

func (h header) nonce(counter uint32, n []byte) []byte {
	clear(n)
	binary.BigEndian.PutUint16(n[0:], h.ctl)
	binary.BigEndian.PutUint32(n[2:], counter)
	return n
}

// Acknowledgement bodies. Empty: everything arrived. Otherwise a 16-bit
// word whose top bit selects the form and whose low 11 bits are a fragment
// index b, followed by
//   - bitmap form: fragments below b arrived, b did not, then one bit per
//     fragment from b+1 (MSB first); fragments past the bitmap are missing
//     (trailing zero bytes are cut, as RFC 8724 cuts trailing ones);
//   - list form (only once the last fragment is known): b is missing and so
//     is each further index given as a uvarint gap; all others arrived.
//
// The receiver sends whichever is shorter.
const ackList = 0x8000

// encodeAck describes have[0:n] (n = -1 while the last fragment is unknown;
// then have's length bounds what is known) in at most limit bytes.
func encodeAck(have []bool, n, limit int) []byte {
	top := n
	if top < 0 {
		top = len(have)
	}
	first := -1
	for i := 0; i < top; i++ {
		if !have[i] {
			first = i
			break
		}
	}
	if first < 0 {
		if n >= 0 {
			return nil
		}
		first = top
	}
	bm := binary.BigEndian.AppendUint16(nil, uint16(first))
	end := first + 1
	for i := top - 1; i > first; i-- {
		if have[i] {
			end = i + 1
			break
		}
	}
	for i := first + 1; i < end; i += 8 {
		var v byte
		for j := 0; j < 8 && i+j < end; j++ {
			if have[i+j] {
				v |= 0x80 >> j
			}
		}
		bm = append(bm, v)
	}
	if n >= 0 {
		l := binary.BigEndian.AppendUint16(nil, uint16(ackList|first))
		prev := first
		for i := first + 1; i < n && len(l) <= len(bm); i++ {
			if !have[i] {
				l = binary.AppendUvarint(l, uint64(i-prev))
				prev = i
			}
		}
		if len(l) < len(bm) && len(l) <= limit {
			return l
		}
	}
	if len(bm) > limit {
		// Fragments past the cut read as missing: the sender resends a few
		// it need not, never skips one it must.
		bm = bm[:max(limit, 2)]
	}
	return bm
}

var errBadAck = errors.New("chunking: malformed acknowledgement")

// decodeAck marks in acked (len n, the sender's fragment count) what body
// reports as received.
func decodeAck(body []byte, acked []bool) error {
	n := len(acked)
	if len(body) == 0 {
		for i := range acked {
			acked[i] = true
		}
		return nil
	}
	if len(body) < 2 {
		return errBadAck
	}
	w := binary.BigEndian.Uint16(body)
	b := int(w & idxMask)
	if b > n {
		return errBadAck
	}
	rest := body[2:]
	if w&ackList == 0 {
		for i := 0; i < b; i++ {
			acked[i] = true
		}
		for j, v := range rest {
			for k := 0; k < 8; k++ {
				if i := b + 1 + j*8 + k; v&(0x80>>k) != 0 && i < n {
					acked[i] = true
				}
			}
		}
		return nil
	}
	missing := make([]bool, n)
	if b < n {
		missing[b] = true
	}
	i := b
	for len(rest) > 0 {
		d, m := binary.Uvarint(rest)
		if m <= 0 || d == 0 || d > uint64(n) {
			return errBadAck
		}
		rest = rest[m:]
		i += int(d)
		if i >= n {
			return errBadAck
		}
		missing[i] = true
	}
	for j := range acked {
		if !missing[j] {
			acked[j] = true
		}
	}
	return nil
}
