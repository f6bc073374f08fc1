package linkbench

import (
	"errors"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

func TestPerfectChannelAirtime(t *testing.T) {
	p := lora.Params{}
	p16 := lora.Params{PreambleSymbols: 16}
	toa := p.TimeOnAir
	for _, tc := range []struct {
		name    string
		s       Scheme
		size    int
		frames  int
		airtime time.Duration
	}{
		// 2048 B = 205 tiles: 8 fragments of 24 tiles (254 B) + an All-1 of
		// 13 tiles, the last 8 bytes long (13+1+4+128 = 146 B) + a C=1 ACK (14 B).
		{"schc 2KiB", SCHC{}, 2048, 10, 8*toa(254) + toa(146) + toa(14)},
		// 10 chunks of 200 B (223 B frames) + one of 48 B (71 B), each ACKed (27 B).
		{"meshtastic 2KiB", Meshtastic{}, 2048, 22, 10*p16.TimeOnAir(223) + p16.TimeOnAir(71) + 11*p16.TimeOnAir(27)},
		{"schc empty", SCHC{}, 0, 2, toa(18) + toa(14)},
		{"schc-compound 2KiB", SCHC{Compound: true}, 2048, 10, 8*toa(254) + toa(146) + toa(14)},
		{"meshtastic empty", Meshtastic{}, 0, 2, p16.TimeOnAir(23) + p16.TimeOnAir(27)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Transfer(tc.s, Config{}, message(tc.size, 1))
			if !r.OK || r.Delivered != tc.size {
				t.Fatalf("got %+v", r)
			}
			if r.Frames != tc.frames || r.Airtime != tc.airtime {
				t.Errorf("frames %d airtime %v, want %d %v", r.Frames, r.Airtime, tc.frames, tc.airtime)
			}
		})
	}
}

func TestExchangePerfect(t *testing.T) {
	p := lora.Params{}
	p16 := lora.Params{PreambleSymbols: 16}
	for _, tc := range []struct {
		s    Scheme
		want time.Duration
	}{
		// request All-1 (13+1+4+100) + C=1 ACK, answer All-1 (13+1+4+50) + ACK.
		{SCHC{}, p.TimeOnAir(118) + p.TimeOnAir(14) + p.TimeOnAir(68) + p.TimeOnAir(14)},
		{Meshtastic{}, p16.TimeOnAir(123) + p16.TimeOnAir(27) + p16.TimeOnAir(73) + p16.TimeOnAir(27)},
	} {
		r := Exchange(tc.s, Config{}, message(100, 2), message(50, 3))
		if !r.OK || r.Delivered != 150 {
			t.Fatalf("%s: %+v", tc.s.Name(), r)
		}
		if r.Airtime != tc.want {
			t.Errorf("%s: airtime %v, want %v", tc.s.Name(), r.Airtime, tc.want)
		}
	}
}

func TestLossyTransfers(t *testing.T) {
	for _, tc := range []struct {
		s          Scheme
		size       int
		ch         sim.Channel
		runs       int
		maxFail    int
		minFail    int
		minGoodput float64
	}{
		{SCHC{}, 16384, sim.Channel{Loss: 0.1}, 20, 0, 0, 0.80},
		{SCHC{}, 2048, sim.Channel{Loss: 0.3}, 40, 2, 0, 0.50},
		{SCHC{}, 2048, sim.Channel{Burst: &sim.GilbertElliott{P: 0.05, R: 0.3, H: 0.3, K: 0.99}, Duplicate: 0.05, Delay: 300 * time.Millisecond}, 20, 1, 0, 0.5},
		{SCHC{Compound: true}, 16384, sim.Channel{Loss: 0.3}, 40, 1, 0, 0.60},
		{SCHC{Compound: true}, 2048, sim.Channel{Loss: 0.1}, 40, 0, 0, 0.75},
		// Stop-and-wait with 3 tries loses most 16 KiB messages at 30 %.
		{Meshtastic{}, 16384, sim.Channel{Loss: 0.3}, 20, 20, 15, 0},
		{Meshtastic{}, 2048, sim.Channel{Loss: 0.1}, 40, 10, 0, 0.5},
	} {
		s := Summarize(tc.s, Config{Channel: tc.ch, Seed: 99}, tc.size, tc.runs)
		t.Logf("%s %d B %v: goodput %.3f, failures %d/%d", tc.s.Name(), tc.size, tc.ch, s.GoodputRatio, s.Failures, s.Runs)
		if s.Failures > tc.maxFail || s.Failures < tc.minFail {
			t.Errorf("%s %d B %v: %d failures, want %d..%d", tc.s.Name(), tc.size, tc.ch, s.Failures, tc.minFail, tc.maxFail)
		}
		if s.GoodputRatio < tc.minGoodput || s.GoodputRatio > 1 {
			t.Errorf("%s %d B %v: goodput ratio %.3f, want ≥ %.2f", tc.s.Name(), tc.size, tc.ch, s.GoodputRatio, tc.minGoodput)
		}
	}
}

func TestCorruptionNeverDeliversWrongBytes(t *testing.T) {
	ch := sim.Channel{Corrupt: 0.3, CRCEscape: 0.5}
	for _, s := range []Scheme{SCHC{}, Meshtastic{}} {
		corrupted := 0
		for i := range 30 {
			r := Transfer(s, Config{Channel: ch, Seed: uint64(i)}, message(2048, uint64(i)))
			if errors.Is(r.Err, ErrCorrupted) {
				corrupted++
			}
			if r.OK && r.Delivered != 2048 {
				t.Errorf("%s: %+v", s.Name(), r)
			}
		}
		// Meshtastic has no end-to-end check: escaped bit errors reach the
		// application, which the harness must notice.
		t.Logf("%s: %d of 30 runs delivered wrong bytes", s.Name(), corrupted)
		if s.Name() == "meshtastic" && corrupted == 0 {
			t.Error("harness never noticed a corrupted delivery")
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Channel: sim.Channel{Loss: 0.2}, Seed: 5}
	a := Summarize(SCHC{}, cfg, 4096, 10)
	b := Summarize(SCHC{}, cfg, 4096, 10)
	if a != b {
		t.Errorf("same seed, different summaries:\n%+v\n%+v", a, b)
	}
}

func TestPHYLimit(t *testing.T) {
	// 255 B / 399.616 ms = 638.1 B/s at SF7/BW125 (docs/radio-notes.md §1.2).
	if got := PHYLimit(lora.Params{PreambleSymbols: 16}); got < 638 || got > 638.2 {
		t.Errorf("got %.2f B/s", got)
	}
}
