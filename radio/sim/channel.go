package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrInvalidOpts is wrapped by constructors for unusable options.
var ErrInvalidOpts = errors.New("sim: invalid options")

// GilbertElliott is the two-state burst-loss model. The state of each
// directed link moves once per frame: Good→Bad with probability P, Bad→Good
// with probability R; a frame then gets through with probability K in Good
// and H in Bad. Mean burst (Bad run) length is 1/R frames, the long-run
// share of Bad is P/(P+R), and the mean loss is
// (R·(1−K) + P·(1−H)) / (P+R).
//
// Step, when set, clocks the state by time instead: it moves once per Step
// of elapsed time, whatever is sent. A fade then lasts a time (1/R steps)
// rather than a number of frames, as a real one does: a sender that waits
// before it asks again outlasts it, one that asks faster does not end it
// sooner.
type GilbertElliott struct {
	P, R, H, K float64
	Step       time.Duration
}

// MeanLoss is the long-run frame loss rate.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return 1 - g.K
	}
	return (g.R*(1-g.K) + g.P*(1-g.H)) / (g.P + g.R)
}

func (g GilbertElliott) String() string {
	if g.Step > 0 {
		return fmt.Sprintf("GE(p=%.3g r=%.3g h=%.3g k=%.3g step=%v)", g.P, g.R, g.H, g.K, g.Step)
	}
	return fmt.Sprintf("GE(p=%.3g r=%.3g h=%.3g k=%.3g)", g.P, g.R, g.H, g.K)
}

// Outage takes the channel away entirely, both ways, for For once every
// Every: a vehicle parked in front of the antenna, a mast down. The first
// starts at a random point of the first Every after the first frame; a
// frame that overlaps an outage is lost.
type Outage struct {
	For, Every time.Duration
}

func (o Outage) String() string { return fmt.Sprintf("outage=%v/%v", o.For, o.Every) }

// Channel is the per-frame channel model, applied independently at every
// receiver after collisions and half-duplex are accounted. The zero value
// is a perfect channel.
type Channel struct {
	// Loss is the i.i.d. probability that a frame is lost.
	Loss float64
	// Burst, when set, adds Gilbert–Elliott loss per directed link (applied
	// after Loss: a frame must survive both).
	Burst *GilbertElliott
	// Corrupt is the probability that a frame arrives with bit errors.
	Corrupt float64
	// CRCEscape is the fraction of corrupted frames the PHY CRC fails to
	// catch; those are delivered with flipped bits, the rest are dropped.
	CRCEscape float64
	// Duplicate is the probability that a delivered frame arrives twice
	// (the copy one airtime later).
	Duplicate float64
	// Delay is the largest extra delivery delay, drawn uniformly from
	// [0, Delay] per frame; a non-zero Delay reorders frames.
	Delay time.Duration
	// Outage, when set, adds periodic outages (applied first).
	Outage *Outage
}

func (c Channel) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"loss", c.Loss}, {"corrupt", c.Corrupt}, {"crc escape", c.CRCEscape}, {"duplicate", c.Duplicate}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fmt.Errorf("%w: %s probability %v not in [0,1]", ErrInvalidOpts, f.name, f.v)
		}
	}
	if g := c.Burst; g != nil {
		for _, v := range []float64{g.P, g.R, g.H, g.K} {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("%w: %v has a probability outside [0,1]", ErrInvalidOpts, *g)
			}
		}
	}
	if c.Burst != nil && c.Burst.Step < 0 {
		return fmt.Errorf("%w: %v has a negative step", ErrInvalidOpts, *c.Burst)
	}
	if c.Delay < 0 {
		return fmt.Errorf("%w: negative delay %v", ErrInvalidOpts, c.Delay)
	}
	if o := c.Outage; o != nil && (o.For <= 0 || o.Every <= o.For) {
		return fmt.Errorf("%w: %v: want a positive length shorter than the period", ErrInvalidOpts, *o)
	}
	return nil
}

// String summarises the model, e.g. "loss=10%" or "GE(...)".
func (c Channel) String() string {
	s := fmt.Sprintf("loss=%g%%", c.Loss*100)
	if c.Burst != nil {
		s += " " + c.Burst.String()
	}
	if c.Corrupt > 0 {
		s += fmt.Sprintf(" corrupt=%g%% escape=%g%%", c.Corrupt*100, c.CRCEscape*100)
	}
	if c.Duplicate > 0 {
		s += fmt.Sprintf(" dup=%g%%", c.Duplicate*100)
	}
	if c.Delay > 0 {
		s += fmt.Sprintf(" delay<=%v", c.Delay)
	}
	if c.Outage != nil {
		s += " " + c.Outage.String()
	}
	return s
}

// fate is what the channel does to one frame at one receiver.
type fate struct {
	lost, crcDrop, corrupted, dup bool
	delay                         time.Duration
}

type link struct{ from, to int }

// channelState holds the random source and the burst state of every link.
type channelState struct {
	c     Channel
	rng   *rand.Rand
	bad   map[link]bool
	moved map[link]time.Time // a time-clocked burst state: when it last moved
	// outages are laid from the first frame on
	outStart time.Time
	started  bool
}

func newChannelState(c Channel, seed uint64) *channelState {
	return &channelState{c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), bad: map[link]bool{}, moved: map[link]time.Time{}}
}

// inOutage reports whether a frame on the air from start to end overlaps
// an outage.
func (s *channelState) inOutage(start, end time.Time) bool {
	o := s.c.Outage
	if o == nil {
		return false
	}
	if !s.started {
		s.started = true
		s.outStart = start.Add(time.Duration(s.rng.Int64N(int64(o.Every))))
	}
	// The outage in force at end or, if none, the last one before it.
	k := end.Sub(s.outStart) / o.Every
	if end.Before(s.outStart) {
		return false
	}
	from := s.outStart.Add(k * o.Every)
	return start.Before(from.Add(o.For))
}

// moveBurst moves l's burst state once per frame, or once per Step of
// time elapsed since it last moved.
func (s *channelState) moveBurst(g *GilbertElliott, l link, at time.Time) bool {
	bad := s.bad[l]
	n := 1
	if g.Step > 0 {
		last, ok := s.moved[l]
		if !ok {
			last = at.Add(-g.Step)
		}
		n = int(at.Sub(last) / g.Step)
		s.moved[l] = last.Add(time.Duration(n) * g.Step)
	}
	for range n {
		if bad {
			bad = s.rng.Float64() >= g.R
		} else {
			bad = s.rng.Float64() < g.P
		}
	}
	s.bad[l] = bad
	return bad
}

// draw decides the fate of one frame on the air from start to end. The
// number and order of random draws depend only on the model, the frames'
// times and earlier draws, which keeps runs reproducible.
func (s *channelState) draw(l link, start, end time.Time) fate {
	var f fate
	c := s.c
	if s.inOutage(start, end) {
		f.lost = true
		return f
	}
	if c.Loss > 0 && s.rng.Float64() < c.Loss {
		f.lost = true
	}
	if g := c.Burst; g != nil {
		bad := s.moveBurst(g, l, start)
		pass := g.K
		if bad {
			pass = g.H
		}
		if s.rng.Float64() >= pass {
			f.lost = true
		}
	}
	if f.lost {
		return f
	}
	if c.Corrupt > 0 && s.rng.Float64() < c.Corrupt {
		if c.CRCEscape > 0 && s.rng.Float64() < c.CRCEscape {
			f.corrupted = true
		} else {
			f.crcDrop = true
			return f
		}
	}
	if c.Duplicate > 0 && s.rng.Float64() < c.Duplicate {
		f.dup = true
	}
	if c.Delay > 0 {
		f.delay = time.Duration(s.rng.Int64N(int64(c.Delay) + 1))
	}
	return f
}

// corrupt returns a copy of p with one to three bits flipped.
func (s *channelState) corrupt(p []byte) []byte {
	q := append([]byte(nil), p...)
	if len(q) == 0 {
		return q
	}
	for n := 1 + s.rng.IntN(3); n > 0; n-- {
		i := s.rng.IntN(len(q) * 8)
		q[i/8] ^= 1 << (i % 8)
	}
	return q
}
