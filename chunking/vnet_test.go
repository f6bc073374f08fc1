package chunking

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// vnet is a small virtual-time air for tests: frames take their LoRa time
// on air, a transmitting node hears nothing, frames overlapping at a
// receiver are lost, and each reception is lost with probability loss. The
// adversary hook sees every frame and may inject others.
type vnet struct {
	t       testing.TB
	now     time.Time
	nodes   []*vnode
	loss    float64
	rng     *rand.Rand
	airtime func(int) time.Duration
	// tap sees each transmitted frame; it may return extra frames to
	// deliver to everyone right after it (forgeries, replays...).
	tap      func(from Addr, frame []byte) [][]byte
	airTotal time.Duration
	frames   int
	trace    func(from Addr, frame []byte)
	// drop, if set, loses a transmitted frame for every receiver.
	drop func(from Addr, frame []byte) bool
}

type vnode struct {
	addr    Addr
	e       *Engine
	txEnd   time.Time
	txing   bool
	backoff time.Time
	events  []Event
	// onRequest answers requests (nil: echo).
	onRequest func(ev Event) ([]byte, bool)
	// onEvent sees every event as it is produced.
	onEvent func(ev Event)
}

type delivery struct {
	at    time.Time
	start time.Time
	to    *vnode
	frame []byte
}

func newVnet(t testing.TB, loss float64, seed uint64) *vnet {
	return &vnet{t: t, now: time.Unix(1e9, 0), loss: loss, rng: rand.New(rand.NewPCG(seed, 1)), airtime: lora.Params{}.TimeOnAir}
}

var testPSK = []byte("0123456789abcdef0123456789abcdef")

func (n *vnet) add(addr Addr, o *EngineOpts) *vnode {
	n.t.Helper()
	var opts EngineOpts
	if o != nil {
		opts = *o
	}
	opts.Seed = uint64(addr)
	e, err := NewEngine(addr, testPSK, &opts)
	if err != nil {
		n.t.Fatal(err)
	}
	v := &vnode{addr: addr, e: e}
	n.nodes = append(n.nodes, v)
	return v
}

// run advances virtual time until nothing is pending or until is reached.
func (n *vnet) run(until time.Duration) {
	end := n.now.Add(until)
	var pending []delivery
	spin, last := 0, n.now
	for n.now.Before(end) {
		if n.now.Equal(last) {
			spin++
			if spin > 100000 {
				for _, v := range n.nodes {
					d, ok := v.e.Deadline()
					n.t.Logf("node %d: deadline %v %v ready %v listen %v tx %v", v.addr, d.Sub(n.now), ok, v.e.Ready(n.now), v.e.quiet.until.Sub(n.now), v.e.tx != nil)
				}
				n.t.Fatalf("virtual time stuck at %v", n.now)
			}
		} else {
			spin, last = 0, n.now
		}
		// Outputs.
		for _, v := range n.nodes {
			for ev, ok := v.e.Event(); ok; ev, ok = v.e.Event() {
				v.events = append(v.events, ev)
				if v.onEvent != nil {
					v.onEvent(ev)
				}
				if ev.Kind == EventRequest {
					ans, herr := ev.Data, false
					if v.onRequest != nil {
						ans, herr = v.onRequest(ev)
					}
					if ans != nil {
						if err := v.e.Reply(n.now, ev.ID, ans, herr); err != nil {
							n.t.Errorf("reply: %v", err)
						}
					}
				}
			}
		}
		busy := func(self *vnode) bool {
			for _, o := range n.nodes {
				if o != self && o.txing {
					return true
				}
			}
			return false
		}
		started := false
		for _, v := range n.nodes {
			if v.txing || n.now.Before(v.backoff) || !v.e.Ready(n.now) {
				continue
			}
			if busy(v) {
				v.backoff = n.now.Add(v.e.Backoff())
				continue
			}
			f := v.e.NextFrame(n.now)
			if f == nil {
				continue
			}
			if n.trace != nil {
				n.trace(v.addr, f)
			}
			at := n.airtime(len(f))
			n.airTotal += at
			n.frames++
			v.txing, v.txEnd = true, n.now.Add(at)
			frames := [][]byte{f}
			if n.tap != nil {
				frames = append(frames, n.tap(v.addr, f)...)
			}
			if n.drop != nil && n.drop(v.addr, f) {
				frames = frames[1:]
			}
			for _, o := range n.nodes {
				if o == v {
					continue
				}
				for _, fr := range frames {
					pending = append(pending, delivery{at: n.now.Add(at), start: n.now, to: o, frame: fr})
				}
			}
			started = true
		}
		if started {
			continue
		}
		// Next event.
		next := end
		for _, v := range n.nodes {
			if v.txing && v.txEnd.Before(next) {
				next = v.txEnd
			}
			if d, ok := v.e.Deadline(); ok {
				// A frame that is due but held back by the channel waits
				// for the back-off, not for the engine.
				if v.backoff.After(d) {
					d = v.backoff
				}
				if d.Before(next) {
					next = d
				}
			}
			if v.backoff.After(n.now) && v.backoff.Before(next) {
				next = v.backoff
			}
		}
		for _, d := range pending {
			if d.at.Before(next) {
				next = d.at
			}
		}
		if !next.After(n.now) {
			next = n.now
		}
		idle := next.Equal(end) && len(pending) == 0
		for _, v := range n.nodes {
			idle = idle && !v.txing
		}
		n.now = next
		for _, v := range n.nodes {
			if v.txing && !v.txEnd.After(n.now) {
				v.txing = false
				v.e.TxDone(n.now, nil)
			}
		}
		var keep []delivery
		for _, d := range pending {
			if d.at.After(n.now) {
				keep = append(keep, d)
				continue
			}
			// Half-duplex: a node that transmitted during the frame lost it.
			if d.to.txing || d.to.txEnd.After(d.start) {
				continue
			}
			if n.rng.Float64() < n.loss {
				continue
			}
			acc := d.to.e.Stats().Accepted
			d.to.e.Receive(n.now, d.frame, -90, 7)
			if d.to.e.Stats().Accepted > acc {
				// As Link: a frame from a peer ends the back-off.
				d.to.backoff = time.Time{}
			}
		}
		pending = keep
		for _, v := range n.nodes {
			if d, ok := v.e.Deadline(); ok && !d.After(n.now) {
				v.e.Tick(n.now)
			}
		}
		if idle {
			return
		}
	}
}

func (v *vnode) find(k EventKind) []Event {
	var out []Event
	for _, ev := range v.events {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}
