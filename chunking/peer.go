package chunking

import (
	"crypto/cipher"
	"fmt"
	"slices"
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

func (e *Engine) seal(p *peer, h header, counter uint32, body []byte) []byte {
	var n [nonceLen]byte
	b := h.appendTo(make([]byte, 0, h.size()+len(body)+e.tagLen))
	return p.seal.Seal(b, h.nonce(counter, n[:p.seal.NonceSize()]), body, b)
}
