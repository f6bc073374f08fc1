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
type GilbertElliott struct {
	P, R, H, K float64
}

// MeanLoss is the long-run frame loss rate.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return 1 - g.K
	}
	return (g.R*(1-g.K) + g.P*(1-g.H)) / (g.P + g.R)
}

func (g GilbertElliott) String() string {
	return fmt.Sprintf("GE(p=%.3g r=%.3g h=%.3g k=%.3g)", g.P, g.R, g.H, g.K)
}

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
	if c.Delay < 0 {
		return fmt.Errorf("%w: negative delay %v", ErrInvalidOpts, c.Delay)
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
	c   Channel
	rng *rand.Rand
	bad map[link]bool
}

func newChannelState(c Channel, seed uint64) *channelState {
	return &channelState{c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), bad: map[link]bool{}}
}

// draw decides one frame's fate. The number and order of random draws
// depend only on the model and earlier draws, which keeps runs reproducible.
func (s *channelState) draw(l link) fate {
	var f fate
	c := s.c
	if c.Loss > 0 && s.rng.Float64() < c.Loss {
		f.lost = true
	}
	if g := c.Burst; g != nil {
		bad := s.bad[l]
		if bad {
			bad = s.rng.Float64() >= g.R
		} else {
			bad = s.rng.Float64() < g.P
		}
		s.bad[l] = bad
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
