package sim

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// Opts configures a Medium, an Air or a Hub. The zero value is a perfect
// channel at SF7/BW125/CR4/5 with no region rules.
type Opts struct {
	// Params are the modulation settings every node uses.
	Params lora.Params
	// Channel is the channel model (zero: perfect).
	Channel Channel
	// Seed seeds the channel's random source; equal seeds give equal runs
	// on a Medium.
	Seed uint64
	// Start is the Medium's virtual time at creation (zero: 2026-01-01 UTC).
	Start time.Time
}

func (o *Opts) resolve() (Opts, error) {
	var r Opts
	if o != nil {
		r = *o
	}
	if err := r.Params.Validate(); err != nil {
		return r, fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	if err := r.Channel.validate(); err != nil {
		return r, err
	}
	r.Params = r.Params.Resolved()
	if r.Start.IsZero() {
		r.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return r, nil
}

// Medium is the deterministic discrete-event channel. Nodes transmit and
// timers fire on a virtual clock that only Step and Run advance; callbacks
// run synchronously inside them. A Medium is not safe for concurrent use.
type Medium struct {
	air   *air
	now   time.Time
	q     eventQueue
	seq   uint64
	nodes []*Node
}

// NewMedium returns an empty medium at opts.Start.
func NewMedium(opts *Opts) (*Medium, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return &Medium{air: newAir(o.Params, o.Channel, o.Seed), now: o.Start}, nil
}

// Now is the virtual time.
func (m *Medium) Now() time.Time { return m.now }

// Params are the modulation settings of the medium.
func (m *Medium) Params() lora.Params { return m.air.params }

// Airtime is the time on air of an n-byte frame.
func (m *Medium) Airtime(n int) time.Duration { return m.air.params.TimeOnAir(n) }

// Node is one half-duplex radio on a Medium.
type Node struct {
	m       *Medium
	st      *station
	queue   [][]byte
	tail    time.Time // when the last queued frame will have left
	receive func(radio.Frame)
	RSSI    float64
	SNR     float64
}

// AddNode adds a radio named name. receive is called for every frame it
// gets (nil: frames are counted and dropped).
func (m *Medium) AddNode(name string, receive func(radio.Frame)) *Node {
	n := &Node{m: m, st: m.air.addStation(name), receive: receive, RSSI: -90, SNR: 7}
	n.st.owner = n
	m.nodes = append(m.nodes, n)
	return n
}

func (n *Node) String() string { return "sim.Node{" + n.st.name + "}" }

// SetReceiver replaces the receive callback.
func (n *Node) SetReceiver(receive func(radio.Frame)) { n.receive = receive }

// SetParams changes the settings this node transmits with (a different
// preamble, say); receivers are assumed to follow. Set it before the node
// transmits.
func (n *Node) SetParams(p lora.Params) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOpts, err)
	}
	n.st.params = p.Resolved()
	return nil
}

// Airtime is the time on air of an n-byte frame from this node.
func (n *Node) Airtime(n2 int) time.Duration { return n.st.params.TimeOnAir(n2) }

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.st.stats }

// Transmitting reports whether the node's radio is on the air now.
func (n *Node) Transmitting() bool { return n.st.txUntil.After(n.m.now) }

// ChannelBusy reports whether another node is transmitting now (what a LoRa
// CAD would see).
func (n *Node) ChannelBusy() bool { return n.m.air.busy(n.st, n.m.now) }

// Transmit sends payload as one frame: now if the radio is idle, otherwise
// right after the frames already queued. It returns when the frame will have
// left the antenna. Nothing is sent when the payload is too long.
func (n *Node) Transmit(payload []byte) (time.Time, error) {
	if len(payload) > lora.MaxFrame {
		return time.Time{}, fmt.Errorf("%w: %d bytes", radio.ErrFrameTooLarge, len(payload))
	}
	p := append([]byte(nil), payload...)
	m := n.m
	start := m.now
	if n.tail.After(start) {
		start = n.tail
	}
	n.tail = start.Add(n.st.params.TimeOnAir(len(p)))
	if len(n.queue) == 0 && !n.Transmitting() {
		n.startTx(p)
	} else {
		n.queue = append(n.queue, p)
	}
	return n.tail, nil
}

func (n *Node) startTx(p []byte) {
	m := n.m
	tx := m.air.startTx(n.st, p, m.now)
	m.schedule(tx.end, func() {
		for _, d := range m.air.endTx(tx) {
			to := d.to.owner.(*Node)
			f := radio.Frame{Payload: d.payload, RSSI: to.RSSI, SNR: to.SNR}
			if d.delay == 0 {
				to.deliver(f)
				continue
			}
			m.schedule(m.now.Add(d.delay), func() { to.deliver(f) })
		}
		if len(n.queue) > 0 {
			next := n.queue[0]
			n.queue = n.queue[1:]
			n.startTx(next)
		}
	})
}

func (n *Node) deliver(f radio.Frame) {
	f.Time = n.m.now
	n.st.stats.Received++
	if n.receive != nil {
		n.receive(f)
	}
}

// Timer is a pending callback on a Medium.
type Timer struct{ ev *event }

// Stop cancels the timer; it reports whether it was still pending.
func (t *Timer) Stop() bool {
	if t == nil || t.ev == nil || t.ev.done {
		return false
	}
	t.ev.done = true
	return true
}

// AfterFunc calls f at Now()+d (d < 0 counts as 0).
func (m *Medium) AfterFunc(d time.Duration, f func()) *Timer {
	return &Timer{m.schedule(m.now.Add(max(d, 0)), f)}
}

func (m *Medium) schedule(at time.Time, f func()) *event {
	m.seq++
	ev := &event{at: at, seq: m.seq, fn: f}
	heap.Push(&m.q, ev)
	return ev
}

// Step runs the next pending event, advancing the clock to it. It reports
// false when nothing is pending.
func (m *Medium) Step() bool {
	for m.q.Len() > 0 {
		ev := heap.Pop(&m.q).(*event)
		if ev.done {
			continue
		}
		ev.done = true
		m.now = ev.at
		ev.fn()
		return true
	}
	return false
}

// Run runs events until none is pending or the next one is after until, and
// reports whether the medium went idle. The clock ends at the last event run.
func (m *Medium) Run(until time.Time) bool {
	for {
		for m.q.Len() > 0 && m.q[0].done {
			heap.Pop(&m.q)
		}
		if m.q.Len() == 0 {
			return true
		}
		if m.q[0].at.After(until) {
			return false
		}
		m.Step()
	}
}

type event struct {
	at   time.Time
	seq  uint64
	fn   func()
	done bool
}

// eventQueue orders events by time, then by scheduling order, so equal-time
// events run in the order they were created: that makes runs reproducible.
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return ev
}
