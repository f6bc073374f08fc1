package chunking

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func reverse(b []byte) []byte {
	out := bytes.Clone(b)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// exchange runs one request from a to b, b answering with the reversed
// request, and checks both arrive once and intact.
func exchange(t testing.TB, n *vnet, a, b *vnode, req []byte) Event {
	t.Helper()
	b.onRequest = func(ev Event) ([]byte, bool) { return reverse(ev.Data), false }
	id, err := a.e.Send(n.now, b.addr, req, false)
	if err != nil {
		t.Fatal(err)
	}
	n.run(2 * time.Hour)
	var got []Event
	for _, ev := range a.events {
		if ev.ID == id && (ev.Kind == EventReply || ev.Kind == EventFailed) {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("got %d outcomes, want 1: %+v", len(got), got)
	}
	if got[0].Kind != EventReply || !bytes.Equal(got[0].Data, reverse(req)) {
		t.Fatalf("got %v %v (%d bytes), want the reversed request", got[0].Kind, got[0].Err, len(got[0].Data))
	}
	return got[0]
}

func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		size  int
		loss  float64
		seeds int
	}{
		{0, 0, 1}, {1, 0, 1}, {100, 0, 1}, {237, 0, 1}, {238, 0, 1}, {5000, 0, 1}, {65536, 0, 1},
		{100, 0.3, 40}, {5000, 0.1, 20}, {5000, 0.3, 40}, {16384, 0.3, 6}, {65536, 0.5, 2},
	} {
		t.Run(fmt.Sprintf("size=%d/loss=%.1f", tc.size, tc.loss), func(t *testing.T) {
			for s := range tc.seeds {
				n := newVnet(t, tc.loss, uint64(s))
				// Odd seeds: the drivers listen before talking.
				cs := &EngineOpts{CarrierSense: s%2 == 1}
				a, b := n.add(1, cs), n.add(2, cs)
				calls := 0
				ev := exchange(t, n, a, b, payload(tc.size, uint64(s)))
				for _, e := range b.events {
					if e.Kind == EventRequest {
						calls++
					}
				}
				if calls != 1 {
					t.Fatalf("seed %d: handler ran %d times, want 1", s, calls)
				}
				if ev.Stats.Frames == 0 || ev.Stats.Airtime == 0 || ev.Stats.Latency == 0 {
					t.Errorf("seed %d: empty stats %+v", s, ev.Stats)
				}
				if a.e.buffered != 0 {
					t.Errorf("seed %d: requester still buffers %d bytes", s, a.e.buffered)
				}
			}
		})
	}
}

func TestSmallExchangeAirtime(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, nil), n.add(2, nil)
	b.onRequest = func(Event) ([]byte, bool) { return make([]byte, 50), false }
	a.e.Send(n.now, 2, make([]byte, 100), false)
	n.run(time.Minute)
	// request 116 B + reply 66 B + RACK 12 B at SF7/BW125.
	if n.frames != 3 || n.airTotal > 400*time.Millisecond {
		t.Errorf("got %d frames, %v of airtime; want 3 frames within 400 ms", n.frames, n.airTotal)
	}
}

func TestOneWay(t *testing.T) {
	for s := range 20 {
		n := newVnet(t, 0.3, uint64(s))
		a, b := n.add(1, nil), n.add(2, nil)
		msg := payload(3000, uint64(s))
		id, _ := a.e.Send(n.now, 2, msg, true)
		n.run(time.Hour)
		d := a.find(EventDelivered)
		m := b.find(EventMessage)
		if len(d) != 1 || d[0].ID != id || len(m) != 1 || !bytes.Equal(m[0].Data, msg) {
			t.Fatalf("seed %d: delivered %d, messages %d", s, len(d), len(m))
		}
	}
}

func TestHandlerError(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, nil), n.add(2, nil)
	b.onRequest = func(Event) ([]byte, bool) { return []byte("model not loaded"), true }
	a.e.Send(n.now, 2, []byte("hi"), false)
	n.run(time.Minute)
	r := a.find(EventReply)
	var re *RemoteError
	if len(r) != 1 || !errors.As(r[0].Err, &re) || re.Msg != "model not loaded" {
		t.Fatalf("got %+v, want a RemoteError", r)
	}
	if re.Code != CodeHandler || !errors.Is(r[0].Err, ErrHandler) {
		t.Errorf("got code %v, want a handler failure", re.Code)
	}
}

func TestTooLarge(t *testing.T) {
	n := newVnet(t, 0, 1)
	a := n.add(1, &EngineOpts{MaxMessage: 1000})
	if _, err := a.e.Send(n.now, 2, make([]byte, 1001), false); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// A peer with a smaller limit refuses the message.
	n2 := newVnet(t, 0, 1)
	big, small := n2.add(1, nil), n2.add(2, &EngineOpts{MaxMessage: 1000})
	big.e.Send(n2.now, 2, make([]byte, 5000), false)
	n2.run(time.Hour)
	f := big.find(EventFailed)
	if len(f) != 1 || !errors.Is(f[0].Err, ErrTooLarge) || len(small.find(EventRequest)) != 0 {
		t.Fatalf("got %+v, want a refusal", f)
	}
}

func TestPeerSilentAborts(t *testing.T) {
	n := newVnet(t, 1, 1) // nothing gets through
	a := n.add(1, nil)
	n.add(2, nil)
	a.e.Send(n.now, 2, make([]byte, 500), false)
	n.run(2 * time.Hour)
	f := a.find(EventFailed)
	if len(f) != 1 || !errors.Is(f[0].Err, ErrNoAck) {
		t.Fatalf("got %+v, want ErrNoAck", f)
	}
	if f[0].Stats.Frames < 32 {
		t.Errorf("gave up after %d frames, want at least the 32 ACK requests", f[0].Stats.Frames)
	}
}

func TestMultiPeer(t *testing.T) {
	for s := range 10 {
		n := newVnet(t, 0.1, uint64(s))
		gw := n.add(1, &EngineOpts{Peers: []Addr{2, 3, 4}, CarrierSense: s%2 == 0})
		p2 := n.add(2, &EngineOpts{Peers: []Addr{1, 3}, CarrierSense: s%2 == 0})
		p3 := n.add(3, &EngineOpts{Peers: []Addr{1, 2}, CarrierSense: s%2 == 0})
		n.add(4, &EngineOpts{Peers: []Addr{1}, CarrierSense: s%2 == 0}) // a bystander that hears everything
		for _, v := range n.nodes {
			v.onRequest = func(ev Event) ([]byte, bool) { return append([]byte{byte(v.addr)}, ev.Data...), false }
		}
		want := map[MsgID][]byte{}
		for i, to := range []Addr{2, 3, 2, 3} {
			m := payload(700*(i+1), uint64(i))
			id, _ := gw.e.Send(n.now, to, m, false)
			want[id] = append([]byte{byte(to)}, m...)
		}
		id23, _ := p2.e.Send(n.now, 3, []byte("from 2 to 3"), false)
		n.run(2 * time.Hour)
		for _, ev := range gw.find(EventReply) {
			if !bytes.Equal(ev.Data, want[ev.ID]) {
				t.Fatalf("seed %d: reply %d wrong", s, ev.ID)
			}
			delete(want, ev.ID)
		}
		if len(want) != 0 {
			t.Fatalf("seed %d: %d gateway requests unanswered; failures %+v", s, len(want), gw.find(EventFailed))
		}
		r := p2.find(EventReply)
		if len(r) != 1 || r[0].ID != id23 || string(r[0].Data) != "\x03from 2 to 3" {
			t.Fatalf("seed %d: peer-to-peer reply %+v", s, r)
		}
		if got := len(p3.find(EventRequest)); got != 3 {
			t.Fatalf("seed %d: node 3 handled %d requests, want 3", s, got)
		}
		if got := len(n.nodes[3].events); got != 0 {
			t.Fatalf("seed %d: bystander saw %d events", s, got)
		}
	}
}

func TestUnknownPeer(t *testing.T) {
	n := newVnet(t, 0, 1)
	a := n.add(1, &EngineOpts{Peers: []Addr{2}})
	if _, err := a.e.Send(n.now, 3, []byte("x"), false); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("got %v, want ErrUnknownPeer", err)
	}
}

// TestPowerCut restarts both ends from their counter files: the sender
// never reuses a counter (so never a nonce), the receiver never accepts a
// frame from before the restart, and the link keeps working.
func TestPowerCut(t *testing.T) {
	dir := t.TempDir()
	sa, sb := FileStore{filepath.Join(dir, "a.json")}, FileStore{filepath.Join(dir, "b.json")}
	n := newVnet(t, 0, 1)
	var sealed [][]byte
	n.trace = func(from Addr, f []byte) {
		if from == 1 {
			sealed = append(sealed, bytes.Clone(f))
		}
	}
	a, b := n.add(1, &EngineOpts{Store: sa}), n.add(2, &EngineOpts{Store: sb})
	used := map[uint32]bool{}
	for i := range 3 {
		exchange(t, n, a, b, []byte(fmt.Sprintf("before %d", i)))
		used[a.e.peers[2].lastDone.x.counter] = true
	}
	old := sealed
	sealed = nil
	for round := range 3 {
		// Power cut: fresh engines from the same files.
		n.nodes = nil
		a, b = n.add(1, &EngineOpts{Store: sa}), n.add(2, &EngineOpts{Store: sb})
		for _, f := range old {
			b.e.Receive(n.now, f, 0, 0)
		}
		if got := b.e.Stats().Accepted; got != 0 {
			t.Fatalf("round %d: receiver accepted %d frames recorded before the restart", round, got)
		}
		b.events = nil
		exchange(t, n, a, b, []byte(fmt.Sprintf("after %d", round)))
		c := a.e.peers[2].lastDone.x.counter
		if used[c] {
			t.Fatalf("round %d: counter %d reused", round, c)
		}
		used[c] = true
	}
}

// TestReceiverRestartMidExchange: the receiver loses its state while a
// long request is in flight; the sender learns at once instead of retrying
// until its budget runs out.
func TestReceiverRestartMidExchange(t *testing.T) {
	store := &MemStore{}
	n := newVnet(t, 0, 1)
	a, _ := n.add(1, nil), n.add(2, &EngineOpts{Store: store})
	a.e.Send(n.now, 2, make([]byte, 10000), false)
	n.run(5 * time.Second)
	n.nodes = n.nodes[:1]
	n.add(2, &EngineOpts{Store: store})
	n.run(time.Hour)
	f := a.find(EventFailed)
	if len(f) != 1 || !errors.Is(f[0].Err, ErrRefused) {
		t.Fatalf("got %+v, want ErrRefused", f)
	}
}

func TestChaCha(t *testing.T) {
	n := newVnet(t, 0.1, 3)
	a, b := n.add(1, &EngineOpts{Cipher: ChaCha20Poly1305}), n.add(2, &EngineOpts{Cipher: ChaCha20Poly1305})
	exchange(t, n, a, b, payload(4000, 1))
}

func TestInvalidOpts(t *testing.T) {
	for _, tc := range []struct {
		name string
		psk  []byte
		o    EngineOpts
	}{
		{"short key", []byte("short"), EngineOpts{}},
		{"small budget", testPSK, EngineOpts{RetryBudget: time.Second}},
		{"tiny mtu", testPSK, EngineOpts{MTU: 12}},
		{"huge message", testPSK, EngineOpts{MTU: 30, MaxMessage: 1 << 20}},
		{"cipher", testPSK, EngineOpts{Cipher: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEngine(1, tc.psk, &tc.o); !errors.Is(err, ErrInvalidOpts) {
				t.Fatalf("got %v, want ErrInvalidOpts", err)
			}
		})
	}
}

// TestInactivity: a sender that stops mid-message does not pin the
// receiver's buffers, and is refused if it comes back much later.
func TestInactivity(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, nil), n.add(2, &EngineOpts{Inactivity: 30 * time.Second})
	var frames [][]byte
	n.trace = func(from Addr, f []byte) {
		if from == 1 {
			frames = append(frames, bytes.Clone(f))
		}
	}
	a.e.Send(n.now, 2, payload(5000, 1), false)
	n.run(3 * time.Second) // part of the burst
	n.nodes = n.nodes[1:]  // the sender disappears
	if b.e.buffered == 0 {
		t.Fatal("nothing buffered mid-message")
	}
	n.run(time.Minute)
	if b.e.buffered != 0 || b.e.peers[1].in != nil {
		t.Fatalf("still buffering %d bytes after the sender went away", b.e.buffered)
	}
	// The sender's next POLL about that message is refused, not answered.
	before := n.frames
	for _, f := range frames {
		if h, _, _ := parseHeader(f, 8); h.isFrag() && h.poll() || !h.isFrag() {
			b.e.Receive(n.now, f, 0, 0)
		}
	}
	b.e.Receive(n.now, frames[len(frames)-1], 0, 0)
	n.run(time.Second)
	_ = before
	if got := len(b.find(EventRequest)); got != 0 {
		t.Fatalf("%d requests delivered from a half message", got)
	}
}

// TestReplyCheck: the replier restarts after acknowledging a request whose
// handler is slow; the requester learns at its next check instead of
// waiting for its caller's deadline.
func TestReplyCheck(t *testing.T) {
	store := &MemStore{}
	n := newVnet(t, 0, 1)
	a := n.add(1, &EngineOpts{ReplyCheck: 20 * time.Second})
	b := n.add(2, &EngineOpts{Store: store})
	b.onRequest = func(Event) ([]byte, bool) { return nil, false } // slow handler
	a.e.Send(n.now, 2, []byte("slow"), false)
	n.run(5 * time.Second)
	if a.e.peers[2].out[0].state != oWaitReply {
		t.Fatal("request not acknowledged")
	}
	n.nodes = n.nodes[:1]
	n.add(2, &EngineOpts{Store: store})
	n.run(time.Minute)
	f := a.find(EventFailed)
	if len(f) != 1 || !errors.Is(f[0].Err, ErrRefused) {
		t.Fatalf("got %+v, want ErrRefused", f)
	}
}

func TestCancel(t *testing.T) {
	n := newVnet(t, 0, 1)
	a, b := n.add(1, nil), n.add(2, nil)
	id, _ := a.e.Send(n.now, 2, payload(8000, 1), false)
	queued, _ := a.e.Send(n.now, 2, []byte("queued behind"), false)
	n.run(3 * time.Second)
	if err := a.e.Cancel(n.now, id); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Cancel(n.now, id); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("second cancel: got %v", err)
	}
	n.run(time.Hour)
	for _, ev := range a.events {
		if ev.ID == id && ev.Kind != EventProgress {
			t.Fatalf("event %v after Cancel", ev.Kind)
		}
	}
	r := a.find(EventReply)
	if len(r) != 1 || r[0].ID != queued || string(r[0].Data) != string(reverse([]byte("queued behind"))) && string(r[0].Data) != "queued behind" {
		t.Fatalf("queued message: %+v", r)
	}
	if got := b.find(EventRequest); len(got) != 1 || string(got[0].Data) != "queued behind" {
		t.Fatalf("receiver got %d requests, want only the queued one", len(got))
	}
	if b.e.buffered > len("queued behind")+4 {
		t.Fatalf("receiver still buffers %d bytes of the cancelled message", b.e.buffered)
	}
}
