package lora

import (
	"errors"
	"math"
	"testing"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestTimeOnAirTable checks every cell of the worked table (docs/radio-notes.md §1.2:
// CR 4/5, explicit header, CRC on, 8-symbol preamble, LDRO auto), rounded
// to 0.1 ms as published.
func TestTimeOnAirTable(t *testing.T) {
	sizes := []int{10, 50, 100, 222, 255}
	for _, tc := range []struct {
		name   string
		p      Params
		tsymMS float64
		ldro   bool
		want   []float64
		maxPL  int
	}{
		{"SF7/BW125", Params{SpreadingFactor: 7, BandwidthHz: 125000}, 1.024, false, []float64{41.2, 97.5, 174.3, 348.4, 399.6}, 255},
		{"SF9/BW125", Params{SpreadingFactor: 9, BandwidthHz: 125000}, 4.096, false, []float64{144.4, 328.7, 554.0, 1106.9, 1250.3}, 66},
		{"SF10/BW125", Params{SpreadingFactor: 10, BandwidthHz: 125000}, 8.192, false, []float64{288.8, 616.4, 1026.0, 2009.1, 2295.8}, 24},
		{"SF12/BW125", Params{SpreadingFactor: 12, BandwidthHz: 125000}, 32.768, true, []float64{991.2, 2302.0, 3940.4, 8036.4, 9019.4}, -1},
		{"SF7/BW500", Params{SpreadingFactor: 7, BandwidthHz: 500000}, 0.256, false, []float64{10.3, 24.4, 43.6, 87.1, 99.9}, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ms(tc.p.SymbolTime()); math.Abs(got-tc.tsymMS) > 1e-9 {
				t.Errorf("SymbolTime got %v ms, want %v", got, tc.tsymMS)
			}
			if got := tc.p.LowDataRateOptimize(); got != tc.ldro {
				t.Errorf("LDRO got %v, want %v", got, tc.ldro)
			}
			for i, n := range sizes {
				got := math.Round(ms(tc.p.TimeOnAir(n))*10) / 10
				if got != tc.want[i] {
					t.Errorf("ToA(%d) got %.1f ms (%v), want %.1f", n, got, tc.p.TimeOnAir(n), tc.want[i])
				}
			}
			if got := tc.p.MaxPayload(400 * time.Millisecond); got != tc.maxPL {
				t.Errorf("MaxPayload(400ms) got %d, want %d", got, tc.maxPL)
			}
		})
	}
}

func TestTimeOnAirExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		n    int
		want time.Duration
	}{
		// AN1200.13 spreadsheet: 13 B, SF9, CR4/5, 8-symbol preamble.
		{"spreadsheet SF9 13B", Params{SpreadingFactor: 9}, 13, 164864 * time.Microsecond},
		// SF12 empty frame with LDRO: 663.6 ms in the table, exact value.
		{"SF12 empty", Params{SpreadingFactor: 12}, 0, 663552 * time.Microsecond},
		// US915 DR0: 24-byte PHYPayload at SF10/125 is 370.7 ms, 25 B 411.6 ms.
		{"SF10 24B", Params{SpreadingFactor: 10}, 24, 370688 * time.Microsecond},
		{"SF10 25B", Params{SpreadingFactor: 10}, 25, 411648 * time.Microsecond},
		// Zero value is SF7/BW125/CR4/5/8 symbols/explicit/CRC.
		{"zero value 255B", Params{}, 255, 399616 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.TimeOnAir(tc.n); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTimeOnAirPreamble12(t *testing.T) {
	sizes := []int{10, 50, 100, 222, 255}
	for _, tc := range []struct {
		name string
		p    Params
		want []float64
	}{
		{"SF7/BW125", Params{SpreadingFactor: 7, PreambleSymbols: 12}, []float64{45.3, 101.6, 178.4, 352.5, 403.7}},
		{"SF9/BW125", Params{SpreadingFactor: 9, PreambleSymbols: 12}, []float64{160.8, 345.1, 570.4, 1123.3, 1266.7}},
		{"SF7/BW500", Params{SpreadingFactor: 7, BandwidthHz: 500000, PreambleSymbols: 12}, []float64{11.3, 25.4, 44.6, 88.1, 100.9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, n := range sizes {
				got := math.Round(ms(tc.p.TimeOnAir(n))*10) / 10
				if got != tc.want[i] {
					t.Errorf("ToA(%d) got %.1f, want %.1f", n, got, tc.want[i])
				}
			}
		})
	}
	if got := (Params{PreambleSymbols: 12}).MaxPayload(400 * time.Millisecond); got != 253 {
		t.Errorf("SF7/125 preamble 12 max payload got %d, want 253", got)
	}
}

// TestMaxPayloadDwell checks the "max PL within 400 ms" lists for preambles
// 8 / 12 / 16.
func TestMaxPayloadDwell(t *testing.T) {
	for _, tc := range []struct {
		sf, bw int
		want   [3]int
	}{
		{8, 125000, [3]int{138, 134, 130}},
		{9, 125000, [3]int{66, 62, 57}},
		{10, 125000, [3]int{24, 19, 19}},
		{7, 250000, [3]int{255, 255, 255}},
		{8, 250000, [3]int{255, 255, 255}},
		{7, 500000, [3]int{255, 255, 255}},
		{8, 500000, [3]int{255, 255, 255}},
		{9, 500000, [3]int{255, 255, 255}},
		{10, 500000, [3]int{174, 169, 164}},
		{11, 500000, [3]int{82, 77, 71}},
		{12, 500000, [3]int{30, 24, 24}},
	} {
		for i, pre := range []int{8, 12, 16} {
			p := Params{SpreadingFactor: tc.sf, BandwidthHz: tc.bw, PreambleSymbols: pre}
			if got := p.MaxPayload(400 * time.Millisecond); got != tc.want[i] {
				t.Errorf("%v preamble %d: got %d, want %d", p, pre, got, tc.want[i])
			}
		}
	}
	// Meshtastic LongFast: SF11/BW250, 16-symbol preamble: 255 B = 2156 ms, 22 B fit.
	lf := Params{SpreadingFactor: 11, BandwidthHz: 250000, PreambleSymbols: 16}
	if got, want := lf.TimeOnAir(255), 2156544*time.Microsecond; got != want {
		t.Errorf("LongFast 255 B got %v, want %v", got, want)
	}
	if got := lf.MaxPayload(400 * time.Millisecond); got != 22 {
		t.Errorf("LongFast max payload got %d, want 22", got)
	}
	if got := lf.MaxPayload(0); got != MaxFrame {
		t.Errorf("no dwell limit: got %d, want %d", got, MaxFrame)
	}
}

// TestLowSpreadingFactors checks the SF5/SF6 rules: preamble forced to at
// least 12 symbols, two extra symbols, no +8 in the numerator, no LDRO.
func TestLowSpreadingFactors(t *testing.T) {
	// SF6/BW125, 10 B, explicit, CRC, preamble 8 → 12:
	// num = 80 - 24 + 16 + 20 = 92, den = 24, ceil = 4, ×5 = 20;
	// n = 20 + 12 + 12 + 2 = 46; quarters = 185; chips = 185·16 = 2960; ×8 µs.
	p := Params{SpreadingFactor: 6}
	if got, want := p.TimeOnAir(10), 2960*8*time.Microsecond; got != want {
		t.Errorf("SF6 10B got %v, want %v", got, want)
	}
	if a, b := p.TimeOnAir(10), (Params{SpreadingFactor: 6, PreambleSymbols: 12}).TimeOnAir(10); a != b {
		t.Errorf("SF6 preamble 8 (%v) should be raised to 12 (%v)", a, b)
	}
	// SF5 implicit, no CRC, 1 byte: num = 8-20 = -12 → 0; n = 0+12+12+2 = 26;
	// quarters 105; chips 105·8 = 840; ×8 µs.
	p5 := Params{SpreadingFactor: 5, ImplicitHeader: true, NoCRC: true}
	if got, want := p5.TimeOnAir(1), 840*8*time.Microsecond; got != want {
		t.Errorf("SF5 implicit got %v, want %v", got, want)
	}
	if (Params{SpreadingFactor: 5, BandwidthHz: 7800, LDRO: LDROOn}).TimeOnAir(20) !=
		(Params{SpreadingFactor: 5, BandwidthHz: 7800, LDRO: LDROOff}).TimeOnAir(20) {
		t.Error("LDRO must not change SF5 airtime")
	}
}

func TestHeaderCRCAndLDRO(t *testing.T) {
	base := Params{SpreadingFactor: 9}
	for _, tc := range []struct {
		name string
		p    Params
		less bool
	}{
		{"implicit header shorter", Params{SpreadingFactor: 9, ImplicitHeader: true}, true},
		{"no CRC shorter", Params{SpreadingFactor: 9, NoCRC: true}, true},
		{"CR 4/8 longer", Params{SpreadingFactor: 9, CodingRate: 4}, false},
		{"forced LDRO longer", Params{SpreadingFactor: 9, LDRO: LDROOn}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.p.TimeOnAir(100), base.TimeOnAir(100)
			if (a < b) != tc.less || a == b {
				t.Errorf("got %v vs base %v", a, b)
			}
		})
	}
	if (Params{SpreadingFactor: 12, LDRO: LDROOff}).LowDataRateOptimize() {
		t.Error("LDROOff ignored")
	}
	if !(Params{SpreadingFactor: 12, BandwidthHz: 250000}).LowDataRateOptimize() {
		t.Error("SF12/BW250 should turn LDRO on (16.384 ms symbols)")
	}
	if (Params{SpreadingFactor: 11, BandwidthHz: 250000}).LowDataRateOptimize() {
		t.Error("SF11/BW250 should leave LDRO off")
	}
}

func TestMonotonic(t *testing.T) {
	for sf := 5; sf <= 12; sf++ {
		for _, bw := range []int{125000, 250000, 500000} {
			p := Params{SpreadingFactor: sf, BandwidthHz: bw}
			prev := time.Duration(0)
			for n := 0; n <= MaxFrame; n++ {
				d := p.TimeOnAir(n)
				if d < prev {
					t.Fatalf("%v: ToA(%d)=%v < ToA(%d)=%v", p, n, d, n-1, prev)
				}
				prev = d
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		ok   bool
	}{
		{"zero value", Params{}, true},
		{"SF12 BW500 CR4/8", Params{SpreadingFactor: 12, BandwidthHz: 500000, CodingRate: 4}, true},
		{"SF4", Params{SpreadingFactor: 4}, false},
		{"SF13", Params{SpreadingFactor: 13}, false},
		{"BW 100k", Params{BandwidthHz: 100000}, false},
		{"CR5", Params{CodingRate: 5}, false},
		{"preamble 3", Params{PreambleSymbols: 3}, false},
		{"LDRO 9", Params{LDRO: 9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidParams) {
				t.Errorf("got %v, want wrapping ErrInvalidParams", err)
			}
		})
	}
}

func TestStringAndBitRate(t *testing.T) {
	if got := (Params{}).String(); got != "SF7/BW125/CR4/5" {
		t.Errorf("got %q", got)
	}
	for _, tc := range []struct {
		p    Params
		want float64
	}{
		{Params{SpreadingFactor: 7}, 5469},
		{Params{SpreadingFactor: 9}, 1758},
		{Params{SpreadingFactor: 10}, 977},
		{Params{SpreadingFactor: 12}, 244},
		{Params{SpreadingFactor: 7, BandwidthHz: 500000}, 21875},
	} {
		if got := math.Round(tc.p.BitRate()); got != tc.want {
			t.Errorf("%v bit rate got %v, want %v", tc.p, got, tc.want)
		}
	}
}

func BenchmarkTimeOnAir(b *testing.B) {
	b.ReportAllocs()
	p := Params{SpreadingFactor: 9}
	var sum time.Duration
	n := 0
	for b.Loop() {
		sum += p.TimeOnAir(n & 0xff)
		n++
	}
	_ = sum
}

func BenchmarkMaxPayload(b *testing.B) {
	b.ReportAllocs()
	p := Params{SpreadingFactor: 10, BandwidthHz: 500000}
	for b.Loop() {
		p.MaxPayload(400 * time.Millisecond)
	}
}
