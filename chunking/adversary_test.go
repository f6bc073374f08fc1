package chunking

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// recordExchange runs one exchange and returns every frame sent.
func recordExchange(t testing.TB, o *EngineOpts, psk []byte, req []byte) [][]byte {
	t.Helper()
	n := newVnet(t, 0, 9)
	var frames [][]byte
	n.trace = func(_ Addr, f []byte) { frames = append(frames, bytes.Clone(f)) }
	mk := func(addr Addr) *vnode {
		var opts EngineOpts
		if o != nil {
			opts = *o
		}
		e, err := NewEngine(addr, psk, &opts)
		if err != nil {
			t.Fatal(err)
		}
		v := &vnode{addr: addr, e: e}
		n.nodes = append(n.nodes, v)
		return v
	}
	a, b := mk(1), mk(2)
	exchange(t, n, a, b, req)
	return frames
}

// TestAdversary injects hostile frames next to a legitimate exchange: none
// is accepted, nothing panics, and the exchange completes exactly once.
func TestAdversary(t *testing.T) {
	oldFrames := recordExchange(t, nil, testPSK, payload(3000, 77))
	otherKey := recordExchange(t, nil, []byte("another pre-shared key, 32 bytes"), payload(3000, 1))
	otherLink := recordExchange(t, &EngineOpts{LinkID: 9}, testPSK, payload(3000, 1))
	type attack func(r *rand.Rand, f []byte) (inject []byte, mustReject bool)
	for _, tc := range []struct {
		name string
		fn   attack
	}{
		{"forged", func(r *rand.Rand, f []byte) ([]byte, bool) {
			g := bytes.Clone(f)
			for i := hdrLen; i < len(g); i++ {
				g[i] = byte(r.Uint32())
			}
			return g, true
		}},
		{"forged header", func(r *rand.Rand, f []byte) ([]byte, bool) {
			g := bytes.Clone(f)
			g[1+r.IntN(3)] ^= byte(1 + r.IntN(255))
			return g, true
		}},
		{"truncated", func(r *rand.Rand, f []byte) ([]byte, bool) { return bytes.Clone(f[:r.IntN(len(f))]), true }},
		{"bit flipped", func(r *rand.Rand, f []byte) ([]byte, bool) {
			g := bytes.Clone(f)
			i := r.IntN(len(g) * 8)
			g[i/8] ^= 1 << (i % 8)
			return g, true
		}},
		{"replayed", func(r *rand.Rand, _ []byte) ([]byte, bool) { return oldFrames[r.IntN(len(oldFrames))], true }},
		{"other key", func(r *rand.Rand, _ []byte) ([]byte, bool) { return otherKey[r.IntN(len(otherKey))], true }},
		{"other link", func(r *rand.Rand, _ []byte) ([]byte, bool) { return otherLink[r.IntN(len(otherLink))], true }},
		{"junk", func(r *rand.Rand, _ []byte) ([]byte, bool) {
			g := make([]byte, r.IntN(256))
			for i := range g {
				g[i] = byte(r.Uint32())
			}
			return g, true
		}},
		{"duplicated", func(_ *rand.Rand, f []byte) ([]byte, bool) { return bytes.Clone(f), false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range 10 {
				n := newVnet(t, 0.1, uint64(seed))
				cs := &EngineOpts{CarrierSense: seed%2 == 1}
				// The recorded exchange is replayed after two newer ones
				// (frames of the latest message are duplicates, which the
				// "duplicated" case covers).
				a, b := n.add(1, cs), n.add(2, cs)
				exchange(t, n, a, b, payload(3000, 77))
				exchange(t, n, a, b, payload(10, 78))
				a.events, b.events = nil, nil
				r := rand.New(rand.NewPCG(uint64(seed), 5))
				var delayed [][]byte
				rejected := 0
				n.tap = func(from Addr, f []byte) [][]byte {
					to := b
					if from == 2 {
						to = a
					}
					for range 3 {
						g, must := tc.fn(r, f)
						if !must {
							delayed = append(delayed, g)
							continue
						}
						before := to.e.Stats().Accepted
						to.e.Receive(n.now, g, 0, 0)
						if to.e.Stats().Accepted != before {
							t.Fatalf("seed %d: %s frame %x accepted", seed, tc.name, g)
						}
						rejected++
					}
					// Reordering: an earlier duplicate arrives after this frame.
					if len(delayed) > 0 && r.IntN(2) == 0 {
						i := r.IntN(len(delayed))
						return [][]byte{delayed[i]}
					}
					return nil
				}
				req := payload(5000, uint64(seed))
				exchange(t, n, a, b, req)
				if got := b.find(EventRequest); len(got) != 1 || !bytes.Equal(got[0].Data, req) {
					t.Fatalf("seed %d: %d requests delivered", seed, len(got))
				}
				if len(a.find(EventFailed))+len(b.find(EventFailed)) != 0 {
					t.Fatalf("seed %d: failures", seed)
				}
				if tc.name != "duplicated" && rejected == 0 {
					t.Fatal("no attack frames injected")
				}
			}
		})
	}
}

// TestJunkFlood: a flood of junk, including frames that carry the right
// link byte, allocates no state and leaves a concurrent exchange intact.
func TestJunkFlood(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, &EngineOpts{MaxMessage: 8 << 10, MaxBuffered: 16 << 10}), n.add(2, &EngineOpts{MaxMessage: 8 << 10, MaxBuffered: 16 << 10})
	r := rand.New(rand.NewPCG(1, 1))
	_, t12, _ := pairSecrets(testPSK, 0, CCM8, 1, 2)
	_, t21, _ := pairSecrets(testPSK, 0, CCM8, 2, 1)
	tags := []byte{t12, t21}
	maxBuf := 0
	n.tap = func(Addr, []byte) [][]byte {
		for range 200 {
			g := make([]byte, 1+r.IntN(255))
			for i := range g {
				g[i] = byte(r.Uint32())
			}
			if r.IntN(2) == 0 {
				g[0] = tags[r.IntN(len(tags))]
			}
			a.e.Receive(n.now, g, 0, 0)
			b.e.Receive(n.now, g, 0, 0)
		}
		maxBuf = max(maxBuf, a.e.buffered, b.e.buffered)
		return nil
	}
	exchange(t, n, a, b, payload(8000, 3))
	if maxBuf > 16<<10 {
		t.Fatalf("buffered %d bytes, cap %d", maxBuf, 16<<10)
	}
	if s := b.e.Stats(); s.Dropped < 1000 {
		t.Fatalf("stats %+v: the flood did not reach the engine", s)
	}
	for _, v := range []*vnode{a, b} {
		for _, ev := range v.events {
			if ev.Kind != EventRequest && ev.Kind != EventReply && ev.Kind != EventProgress {
				t.Fatalf("node %d: unexpected event %v", v.addr, ev.Kind)
			}
		}
	}
}

// TestReplyCache: every frame of a completed request replayed later makes
// the replier resend its cached answer (or confirm), never run the handler
// again.
func TestReplyCache(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, nil), n.add(2, nil)
	var frames [][]byte
	n.trace = func(from Addr, f []byte) {
		if from == 1 {
			frames = append(frames, bytes.Clone(f))
		}
	}
	calls := 0
	exchange(t, n, a, b, payload(2000, 1))
	b.onRequest = func(ev Event) ([]byte, bool) { calls++; return []byte("again"), false }
	n.trace = nil
	sent := n.frames
	for _, f := range frames {
		b.e.Receive(n.now, f, 0, 0)
	}
	n.run(time.Hour)
	if calls != 0 {
		t.Fatalf("handler ran %d more times", calls)
	}
	if n.frames == sent {
		t.Fatal("repeated request not answered from the cache")
	}
	if got := len(a.find(EventReply)); got != 1 {
		t.Fatalf("requester saw %d replies, want 1", got)
	}
}

func TestCounterResync(t *testing.T) {
	// The sender used 1000 counters the receiver never saw (messages lost
	// while it was away): the first burst cannot be placed, the POLL that
	// follows carries the upper counter bits and resynchronises.
	store := &MemStore{}
	store.Save(Counters{Tx: map[Addr]uint32{2: 1001}})
	n := newVnet(t, 0, 1)
	a, b := n.add(1, &EngineOpts{Store: store}), n.add(2, nil)
	exchange(t, n, a, b, []byte("after a gap"))
}
