package lora

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio"
)

func TestUS915Dwell(t *testing.T) {
	g, err := NewRegulator(US915, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		name string
		p    Params
		n    int
		want error
	}{
		{"SF7/125 255B fits", Params{}, 255, nil},
		{"SF7/125 preamble 12 254B too long", Params{PreambleSymbols: 12}, 254, radio.ErrDwellTime},
		{"SF9/125 66B fits", Params{SpreadingFactor: 9}, 66, nil},
		{"SF9/125 67B too long", Params{SpreadingFactor: 9}, 67, radio.ErrDwellTime},
		{"SF12/125 empty too long", Params{SpreadingFactor: 12}, 0, radio.ErrDwellTime},
		{"SF12/250 empty fits", Params{SpreadingFactor: 12, BandwidthHz: 250000}, 0, nil},
		{"SF12/500 255B: no dwell on 500 kHz", Params{SpreadingFactor: 12, BandwidthHz: 500000}, 255, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Check(now, tc.p, tc.n)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// No duty cycle in US915: thousands of frames in a second are fine.
	for i := range 10000 {
		if _, err := g.Admit(now, Params{}, 255); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

func TestEU868DutyCycle(t *testing.T) {
	g, err := NewRegulator(EU868, &RegulatorOpts{FrequencyHz: 868_100_000})
	if err != nil {
		t.Fatal(err)
	}
	p := Params{}
	toa := p.TimeOnAir(255) // 399.616 ms
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	// 1 % of an hour is 36 s: floor(36 s / 399.616 ms) = 90 frames.
	sent := 0
	for {
		if _, err := g.Admit(now, p, 255); err != nil {
			if !errors.Is(err, radio.ErrDutyCycle) {
				t.Fatalf("got %v, want ErrDutyCycle", err)
			}
			break
		}
		sent++
		now = now.Add(toa)
	}
	if sent != 90 {
		t.Errorf("sent %d frames in the budget, want 90", sent)
	}
	if got, want := g.Used(now), 90*toa; got != want {
		t.Errorf("used %v, want %v", got, want)
	}
	// The first frame leaves the window one hour after it started.
	next := g.NextAllowed(now, toa)
	if want := start.Add(time.Hour); !next.Equal(want) {
		t.Errorf("next allowed %v, want %v", next, want)
	}
	if err := g.Check(next.Add(-time.Nanosecond), p, 255); !errors.Is(err, radio.ErrDutyCycle) {
		t.Errorf("just before the first frame expires: got %v, want ErrDutyCycle", err)
	}
	if err := g.Check(next, p, 255); err != nil {
		t.Errorf("after the first frame expires: %v", err)
	}
	// Another sub-band has its own budget: 869.525 MHz allows 10 %.
	if err := g.Tune(869_525_000); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(now, p, 255); err != nil {
		t.Errorf("fresh sub-band: %v", err)
	}
	if err := g.Tune(868_100_000); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(now, p, 255); !errors.Is(err, radio.ErrDutyCycle) {
		t.Errorf("back on the spent sub-band: got %v, want ErrDutyCycle", err)
	}
	if err := g.Tune(915_000_000); err == nil {
		t.Error("915 MHz accepted as an EU868 frequency")
	}
}

func TestEU868ShortWindowAndHugeFrame(t *testing.T) {
	g, err := NewRegulator(EU868, &RegulatorOpts{FrequencyHz: 863_500_000, Window: 100 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 0.1 % of 100 s = 100 ms: an SF9 255-byte frame (1.25 s) can never fit.
	p := Params{SpreadingFactor: 9}
	now := time.Unix(1000, 0)
	if err := g.Check(now, p, 255); !errors.Is(err, radio.ErrDutyCycle) {
		t.Errorf("got %v, want ErrDutyCycle", err)
	}
	if got := g.NextAllowed(now, p.TimeOnAir(255)); !got.IsZero() {
		t.Errorf("next allowed %v, want zero time (never)", got)
	}
	if err := g.Check(now, Params{}, 10); err != nil {
		t.Errorf("41 ms frame within 100 ms budget: %v", err)
	}
}

func TestParseRegion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Region
		ok   bool
	}{
		{"", RegionNone, true}, {"us915", US915, true}, {"EU868", EU868, true}, {"AS923", 0, false},
	} {
		got, err := ParseRegion(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %v, %v", tc.in, got, err)
		}
	}
	if _, err := NewRegulator(Region(9), nil); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestRegionFrequency(t *testing.T) {
	for _, tc := range []struct {
		region Region
		hz     int
		ok     bool
	}{
		{US915, 915_000_000, true},
		{US915, 902_300_000, true},
		{US915, 927_500_000, true},
		{US915, 868_100_000, false},
		{US915, 928_000_000, false},
		{US915, 901_999_999, false},
		{EU868, 868_100_000, true},
		{EU868, 869_525_000, true},
		{EU868, 868_650_000, false}, // between sub-bands g1 and g2
		{EU868, 915_000_000, false},
		{RegionNone, 433_000_000, true},
	} {
		err := tc.region.CheckFrequency(tc.hz)
		if (err == nil) != tc.ok {
			t.Errorf("%v %d Hz: got %v, want ok=%v", tc.region, tc.hz, err, tc.ok)
		}
		_, rerr := NewRegulator(tc.region, &RegulatorOpts{FrequencyHz: tc.hz})
		if (rerr == nil) != tc.ok {
			t.Errorf("NewRegulator(%v, %d Hz): got %v, want ok=%v", tc.region, tc.hz, rerr, tc.ok)
		}
	}
	if err := US915.CheckFrequency(868_000_000); err == nil || !strings.Contains(err.Error(), "868 MHz is outside the US915 band (902–928 MHz)") {
		t.Errorf("got %v", err)
	}
	g, err := NewRegulator(US915, nil) // no frequency yet: checked at Tune
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Tune(868_100_000); err == nil {
		t.Error("868.1 MHz accepted as a US915 frequency")
	}
	if lo, hi := EU868.Band(); lo != 863_000_000 || hi != 870_000_000 {
		t.Errorf("EU868 band %d–%d", lo, hi)
	}
}
