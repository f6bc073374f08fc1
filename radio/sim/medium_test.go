package sim

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"math"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

func newMedium(t *testing.T, o *Opts) *Medium {
	t.Helper()
	m, err := NewMedium(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type sink struct{ frames []radio.Frame }

func (s *sink) recv(f radio.Frame) { s.frames = append(s.frames, f) }

func TestMediumDeliversAfterAirtime(t *testing.T) {
	m := newMedium(t, nil)
	var got sink
	a := m.AddNode("a", nil)
	m.AddNode("b", got.recv)
	start := m.Now()
	end, err := a.Transmit([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(lora.Params{}.TimeOnAir(5)); !end.Equal(want) {
		t.Errorf("end %v, want %v", end, want)
	}
	if !m.Run(start.Add(time.Hour)) {
		t.Fatal("medium not idle")
	}
	if len(got.frames) != 1 || string(got.frames[0].Payload) != "hello" || !got.frames[0].Time.Equal(end) {
		t.Fatalf("got %+v", got.frames)
	}
	if st := a.Stats(); st.TxFrames != 1 || st.TxAirtime != end.Sub(start) {
		t.Errorf("tx stats %+v", st)
	}
	if _, err := a.Transmit(make([]byte, 256)); err == nil {
		t.Error("256-byte frame accepted")
	}
}

func TestMediumQueuesBackToBack(t *testing.T) {
	m := newMedium(t, nil)
	var got sink
	a := m.AddNode("a", nil)
	m.AddNode("b", got.recv)
	start := m.Now()
	toa := m.Airtime(100)
	for i := range 3 {
		end, _ := a.Transmit(make([]byte, 100))
		if want := start.Add(time.Duration(i+1) * toa); !end.Equal(want) {
			t.Errorf("frame %d ends %v, want %v", i, end, want)
		}
	}
	m.Run(start.Add(time.Hour))
	if len(got.frames) != 3 {
		t.Fatalf("got %d frames, want 3", len(got.frames))
	}
	for i, f := range got.frames {
		if want := start.Add(time.Duration(i+1) * toa); !f.Time.Equal(want) {
			t.Errorf("frame %d at %v, want %v", i, f.Time, want)
		}
	}
}

func TestMediumCollisionsAndHalfDuplex(t *testing.T) {
	for _, tc := range []struct {
		name string
		// offset is when b starts, relative to a.
		offset       time.Duration
		cGets, aGets int
		bGets        int
		cCollided    int
	}{
		// Overlap: c hears garbage; a and b are deaf to each other
		// (b started while a was on the air, so b never heard a; a was
		// transmitting when b's frame started).
		{"overlap", 10 * time.Millisecond, 0, 0, 0, 2},
		{"same instant", 0, 0, 0, 0, 2},
		// Back to back: everyone hears everything.
		{"after", 200 * time.Millisecond, 2, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMedium(t, nil)
			var ra, rb, rc sink
			a := m.AddNode("a", ra.recv)
			b := m.AddNode("b", rb.recv)
			c := m.AddNode("c", rc.recv)
			a.Transmit(make([]byte, 100)) // 174 ms
			m.AfterFunc(tc.offset, func() { b.Transmit(make([]byte, 100)) })
			m.Run(m.Now().Add(time.Hour))
			if len(rc.frames) != tc.cGets || len(ra.frames) != tc.aGets || len(rb.frames) != tc.bGets {
				t.Errorf("a/b/c got %d/%d/%d, want %d/%d/%d", len(ra.frames), len(rb.frames), len(rc.frames), tc.aGets, tc.bGets, tc.cGets)
			}
			if got := c.Stats().Collided; got != tc.cCollided {
				t.Errorf("c collided %d, want %d", got, tc.cCollided)
			}
		})
	}
}

func TestMediumCarrierSense(t *testing.T) {
	m := newMedium(t, nil)
	a := m.AddNode("a", nil)
	b := m.AddNode("b", nil)
	a.Transmit(make([]byte, 50))
	if !b.ChannelBusy() || a.ChannelBusy() || !a.Transmitting() {
		t.Errorf("during a's frame: b busy %v, a busy %v, a transmitting %v", b.ChannelBusy(), a.ChannelBusy(), a.Transmitting())
	}
	m.Run(m.Now().Add(time.Hour))
	if b.ChannelBusy() || a.Transmitting() {
		t.Error("channel still busy after the frame")
	}
}

// send n frames a→b one after another and return b's stats and frames.
func runFrames(t *testing.T, o *Opts, n int) (Stats, []radio.Frame) {
	t.Helper()
	m := newMedium(t, o)
	var got sink
	a := m.AddNode("a", nil)
	b := m.AddNode("b", got.recv)
	for i := range n {
		p := make([]byte, 10)
		binary.BigEndian.PutUint32(p, uint32(i))
		a.Transmit(p)
	}
	m.Run(m.Now().Add(24 * time.Hour))
	return b.Stats(), got.frames
}

// within checks k successes in n trials against probability p, at 4.5 σ.
func within(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if d := math.Abs(float64(k) - float64(n)*p); d > 4.5*sd+1 {
		t.Errorf("%s: %d of %d, want %.0f ± %.0f", what, k, n, float64(n)*p, 4.5*sd)
	}
}

func TestMediumIIDLoss(t *testing.T) {
	const n = 20000
	for _, p := range []float64{0.1, 0.3} {
		st, frames := runFrames(t, &Opts{Channel: Channel{Loss: p}, Seed: 7}, n)
		within(t, "lost", st.Lost, n, p)
		if st.Lost+len(frames) != n {
			t.Errorf("lost %d + received %d != %d", st.Lost, len(frames), n)
		}
	}
}

func TestMediumGilbertElliott(t *testing.T) {
	const n = 40000
	ge := GilbertElliott{P: 0.05, R: 0.25, H: 0, K: 1}
	_, frames := runFrames(t, &Opts{Channel: Channel{Burst: &ge}, Seed: 3}, n)
	got := make([]bool, n)
	for _, f := range frames {
		got[binary.BigEndian.Uint32(f.Payload)] = true
	}
	// With H=0, K=1 a loss run is a Bad run: geometric with mean 1/R.
	var bursts, lost int
	for i := 0; i < n; i++ {
		if got[i] {
			continue
		}
		j := i
		for j < n && !got[j] {
			j++
		}
		bursts++
		lost += j - i
		i = j
	}
	within(t, "lost", lost, n, ge.MeanLoss())
	mean := float64(lost) / float64(bursts)
	// Burst lengths are geometric (sd ≈ sqrt(1-R)/R ≈ 3.5); with ~1300
	// bursts the mean is within ±0.35 at 3.5 σ.
	if math.Abs(mean-1/ge.R) > 0.35 {
		t.Errorf("mean burst %.2f frames, want %.2f", mean, 1/ge.R)
	}
	if math.Abs(ge.MeanLoss()-0.05/0.30) > 1e-12 {
		t.Errorf("MeanLoss %v", ge.MeanLoss())
	}
}

func TestMediumCorruption(t *testing.T) {
	const n = 20000
	st, frames := runFrames(t, &Opts{Channel: Channel{Corrupt: 0.5, CRCEscape: 0.2}, Seed: 11}, n)
	within(t, "crc dropped", st.CRCDropped, n, 0.4)
	within(t, "corrupted delivered", st.Corrupted, n, 0.1)
	bad := 0
	for _, f := range frames {
		if len(f.Payload) != 10 || !bytes.Equal(f.Payload[4:], make([]byte, 6)) || binary.BigEndian.Uint32(f.Payload) >= n {
			bad++
		}
	}
	// A flipped bit can land in the index and still give a valid-looking
	// index, so count at most as many as were corrupted.
	if bad == 0 || bad > st.Corrupted {
		t.Errorf("%d visibly corrupted frames, %d corrupted", bad, st.Corrupted)
	}
}

func TestMediumDuplicateAndReorder(t *testing.T) {
	const n = 5000
	st, frames := runFrames(t, &Opts{Channel: Channel{Duplicate: 0.1, Delay: time.Second}, Seed: 5}, n)
	within(t, "duplicated", st.Duplicated, n, 0.1)
	if len(frames) != n+st.Duplicated {
		t.Errorf("got %d frames, want %d", len(frames), n+st.Duplicated)
	}
	reordered := 0
	for i := 1; i < len(frames); i++ {
		if binary.BigEndian.Uint32(frames[i].Payload) < binary.BigEndian.Uint32(frames[i-1].Payload) {
			reordered++
		}
	}
	if reordered == 0 {
		t.Error("a 1 s delay spread over 41 ms frames reordered nothing")
	}
}

func TestMediumDeterministic(t *testing.T) {
	ge := GilbertElliott{P: 0.1, R: 0.3, H: 0.2, K: 0.95}
	run := func(seed uint64) uint64 {
		o := &Opts{Channel: Channel{Loss: 0.1, Burst: &ge, Corrupt: 0.05, CRCEscape: 0.5, Duplicate: 0.05, Delay: 50 * time.Millisecond}, Seed: seed}
		_, frames := runFrames(t, o, 3000)
		h := fnv.New64a()
		for _, f := range frames {
			h.Write(f.Payload)
			binary.Write(h, binary.BigEndian, f.Time.UnixNano())
		}
		return h.Sum64()
	}
	if a, b := run(42), run(42); a != b {
		t.Errorf("same seed differs: %x vs %x", a, b)
	}
	if a, b := run(42), run(43); a == b {
		t.Errorf("different seeds gave the same run %x", a)
	}
}

func TestMediumTimers(t *testing.T) {
	m := newMedium(t, nil)
	start := m.Now()
	var fired []int
	m.AfterFunc(2*time.Second, func() { fired = append(fired, 2) })
	t1 := m.AfterFunc(time.Second, func() { fired = append(fired, 1) })
	m.AfterFunc(2*time.Second, func() { fired = append(fired, 3) })
	if !t1.Stop() || t1.Stop() {
		t.Error("Stop should report true once")
	}
	if m.Run(start.Add(time.Second)) {
		t.Error("idle with timers pending")
	}
	m.Run(start.Add(time.Hour))
	if len(fired) != 2 || fired[0] != 2 || fired[1] != 3 {
		t.Errorf("fired %v, want [2 3]", fired)
	}
	if !m.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("clock at %v", m.Now().Sub(start))
	}
}

func TestOptsValidation(t *testing.T) {
	for _, o := range []*Opts{
		{Channel: Channel{Loss: 1.5}},
		{Channel: Channel{Burst: &GilbertElliott{P: -1}}},
		{Channel: Channel{Delay: -1}},
		{Params: lora.Params{SpreadingFactor: 13}},
	} {
		if _, err := NewMedium(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// BenchmarkMediumFrames measures the simulator's cost per frame (two nodes,
// 10 % loss, 255-byte frames) and how much airtime it simulates per
// second of wall time.
func BenchmarkMediumFrames(b *testing.B) {
	b.ReportAllocs()
	m, _ := NewMedium(&Opts{Channel: Channel{Loss: 0.1}, Seed: 1})
	a := m.AddNode("a", nil)
	m.AddNode("b", func(radio.Frame) {})
	p := make([]byte, 255)
	start := time.Now()
	for b.Loop() {
		a.Transmit(p)
		m.Step()
	}
	m.Run(m.Now().Add(time.Hour))
	if wall := time.Since(start).Seconds(); wall > 0 {
		b.ReportMetric(a.Stats().TxAirtime.Seconds()/wall, "airtime_s/wall_s")
	}
}

// lossRuns draws n frames of length d, gap apart, on one link and returns
// the share lost and the mean length of a run of lost frames.
func lossRuns(s *channelState, n int, gap, d time.Duration) (share, mean float64) {
	t0 := time.Unix(1e9, 0)
	lost, runs, prev := 0, 0, false
	for i := range n {
		at := t0.Add(time.Duration(i) * gap)
		f := s.draw(link{0, 1}, at, at.Add(d))
		if f.lost {
			lost++
			if !prev {
				runs++
			}
		}
		prev = f.lost
	}
	return float64(lost) / float64(n), float64(lost) / float64(max(runs, 1))
}

func TestGilbertElliottStep(t *testing.T) {
	ge := GilbertElliott{P: 0.05, R: 0.05, H: 0, K: 1, Step: time.Second}
	// Frames one step apart see the fades as the per-frame model does.
	share, mean := lossRuns(newChannelState(Channel{Burst: &ge}, 5), 40000, time.Second, 0)
	if math.Abs(share-ge.MeanLoss()) > 0.03 || math.Abs(mean-1/ge.R) > 3 {
		t.Errorf("one step apart: lost %.3f in runs of %.1f, want %.3f in runs of %.0f", share, mean, ge.MeanLoss(), 1/ge.R)
	}
	// Frames ten steps apart lose as often, but a fade (20 s) spans two
	// or three of them, not twenty.
	share, mean = lossRuns(newChannelState(Channel{Burst: &ge}, 5), 40000, 10*time.Second, 0)
	if math.Abs(share-ge.MeanLoss()) > 0.03 || mean > 4 {
		t.Errorf("ten steps apart: lost %.3f in runs of %.1f, want %.3f in runs of about 2.5", share, mean, ge.MeanLoss())
	}
}

func TestOutage(t *testing.T) {
	o := Outage{For: time.Minute, Every: 100 * time.Second}
	// 100 ms frames every second: an outage takes 60 or 61 of them.
	share, mean := lossRuns(newChannelState(Channel{Outage: &o}, 9), 10000, time.Second, 100*time.Millisecond)
	if math.Abs(share-0.6) > 0.01 || mean < 60 || mean > 61 {
		t.Errorf("lost %.3f in runs of %.1f, want 0.6 in runs of 60-61", share, mean)
	}
	if _, err := NewMedium(&Opts{Channel: Channel{Outage: &Outage{For: time.Minute, Every: time.Minute}}}); err == nil {
		t.Error("an outage as long as its period was accepted")
	}
}
