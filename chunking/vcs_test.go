package chunking

import (
	"fmt"
	"testing"
	"time"
)

// deafAir is a virtual-time air for stations without carrier sense (like
// the RYLR998): a station transmits whenever its engine is ready, whoever
// else is on the air; a station hears nothing while it transmits, and two
// frames that overlap at a receiver are both lost there. A station marked
// gone neither transmits nor hears.
type deafAir struct {
	t     testing.TB
	now   time.Time
	nodes []*vnode
	gone  map[Addr]bool
	drop  func(from Addr, f []byte) bool
	log   []*airFrame
}

type airFrame struct {
	from, to   Addr
	kind       string
	idx        int // fragment index
	size       int
	start, end time.Time
	dropped    bool
}

func newDeafAir(t testing.TB, seed uint64, addrs ...Addr) *deafAir {
	a := &deafAir{t: t, now: time.Unix(1e9, 0), gone: map[Addr]bool{}}
	for _, addr := range addrs {
		e, err := NewEngine(addr, testPSK, &EngineOpts{Seed: uint64(addr) + seed<<8})
		if err != nil {
			t.Fatal(err)
		}
		a.nodes = append(a.nodes, &vnode{addr: addr, e: e})
	}
	return a
}

func (a *deafAir) node(addr Addr) *vnode {
	for _, v := range a.nodes {
		if v.addr == addr {
			return v
		}
	}
	a.t.Fatalf("no node %d", addr)
	return nil
}

// lost reports whether f is lost at receiver r: r transmitted meanwhile,
// or another station's frame overlapped it.
func (a *deafAir) lost(f *airFrame, r Addr) bool {
	if f.dropped || a.gone[r] {
		return true
	}
	for _, o := range a.log {
		if o != f && o.from != f.from && o.start.Before(f.end) && f.start.Before(o.end) {
			return true
		}
	}
	return false
}

// run advances virtual time by at most d, until stop (if set) holds.
func (a *deafAir) run(d time.Duration, stop func() bool) {
	end := a.now.Add(d)
	type delivery struct {
		f     *airFrame
		frame []byte
		to    *vnode
	}
	var pending []delivery
	for steps := 0; a.now.Before(end); steps++ {
		if steps > 1e6 {
			a.t.Fatalf("virtual time stuck at %v", a.now)
		}
		for _, v := range a.nodes {
			if a.gone[v.addr] {
				continue
			}
			if dl, ok := v.e.Deadline(); ok && !dl.After(a.now) {
				v.e.Tick(a.now)
			}
			for ev, ok := v.e.Event(); ok; ev, ok = v.e.Event() {
				v.events = append(v.events, ev)
				if v.onEvent != nil {
					v.onEvent(ev)
				}
				if ev.Kind == EventRequest {
					ans, herr := reverse(ev.Data), false
					if v.onRequest != nil {
						ans, herr = v.onRequest(ev)
					}
					if err := v.e.Reply(a.now, ev.ID, ans, herr); err != nil {
						a.t.Errorf("reply: %v", err)
					}
				}
			}
		}
		if stop != nil && stop() {
			return
		}
		for _, v := range a.nodes {
			if a.gone[v.addr] || v.txing || !v.e.Ready(a.now) {
				continue
			}
			fr := v.e.NextFrame(a.now)
			if fr == nil {
				continue
			}
			h, _, err := parseHeader(fr, 8)
			if err != nil {
				a.t.Fatal(err)
			}
			f := &airFrame{from: v.addr, to: v.e.tx.p.addr, kind: frameKind(a.t, fr), size: len(fr), start: a.now, end: a.now.Add(v.e.o.Airtime(len(fr)))}
			if h.isFrag() {
				f.idx = h.idx()
			}
			f.dropped = a.drop != nil && a.drop(v.addr, fr)
			a.log = append(a.log, f)
			v.txing, v.txEnd = true, f.end
			for _, o := range a.nodes {
				if o != v {
					pending = append(pending, delivery{f, fr, o})
				}
			}
		}
		next := end
		later := func(t time.Time) {
			if t.After(a.now) && t.Before(next) {
				next = t
			}
		}
		for _, v := range a.nodes {
			if v.txing {
				later(v.txEnd)
			}
			if dl, ok := v.e.Deadline(); ok && !a.gone[v.addr] {
				later(dl)
			}
		}
		for _, p := range pending {
			later(p.f.end)
		}
		a.now = next
		for _, v := range a.nodes {
			if v.txing && !v.txEnd.After(a.now) {
				v.txing = false
				v.e.TxDone(a.now, nil)
			}
		}
		var keep []delivery
		for _, p := range pending {
			if p.f.end.After(a.now) {
				keep = append(keep, p)
			} else if !a.lost(p.f, p.to.addr) {
				p.to.e.Receive(a.now, p.frame, -90, 7)
			}
		}
		pending = keep
	}
}

// stall is the migration-stall setting: peer N (2) holds a reply to G (1),
// which got it but left without its RACK, so N keeps RPOLLing an empty
// address; after offset, requester A (4) sends N a request of four
// fragments whose second is lost on the channel once.
type stall struct {
	air     *deafAir
	a, n, g *vnode
	sent    time.Time
	first   int // index in air.log of A's first frame
	outcome *Event
	// delivered is when N had all of A's request.
	delivered time.Time
}

func runStall(t *testing.T, seed uint64, offset time.Duration) *stall {
	air := newDeafAir(t, seed, 1, 2, 4)
	s := &stall{air: air, g: air.node(1), n: air.node(2), a: air.node(4)}
	// A short answer: the request leg is what is under test.
	s.n.onRequest = func(ev Event) ([]byte, bool) {
		if ev.Peer == 4 {
			s.delivered = air.now
		}
		return []byte("ok"), false
	}
	s.g.onEvent = func(ev Event) {
		if ev.Kind == EventReply {
			air.gone[1] = true // before its RACK goes out
		}
	}
	if _, err := s.g.e.Send(air.now, 2, payload(40, seed), false); err != nil {
		t.Fatal(err)
	}
	air.run(10*time.Second, func() bool { return air.gone[1] })
	if !air.gone[1] {
		t.Fatal("G never got its reply")
	}
	air.run(offset, nil)
	dropped := false
	air.drop = func(from Addr, f []byte) bool {
		if from == 4 && !dropped && frameKind(t, f) == "request" {
			if h, _, _ := parseHeader(f, 8); h.idx() == 1 {
				dropped = true
				return true
			}
		}
		return false
	}
	req := payload(4*s.a.e.maxPayload()-20, seed+1)
	s.sent, s.first = air.now, len(air.log)
	id, err := s.a.e.Send(air.now, 2, req, false)
	if err != nil {
		t.Fatal(err)
	}
	s.a.onEvent = func(ev Event) {
		if ev.ID == id && (ev.Kind == EventReply || ev.Kind == EventFailed) {
			s.outcome = &ev
		}
	}
	air.run(2*time.Minute, func() bool { return s.outcome != nil })
	if !dropped {
		t.Fatal("no fragment was dropped")
	}
	return s
}

// isGapAck tells an ACK that lists missing fragments from one that does not.
func (s *stall) isGapAck(f *airFrame) bool {
	return f.from == 2 && f.to == 4 && f.kind == "ack" && f.size > hdrLen+8
}

func (s *stall) trace() string {
	var b []byte
	for _, f := range s.air.log[s.first:] {
		b = fmt.Appendf(b, "\n%8.3f-%8.3f %d>%d %s", f.start.Sub(s.sent).Seconds(), f.end.Sub(s.sent).Seconds(), f.from, f.to, f.kind)
		if f.kind == "request" {
			b = fmt.Appendf(b, "[%d]", f.idx)
		}
		if f.dropped {
			b = append(b, " (dropped)"...)
		}
	}
	return string(b)
}

// TestNoCarrierSenseRpollStall: without carrier sense, N's RPOLLs to a
// departed requester must not lock A out. After N's gap-ACK, A's resent
// fragment must find N listening, not talking to G, and A's request must
// finish within a few rounds instead of after N's RPOLL budget.
func TestNoCarrierSenseRpollStall(t *testing.T) {
	for seed := range uint64(3) {
		for _, off := range []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond, 450 * time.Millisecond, 600 * time.Millisecond} {
			t.Run(fmt.Sprintf("seed=%d/offset=%v", seed, off), func(t *testing.T) {
				s := runStall(t, seed, off)
				if s.outcome == nil || s.outcome.Kind != EventReply {
					t.Fatalf("no reply: %+v; frames:%s", s.outcome, s.trace())
				}
				took, frames := s.air.now.Sub(s.sent), len(s.air.log)-s.first
				var acked bool
				for _, f := range s.air.log[s.first:] {
					acked = acked || s.isGapAck(f)
					if !acked || f.from != 4 || f.kind != "request" {
						continue
					}
					for _, o := range s.air.log[s.first:] {
						if o.from == 2 && o.to == 1 && o.start.Before(f.end) && f.start.Before(o.end) {
							t.Fatalf("N RPOLLed G at %v while A resent fragment %d; frames:%s", o.start.Sub(s.sent), f.idx, s.trace())
						}
					}
				}
				if !acked {
					t.Fatalf("N sent no ACK with gaps; frames:%s", s.trace())
				}
				// N's RPOLL budget to G alone lasts over 20 s; a few of A's
				// poll rounds (about 2 s each) must do.
				if d := s.delivered.Sub(s.sent); s.delivered.IsZero() || d > 8*time.Second || took > 15*time.Second || frames > 30 {
					t.Fatalf("request delivered after %v, reply after %v, %d frames; want 8 s, 15 s, 30 frames at most; frames:%s", d, took, frames, s.trace())
				}
				t.Logf("request delivered after %v, reply after %v, %d frames", s.delivered.Sub(s.sent), took, frames)
			})
		}
	}
}

// TestGapAckListens: a receiver without carrier sense that sends an ACK
// listing gaps sends nothing (not even an overdue RPOLL to another peer)
// until the resent fragment has arrived or a window for it has passed.
func TestGapAckListens(t *testing.T) {
	s := runStall(t, 0, 0)
	o := s.n.e.o
	window := 2*o.Turnaround + o.Airtime(o.MTU)
	log := s.air.log[s.first:]
	n := 0
	for i, f := range log {
		if !s.isGapAck(f) {
			continue
		}
		n++
		quiet := f.end.Add(window)
		for _, r := range log[i+1:] {
			if r.from == 4 && !r.start.Before(f.end) {
				if r.end.Before(quiet) {
					quiet = r.end
				}
				break
			}
		}
		for _, r := range log[i+1:] {
			if r.from == 2 && r.start.Before(quiet) {
				t.Fatalf("N's gap-ACK ended at %v and N sent %s to %d at %v, before %v; frames:%s",
					f.end.Sub(s.sent), r.kind, r.to, r.start.Sub(s.sent), quiet.Sub(s.sent), s.trace())
			}
		}
	}
	if n == 0 {
		t.Fatalf("N sent no ACK with gaps; frames:%s", s.trace())
	}
}
