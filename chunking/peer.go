package chunking

import (
	"crypto/cipher"
	"fmt"
	"slices"
	"time"
)

// peer is what the engine keeps about one peer: its keys and counters,
// our messages to it, its latest message to us, and the frames queued for it.
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
	// settle: until then the peer may ask again for a final
	// acknowledgement we sent it, if it lost that frame.
	settle time.Time
}

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

// sealFrame seals a frame to p about the message with counter; the header
// is the associated data and, with the counter, the nonce.
func (p *peer) sealFrame(h header, counter uint32, body []byte) []byte {
	var n [nonceLen]byte
	b := h.appendTo(make([]byte, 0, h.size()+len(body)+p.seal.Overhead()))
	return p.seal.Seal(b, h.nonce(counter, n[:p.seal.NonceSize()]), body, b)
}

// control seals a control frame of type t about the message with counter.
func (p *peer) control(t ctlType, seq int, counter uint32, body []byte) []byte {
	return p.sealFrame(header{link: p.txTag, hint: byte(counter), ctl: ctlCtl(t, seq)}, counter, body)
}

// queueAck queues the ACK about m, going at, which replaces one still
// waiting; limit caps its body. It returns the ACK, nil if m has used up
// its sequence numbers.
func (p *peer) queueAck(m *inMsg, at time.Time, limit int) *txItem {
	p.unqueueAck(m)
	m.ackSeq++
	if m.ackSeq > seqMask {
		return nil
	}
	body := m.r.ackBody(limit)
	// An ACK with gaps asks the sender to resend them at once: stay quiet
	// for that burst (a half-duplex radio that talks to another peer
	// meanwhile is deaf to it).
	it := &txItem{p: p, frame: p.control(ctlAck, m.ackSeq, m.counter, body), notBefore: at, st: &m.stats, solicit: body != nil}
	p.urgent = append(p.urgent, it)
	return it
}

// queueRefuse tells p, at, that its message counter cannot be taken, and
// why.
func (p *peer) queueRefuse(counter uint32, reason int, at time.Time) {
	p.urgent = append(p.urgent, &txItem{p: p, frame: p.control(ctlRefuse, reason, counter, nil), notBefore: at})
}

// queueAbort tells p to forget o.
func (p *peer) queueAbort(o *outMsg) {
	p.urgent = append(p.urgent, &txItem{p: p, frame: p.control(ctlAbort, 0, o.x.counter, nil), st: &o.stats})
}

// ours returns our message a frame with counter low byte hint is about:
// the one going on, or the last request, whose final RACK may be asked
// for again.
func (p *peer) ours(hint byte) *outMsg {
	if len(p.out) > 0 && p.out[0].x != nil && byte(p.out[0].x.counter) == hint {
		return p.out[0]
	}
	if d := p.lastDone; d != nil && byte(d.x.counter) == hint {
		return d
	}
	return nil
}

// unqueueAck drops the ACK about m still waiting to go: a newer one
// replaces it, or more of the burst came.
func (p *peer) unqueueAck(m *inMsg) {
	p.urgent = slices.DeleteFunc(p.urgent, func(it *txItem) bool { return it.x == nil && it.st == &m.stats })
}

// unqueueFinalRack drops the final RACK of o still waiting to go.
func (p *peer) unqueueFinalRack(o *outMsg) {
	p.urgent = slices.DeleteFunc(p.urgent, func(it *txItem) bool { return it.finalRack && it.st == &o.stats })
}
