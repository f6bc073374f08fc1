package chunking

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// frameKind names a frame by its clear header, for traces.
func frameKind(t testing.TB, f []byte) string {
	t.Helper()
	h, _, err := parseHeader(f, 8)
	if err != nil {
		t.Fatalf("unparsable frame: %v", err)
	}
	if h.isFrag() {
		return [...]string{"request", "oneway", "reply", "error"}[h.kind()]
	}
	return map[ctlType]string{ctlAck: "ack", ctlPoll: "poll", ctlRack: "rack", ctlAbort: "abort", ctlRefuse: "refuse", ctlRpoll: "rpoll"}[h.ctlType()]
}

// backToBack runs n requests from a to b, each sent as soon as the reply
// to the previous one arrives, and returns the frames on the air in order.
func backToBack(t *testing.T, nw *vnet, a, b *vnode, n int) []string {
	t.Helper()
	var trace []string
	nw.trace = func(from Addr, f []byte) { trace = append(trace, fmt.Sprintf("%d:%s", from, frameKind(t, f))) }
	b.onRequest = func(ev Event) ([]byte, bool) { return reverse(ev.Data), false }
	sent := 0
	send := func() {
		if _, err := a.e.Send(nw.now, b.addr, payload(101, uint64(sent)), false); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	a.onEvent = func(ev Event) {
		if ev.Kind == EventReply && sent < n {
			send()
		}
	}
	send()
	nw.run(time.Hour)
	if got := len(a.find(EventReply)); got != n {
		t.Fatalf("%d replies, want %d; trace %v", got, n, trace)
	}
	if f := append(a.find(EventFailed), b.find(EventFailed)...); len(f) > 0 {
		t.Fatalf("failures: %+v", f)
	}
	if got := len(b.find(EventRequest)); got != n {
		t.Fatalf("handler ran %d times, want %d", got, n)
	}
	for i, ev := range a.find(EventReply) {
		if !bytes.Equal(ev.Data, reverse(payload(101, uint64(i)))) {
			t.Fatalf("reply %d corrupted", i)
		}
	}
	return trace
}

// TestImplicitRack: back to back, each request acknowledges the previous
// reply; only the last reply gets an explicit RACK, and no request waits
// for a RACK or a back-off.
func TestImplicitRack(t *testing.T) {
	for _, cs := range []bool{false, true} {
		t.Run(fmt.Sprintf("carrierSense=%v", cs), func(t *testing.T) {
			nw := newVnet(t, 0, 1)
			o := &EngineOpts{CarrierSense: cs}
			a, b := nw.add(1, o), nw.add(2, o)
			const n = 6
			trace := backToBack(t, nw, a, b, n)
			var want []string
			for range n {
				want = append(want, "1:request", "2:reply")
			}
			want = append(want, "1:rack")
			if fmt.Sprint(trace) != fmt.Sprint(want) {
				t.Fatalf("frames %v, want %v", trace, want)
			}
			// Each exchange costs its two frames and a turnaround, however
			// soon it follows the previous one.
			for i, ev := range a.find(EventReply) {
				air := 2 * nw.airtime(117) // 101 bytes, CRC, header and tag each way
				if ev.Stats.Latency != air+10*time.Millisecond || ev.Stats.Airtime != air {
					t.Errorf("exchange %d: latency %v, airtime %v; want %v and %v", i, ev.Stats.Latency, ev.Stats.Airtime, air+10*time.Millisecond, air)
				}
			}
		})
	}
}

// TestImplicitRackLost: the request that carries the acknowledgement is
// lost; the replier asks with an RPOLL, gets the RACK from the requester's
// memory, and both exchanges complete once.
func TestImplicitRackLost(t *testing.T) {
	for _, cs := range []bool{false, true} {
		t.Run(fmt.Sprintf("carrierSense=%v", cs), func(t *testing.T) {
			nw := newVnet(t, 0, 1)
			o := &EngineOpts{CarrierSense: cs}
			a, b := nw.add(1, o), nw.add(2, o)
			requests := 0
			nw.drop = func(from Addr, f []byte) bool {
				if from == 1 && frameKind(t, f) == "request" {
					requests++
					return requests == 2 // the first copy of the second request
				}
				return false
			}
			trace := backToBack(t, nw, a, b, 3)
			var rpoll, rack bool
			for _, f := range trace {
				rpoll = rpoll || f == "2:rpoll"
				rack = rack || (f == "1:rack" && rpoll)
			}
			if !rpoll || !rack {
				t.Fatalf("want an RPOLL answered by a RACK; frames %v", trace)
			}
		})
	}
}

// TestReplayIsNoRack: a replayed older request is not taken as the
// acknowledgement of the latest reply: the replier keeps the reply and
// keeps asking for its RACK.
func TestReplayIsNoRack(t *testing.T) {
	nw := newVnet(t, 0, 1)
	a, b := nw.add(1, nil), nw.add(2, nil)
	var reqs [][]byte
	nw.trace = func(from Addr, f []byte) {
		if from == 1 && frameKind(t, f) == "request" {
			reqs = append(reqs, bytes.Clone(f))
		}
	}
	exchange(t, nw, a, b, payload(101, 1))
	// The second exchange's RACK never arrives.
	nw.drop = func(from Addr, f []byte) bool { return from == 1 && frameKind(t, f) == "rack" }
	b.onRequest = func(ev Event) ([]byte, bool) { return []byte("second"), false }
	a.e.Send(nw.now, 2, payload(101, 2), false)
	nw.run(300 * time.Millisecond) // request and reply; the RACK is held back
	if len(a.find(EventReply)) != 2 || len(reqs) != 2 {
		t.Fatalf("replies %d, requests %d", len(a.find(EventReply)), len(reqs))
	}
	p := b.e.peers[1]
	if p.in == nil || p.in.rx == nil || p.in.rx.state == xDone {
		t.Fatal("reply already settled before any acknowledgement")
	}
	dropped := b.e.Stats().Dropped
	b.e.Receive(nw.now, reqs[0], 0, 0) // the first request, replayed
	if b.e.Stats().Dropped != dropped+1 {
		t.Fatal("replayed request accepted")
	}
	if p.in == nil || p.in.rx == nil || p.in.rx.state == xDone || p.in.counter == 0 {
		t.Fatal("a replayed request settled the reply")
	}
	var rpolls int
	nw.trace = func(from Addr, f []byte) {
		if from == 2 && frameKind(t, f) == "rpoll" {
			rpolls++
		}
	}
	nw.run(2 * time.Second)
	if rpolls == 0 {
		t.Fatal("the replier stopped asking for the RACK")
	}
	if n := len(b.find(EventRequest)); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}
