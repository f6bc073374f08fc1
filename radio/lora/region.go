package lora

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nexfield/nexfield/radio"
)

// Region is a regulatory profile.
type Region uint8

const (
	// RegionNone enforces nothing (lab use, simulations of other bands).
	RegionNone Region = iota
	// US915 is FCC 902–928 MHz as the LoRaWAN US902-928 plan applies it: at
	// most 400 ms per frame on 125 and 250 kHz channels, no dwell limit on
	// 500 kHz channels, no duty cycle.
	US915
	// EU868 is ETSI 863–870 MHz: no dwell limit, a duty-cycle budget per
	// sub-band over a rolling hour (LoRaMac-node RegionEU868 bands).
	EU868
)

// USDwell is the US915 per-frame dwell limit on channels narrower than 500 kHz.
const USDwell = 400 * time.Millisecond

func (r Region) String() string {
	switch r {
	case RegionNone:
		return "none"
	case US915:
		return "US915"
	case EU868:
		return "EU868"
	}
	return fmt.Sprintf("Region(%d)", uint8(r))
}

// ParseRegion accepts "none", "US915", "EU868" (any case; "" is none).
func ParseRegion(s string) (Region, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "NONE":
		return RegionNone, nil
	case "US915", "US":
		return US915, nil
	case "EU868", "EU":
		return EU868, nil
	}
	return RegionNone, fmt.Errorf("lora: unknown region %q (want none, US915 or EU868)", s)
}

// Dwell is the longest single frame the region allows at p, 0 meaning no
// limit.
func (r Region) Dwell(p Params) time.Duration {
	if r == US915 && p.Resolved().BandwidthHz < 500000 {
		return USDwell
	}
	return 0
}

// Band is the range of carrier frequencies the region spans, low edge
// inclusive, high edge exclusive: US915 902–928 MHz, EU868 863–870 MHz (of
// which CheckFrequency allows only the duty-cycle sub-bands). RegionNone
// spans nothing and reports 0, 0.
func (r Region) Band() (lowHz, highHz int) {
	switch r {
	case US915:
		return 902_000_000, 928_000_000
	case EU868:
		return 863_000_000, 870_000_000
	}
	return 0, 0
}

// CheckFrequency reports whether a carrier at frequencyHz may be used in the
// region: inside Band for US915, inside one of the duty-cycle sub-bands for
// EU868 (the band less the gaps between them), anywhere for RegionNone.
func (r Region) CheckFrequency(frequencyHz int) error {
	switch r {
	case RegionNone:
		return nil
	case US915:
		if lo, hi := r.Band(); frequencyHz < lo || frequencyHz >= hi {
			return fmt.Errorf("lora: %s is outside the US915 band (%s)", mhz(frequencyHz), bandString(lo, hi))
		}
		return nil
	case EU868:
		if euSubBand(frequencyHz) < 0 {
			lo, hi := r.Band()
			return fmt.Errorf("lora: %s is outside every EU868 duty-cycle sub-band (%s, less the gaps between sub-bands)", mhz(frequencyHz), bandString(lo, hi))
		}
		return nil
	}
	return fmt.Errorf("lora: unknown region %d", r)
}

func mhz(hz int) string { return strconv.FormatFloat(float64(hz)/1e6, 'f', -1, 64) + " MHz" }

func bandString(lo, hi int) string {
	return strconv.FormatFloat(float64(lo)/1e6, 'f', -1, 64) + "–" + mhz(hi)
}

// euSubBand is the index into EU868SubBands of the sub-band holding
// frequencyHz, -1 when none does.
func euSubBand(frequencyHz int) int {
	for i, b := range EU868SubBands() {
		if frequencyHz >= b.LowHz && frequencyHz < b.HighHz {
			return i
		}
	}
	return -1
}

// SubBand is one EU868 duty-cycle band.
type SubBand struct {
	Name           string
	LowHz, HighHz  int
	DutyPerMillion int // allowed airtime share in parts per million
}

// Budget is the airtime the band allows in window.
func (b SubBand) Budget(window time.Duration) time.Duration {
	return time.Duration(int64(window) * int64(b.DutyPerMillion) / 1_000_000)
}

// EU868SubBands returns the sub-bands as LoRaMac-node's RegionEU868 codes
// them (band edges inclusive of the low edge).
func EU868SubBands() []SubBand {
	return []SubBand{
		{"g (863-865 MHz, 0.1%)", 863_000_000, 865_000_000, 1000},
		{"g (865-868 MHz, 1%)", 865_000_000, 868_000_000, 10000},
		{"g1 (868.0-868.6 MHz, 1%)", 868_000_000, 868_600_000, 10000},
		{"g2 (868.7-869.2 MHz, 0.1%)", 868_700_000, 869_200_000, 1000},
		{"g3 (869.4-869.65 MHz, 10%)", 869_400_000, 869_650_000, 100000},
		{"g4 (869.7-870 MHz, 1%)", 869_700_000, 870_000_000, 10000},
	}
}

// RegulatorOpts configures a Regulator. The zero value is usable.
type RegulatorOpts struct {
	// FrequencyHz is the channel centre, refused when the region does not
	// allow it (Region.CheckFrequency). EU868 needs it to pick the sub-band
	// (0 means 868.1 MHz, the first LoRaWAN default channel); elsewhere 0
	// leaves the frequency to a later Tune.
	FrequencyHz int
	// Window is the duty-cycle accounting window; 0 means one hour.
	Window time.Duration
}

type txRecord struct {
	start   time.Time
	airtime time.Duration
}

// Regulator enforces one region's rules for one transmitter: the dwell limit
// per frame and, for EU868, the duty-cycle budget of the sub-band of the
// current frequency over a rolling window. Time comes from the caller (now),
// so real, fake and simulated clocks all work. It is safe for concurrent use.
type Regulator struct {
	region Region
	window time.Duration

	mu    sync.Mutex
	band  int                // index into bands, -1 when none applies
	bands []SubBand          // EU868 only
	log   map[int][]txRecord // per sub-band, oldest first
}

// NewRegulator returns a Regulator for region.
func NewRegulator(region Region, opts *RegulatorOpts) (*Regulator, error) {
	var o RegulatorOpts
	if opts != nil {
		o = *opts
	}
	if region > EU868 {
		return nil, fmt.Errorf("lora: unknown region %d", region)
	}
	if o.Window < 0 {
		return nil, fmt.Errorf("lora: negative duty-cycle window %v", o.Window)
	}
	if o.Window == 0 {
		o.Window = time.Hour
	}
	g := &Regulator{region: region, window: o.Window, band: -1, log: map[int][]txRecord{}}
	f := o.FrequencyHz
	if region == EU868 {
		g.bands = EU868SubBands()
		if f == 0 {
			f = 868_100_000
		}
	}
	if f != 0 {
		if err := g.Tune(f); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Tune selects the carrier frequencyHz, refusing one outside the region
// (Region.CheckFrequency). Under EU868 it picks the sub-band whose budget
// applies; the budget already spent in each sub-band is kept.
func (g *Regulator) Tune(frequencyHz int) error {
	if err := g.region.CheckFrequency(frequencyHz); err != nil {
		return err
	}
	if g.region != EU868 {
		return nil
	}
	g.mu.Lock()
	g.band = euSubBand(frequencyHz)
	g.mu.Unlock()
	return nil
}

// Region returns the region enforced.
func (g *Regulator) Region() Region { return g.region }

func (g *Regulator) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.band >= 0 {
		return fmt.Sprintf("lora.Regulator{%v %s}", g.region, g.bands[g.band].Name)
	}
	return fmt.Sprintf("lora.Regulator{%v}", g.region)
}

// Check reports whether a frame of n payload bytes at p may start at now. It
// returns an error wrapping radio.ErrDwellTime or radio.ErrDutyCycle and
// records nothing.
func (g *Regulator) Check(now time.Time, p Params, n int) error {
	toa := p.TimeOnAir(n)
	if d := g.region.Dwell(p); d > 0 && toa > d {
		return fmt.Errorf("%w: %d bytes at %v last %v, %v allowed in %v",
			radio.ErrDwellTime, n, p, toa, d, g.region)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkBudgetLocked(now, toa)
}

func (g *Regulator) checkBudgetLocked(now time.Time, toa time.Duration) error {
	if g.band < 0 {
		return nil
	}
	b := g.bands[g.band]
	used := g.usedLocked(now)
	if budget := b.Budget(g.window); used+toa > budget {
		return fmt.Errorf("%w: sub-band %s has %v of %v left per %v, frame needs %v (free again at %v)",
			radio.ErrDutyCycle, b.Name, max(budget-used, 0), budget, g.window, toa,
			g.nextAllowedLocked(now, toa).Format(time.RFC3339Nano))
	}
	return nil
}

// Record accounts a transmission of airtime that started at now.
func (g *Regulator) Record(now time.Time, airtime time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordLocked(now, airtime)
}

func (g *Regulator) recordLocked(now time.Time, airtime time.Duration) {
	if g.band < 0 {
		return
	}
	g.log[g.band] = append(g.log[g.band], txRecord{now, airtime})
	g.pruneLocked(now)
}

// Admit checks a frame of n bytes at p and, if allowed, records it as
// starting at now, atomically. It returns the frame's time on air.
func (g *Regulator) Admit(now time.Time, p Params, n int) (time.Duration, error) {
	toa := p.TimeOnAir(n)
	if d := g.region.Dwell(p); d > 0 && toa > d {
		return toa, fmt.Errorf("%w: %d bytes at %v last %v, %v allowed in %v",
			radio.ErrDwellTime, n, p, toa, d, g.region)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkBudgetLocked(now, toa); err != nil {
		return toa, err
	}
	g.recordLocked(now, toa)
	return toa, nil
}

// Used is the airtime counted against the current sub-band in the window
// ending at now.
func (g *Regulator) Used(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.usedLocked(now)
}

// NextAllowed is the earliest time at or after now when a frame of airtime
// fits the budget (now itself when it fits already, or when no budget
// applies). A frame longer than the whole budget never fits: the result is
// then the zero time.
func (g *Regulator) NextAllowed(now time.Time, airtime time.Duration) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nextAllowedLocked(now, airtime)
}

func (g *Regulator) nextAllowedLocked(now time.Time, airtime time.Duration) time.Time {
	if g.band < 0 {
		return now
	}
	budget := g.bands[g.band].Budget(g.window)
	if airtime > budget {
		return time.Time{}
	}
	used := g.usedLocked(now)
	if used+airtime <= budget {
		return now
	}
	// Records leave the window oldest first; find the one whose departure
	// frees enough.
	for _, r := range g.log[g.band] {
		if !r.start.Add(g.window).After(now) {
			continue
		}
		used -= r.airtime
		if used+airtime <= budget {
			return r.start.Add(g.window)
		}
	}
	return now.Add(g.window)
}

func (g *Regulator) usedLocked(now time.Time) time.Duration {
	var used time.Duration
	for _, r := range g.log[g.band] {
		if r.start.Add(g.window).After(now) {
			used += r.airtime
		}
	}
	return used
}

func (g *Regulator) pruneLocked(now time.Time) {
	recs := g.log[g.band]
	i := 0
	for i < len(recs) && !recs[i].start.Add(g.window).After(now) {
		i++
	}
	if i > 0 {
		g.log[g.band] = append(recs[:0:0], recs[i:]...)
	}
}
