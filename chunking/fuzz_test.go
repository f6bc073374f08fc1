package chunking

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzReceive feeds arbitrary frames to an engine in the middle of an
// exchange: the decoder must neither panic nor accept anything.
func FuzzReceive(f *testing.F) {
	recorded = recordExchange(f, nil, testPSK, payload(600, 1))
	for _, fr := range recorded {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 1, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		n := newVnet(t, 0, 1)
		a, b := n.add(1, &EngineOpts{Peers: []Addr{2}}), n.add(2, &EngineOpts{Peers: []Addr{1}})
		a.e.Send(n.now, 2, payload(600, 1), false)
		n.run(200 * time.Millisecond)
		for _, v := range []*vnode{a, b} {
			before := v.e.Stats().Accepted
			v.e.Receive(n.now, frame, 0, 0)
			if v.e.Stats().Accepted != before && !isRecorded(frame) {
				t.Fatalf("node %d accepted %x", v.addr, frame)
			}
		}
		n.run(time.Hour)
	})
}

var recorded [][]byte

func isRecorded(f []byte) bool {
	for _, r := range recorded {
		if bytes.Equal(r, f) {
			return true
		}
	}
	return false
}

// FuzzReassemble plays a keyed but malicious peer: the input is a list of
// frames (control word, counter offset, body) that are sealed with the
// real key, so they reach the reassembler and the ACK decoder. Whatever
// the sequence, nothing panics, buffers stay under the cap, and whatever is
// delivered passed its integrity check.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{0x98, 0x00, 0, 4, 'a', 'b', 'c', 'd'})
	f.Add([]byte{0x80, 0x00, 0, 3, 1, 2, 3, 0x98, 0x01, 0, 2, 9, 9, 0x10, 0x01, 0, 0})
	f.Add([]byte{0x88, 0x05, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x00, 0, 0, 0x00, 0x01, 0, 3, 0x80, 1, 2})
	f.Fuzz(func(t *testing.T, ops []byte) { reassembleOps(t, ops) })
}

func reassembleOps(t testing.TB, ops []byte) {
	if len(ops) > 1024 {
		ops = ops[:1024]
	}
	{
		const maxBuf = 4096
		e, err := NewEngine(2, testPSK, &EngineOpts{Peers: []Addr{1}, MaxMessage: 2000, MaxBuffered: maxBuf})
		if err != nil {
			t.Fatal(err)
		}
		attacker, err := NewEngine(1, testPSK, &EngineOpts{Peers: []Addr{2}})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := attacker.peer(2)
		now := time.Unix(1e9, 0)
		for len(ops) >= 4 {
			ctl := binary.BigEndian.Uint16(ops)
			c := uint32(1 + ops[2]%4)
			n := min(int(ops[3]), len(ops)-4)
			body := ops[4 : 4+n]
			ops = ops[4+n:]
			h := header{link: p.txTag, hint: byte(c), ctl: ctl, hi: c >> 8}
			if !h.isFrag() && h.ctlType() > ctlRpoll {
				continue
			}
			e.Receive(now, p.sealFrame(h, c, body), 0, 0)
			now = now.Add(50 * time.Millisecond)
			e.Tick(now)
			for k := 0; e.Ready(now); k++ {
				if k > 5000 {
					t.Fatal("engine keeps producing frames without waiting")
				}
				e.NextFrame(now)
				e.TxDone(now, nil)
			}
			if e.buffered > maxBuf || e.buffered < 0 {
				t.Fatalf("buffered %d bytes, cap %d", e.buffered, maxBuf)
			}
			for ev, ok := e.Event(); ok; ev, ok = e.Event() {
				if len(ev.Data) > 2000 {
					t.Fatalf("delivered %d bytes over the 2000-byte limit", len(ev.Data))
				}
				if ev.Kind == EventRequest {
					e.Reply(now, ev.ID, ev.Data, false)
				}
			}
		}
	}
}

// FuzzAck checks the acknowledgement codec: decoding never panics, and
// an encoded bitmap never reports a fragment that did not arrive.
func FuzzAck(f *testing.F) {
	f.Add([]byte{0xff, 0x00, 0x0f}, uint16(20), uint8(48))
	f.Add([]byte{0x80, 0x01, 0x02}, uint16(300), uint8(4))
	f.Fuzz(func(t *testing.T, bits []byte, n uint16, limit uint8) {
		acked := make([]bool, int(n)%maxFrags)
		decodeAck(bits, acked)
		have := make([]bool, len(bits)*8)
		for i := range have {
			have[i] = bits[i/8]&(0x80>>(i%8)) != 0
		}
		lim := 2 + int(limit)%64
		for _, known := range []bool{false, true} {
			nn := -1
			if known {
				nn = len(have)
			}
			body := encodeAck(have, nn, lim)
			if len(body) > max(lim, 2) {
				t.Fatalf("ack of %d bytes, limit %d", len(body), lim)
			}
			got := make([]bool, len(have))
			if err := decodeAck(body, got); err != nil {
				t.Fatalf("decode own ack %x: %v", body, err)
			}
			for i := range have {
				if got[i] && !have[i] {
					t.Fatalf("fragment %d reported but missing (ack %x)", i, body)
				}
				if !got[i] && have[i] && len(body) < lim && (known || i < len(have)) && len(body) >= 2 && body[0]&0x80 != 0 {
					t.Fatalf("list ack %x omits fragment %d", body, i)
				}
			}
			if known && len(body) == 0 && bytes.Contains(bits, []byte{0}) && len(have) > 0 {
				for i := range have {
					if !have[i] {
						t.Fatalf("empty ack though fragment %d missing", i)
					}
				}
			}
		}
	})
}
