package sim

import (
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// Stats counts what happened to one node's frames and receptions.
type Stats struct {
	// TxFrames and TxAirtime count this node's transmissions.
	TxFrames  int
	TxAirtime time.Duration
	// Received counts frames delivered to this node (duplicates included).
	Received int
	// Lost counts frames the channel model dropped on the way here.
	Lost int
	// Collided counts frames destroyed here by an overlapping transmission.
	Collided int
	// Deaf counts frames this node missed because it was transmitting.
	Deaf int
	// CRCDropped counts corrupted frames the PHY CRC caught.
	CRCDropped int
	// Corrupted counts corrupted frames delivered (CRC escapes).
	Corrupted int
	// Duplicated counts extra copies delivered.
	Duplicated int
	// Overflow counts frames dropped because the receive queue was full.
	Overflow int
}

type reception struct {
	tx       *transmission
	to       *station
	collided bool
	deaf     bool // receiver started transmitting during the frame
}

type transmission struct {
	from       *station
	payload    []byte
	start, end time.Time
	rx         []*reception
}

type station struct {
	id      int
	name    string
	txUntil time.Time
	rx      []*reception
	stats   Stats
	owner   any // the Node or Radio this station is
	params  lora.Params
}

// delivery is a frame that reached a station, after delay.
type delivery struct {
	to      *station
	payload []byte
	delay   time.Duration
}

// air is the channel logic shared by Medium, Air and Hub. It is not safe for
// concurrent use; its owners serialise calls and supply the time.
type air struct {
	params   lora.Params
	ch       *channelState
	stations []*station
}

func newAir(p lora.Params, c Channel, seed uint64) *air {
	return &air{params: p.Resolved(), ch: newChannelState(c, seed)}
}

func (a *air) addStation(name string) *station {
	s := &station{id: len(a.stations), name: name, params: a.params}
	a.stations = append(a.stations, s)
	return s
}

// removeStation takes s off the air; frames in flight to it are dropped.
func (a *air) removeStation(s *station) {
	for i, t := range a.stations {
		if t == s {
			a.stations = append(a.stations[:i:i], a.stations[i+1:]...)
			return
		}
	}
}

// busy reports whether a station other than s is transmitting at now.
func (a *air) busy(s *station, now time.Time) bool {
	for _, t := range a.stations {
		if t != s && t.txUntil.After(now) {
			return true
		}
	}
	return false
}

// startTx puts payload on the air from s at now. The caller guarantees s is
// not already transmitting.
func (a *air) startTx(s *station, payload []byte, now time.Time) *transmission {
	toa := s.params.TimeOnAir(len(payload))
	tx := &transmission{from: s, payload: payload, start: now, end: now.Add(toa)}
	// Half-duplex: whatever s was receiving is lost.
	for _, r := range s.rx {
		if r.tx.end.After(now) {
			r.deaf = true
		}
	}
	s.txUntil = tx.end
	s.stats.TxFrames++
	s.stats.TxAirtime += toa
	for _, t := range a.stations {
		if t == s {
			continue
		}
		if t.txUntil.After(now) {
			// t is transmitting: it cannot hear this frame.
			t.stats.Deaf++
			continue
		}
		r := &reception{tx: tx, to: t}
		for _, o := range t.rx {
			if o.tx.end.After(now) {
				o.collided = true
				r.collided = true
			}
		}
		t.rx = append(t.rx, r)
		tx.rx = append(tx.rx, r)
	}
	return tx
}

// endTx finishes tx and returns the frames delivered, in station order.
func (a *air) endTx(tx *transmission) []delivery {
	var out []delivery
	for _, r := range tx.rx {
		t := r.to
		for i, o := range t.rx {
			if o == r {
				t.rx = append(t.rx[:i:i], t.rx[i+1:]...)
				break
			}
		}
		if !a.onAir(t) {
			continue
		}
		switch {
		case r.collided:
			t.stats.Collided++
			continue
		case r.deaf:
			t.stats.Deaf++
			continue
		}
		f := a.ch.draw(link{tx.from.id, t.id}, tx.start, tx.end)
		switch {
		case f.lost:
			t.stats.Lost++
			continue
		case f.crcDrop:
			t.stats.CRCDropped++
			continue
		}
		p := tx.payload
		if f.corrupted {
			p = a.ch.corrupt(p)
			t.stats.Corrupted++
		}
		out = append(out, delivery{to: t, payload: p, delay: f.delay})
		if f.dup {
			t.stats.Duplicated++
			out = append(out, delivery{to: t, payload: p, delay: f.delay + tx.end.Sub(tx.start)})
		}
	}
	return out
}

func (a *air) onAir(s *station) bool {
	for _, t := range a.stations {
		if t == s {
			return true
		}
	}
	return false
}
