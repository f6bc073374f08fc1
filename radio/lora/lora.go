package lora

import (
	"errors"
	"fmt"
	"time"
)

// MaxFrame is the largest LoRa PHY payload: the length register is 8 bits.
const MaxFrame = 255

// ErrInvalidParams is wrapped by Validate for settings a LoRa modem cannot use.
var ErrInvalidParams = errors.New("lora: invalid parameters")

// LDRO selects low-data-rate optimisation.
type LDRO uint8

const (
	// LDROAuto turns the optimisation on when a symbol lasts longer than
	// 16 ms (BW125 SF11/SF12, BW250 SF12), as LoRaMac-node does.
	LDROAuto LDRO = iota
	// LDROOn forces it on.
	LDROOn
	// LDROOff forces it off.
	LDROOff
)

func (l LDRO) String() string {
	switch l {
	case LDROAuto:
		return "auto"
	case LDROOn:
		return "on"
	case LDROOff:
		return "off"
	}
	return fmt.Sprintf("LDRO(%d)", uint8(l))
}

// Bandwidths lists the LoRa channel bandwidths in Hz that Validate accepts
// (SX127x/SX126x register values).
var bandwidths = [...]int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}

// Params are the modulation settings of a LoRa link. The zero value is
// SF7, 125 kHz, CR 4/5, 8-symbol preamble, explicit header, payload CRC on,
// LDRO automatic: the LoRaWAN defaults at the fastest 125 kHz rate.
type Params struct {
	// SpreadingFactor is 5..12; 0 means 7.
	SpreadingFactor int
	// BandwidthHz is one of 7800 ... 500000; 0 means 125000.
	BandwidthHz int
	// CodingRate is 1..4 for 4/5..4/8; 0 means 1 (4/5).
	CodingRate int
	// PreambleSymbols is the programmed preamble length; 0 means 8. SF5 and
	// SF6 use at least 12 whatever is set (the modem needs them).
	PreambleSymbols int
	// ImplicitHeader omits the PHY header (both ends must agree on length,
	// CR and CRC). SF6 on an SX127x works only with an implicit header.
	ImplicitHeader bool
	// NoCRC turns the 16-bit payload CRC off.
	NoCRC bool
	// LDRO selects low-data-rate optimisation; zero is LDROAuto.
	LDRO LDRO
}

// Resolved returns p with every zero field replaced by its default.
func (p Params) Resolved() Params {
	if p.SpreadingFactor == 0 {
		p.SpreadingFactor = 7
	}
	if p.BandwidthHz == 0 {
		p.BandwidthHz = 125000
	}
	if p.CodingRate == 0 {
		p.CodingRate = 1
	}
	if p.PreambleSymbols == 0 {
		p.PreambleSymbols = 8
	}
	return p
}

// Validate reports settings no LoRa modem accepts, wrapping ErrInvalidParams.
func (p Params) Validate() error {
	r := p.Resolved()
	if r.SpreadingFactor < 5 || r.SpreadingFactor > 12 {
		return fmt.Errorf("%w: spreading factor %d not in 5..12", ErrInvalidParams, r.SpreadingFactor)
	}
	ok := false
	for _, b := range bandwidths {
		ok = ok || b == r.BandwidthHz
	}
	if !ok {
		return fmt.Errorf("%w: bandwidth %d Hz is not a LoRa bandwidth", ErrInvalidParams, r.BandwidthHz)
	}
	if r.CodingRate < 1 || r.CodingRate > 4 {
		return fmt.Errorf("%w: coding rate %d not in 1..4 (4/5..4/8)", ErrInvalidParams, r.CodingRate)
	}
	if r.PreambleSymbols < 6 || r.PreambleSymbols > 65535 {
		return fmt.Errorf("%w: preamble %d symbols not in 6..65535", ErrInvalidParams, r.PreambleSymbols)
	}
	if r.LDRO > LDROOff {
		return fmt.Errorf("%w: unknown LDRO mode %d", ErrInvalidParams, r.LDRO)
	}
	return nil
}

// String is the conventional short form, e.g. "SF7/BW125/CR4/5".
func (p Params) String() string {
	r := p.Resolved()
	bw := fmt.Sprintf("%g", float64(r.BandwidthHz)/1000)
	return fmt.Sprintf("SF%d/BW%s/CR4/%d", r.SpreadingFactor, bw, r.CodingRate+4)
}

// SymbolTime is 2^SF / BW.
func (p Params) SymbolTime() time.Duration {
	r := p.Resolved()
	return time.Duration((int64(1)<<r.SpreadingFactor)*int64(time.Second)) / time.Duration(r.BandwidthHz)
}

// LowDataRateOptimize reports whether LDRO is in effect for p.
func (p Params) LowDataRateOptimize() bool {
	r := p.Resolved()
	switch r.LDRO {
	case LDROOn:
		return true
	case LDROOff:
		return false
	}
	// Tsym > 16 ms  <=>  2^SF * 1000 > 16 * BW, kept in integers.
	return (int64(1)<<r.SpreadingFactor)*1000 > 16*int64(r.BandwidthHz)
}

// Symbols returns the length of a frame of payloadLen bytes in quarter
// symbols. It is the integer core of TimeOnAir: preamble + 4.25 sync/SFD
// symbols + 8 header-block symbols + the payload blocks.
func (p Params) quarterSymbols(payloadLen int) int64 {
	r := p.Resolved()
	sf := int64(r.SpreadingFactor)
	pre := int64(r.PreambleSymbols)
	if sf <= 6 && pre < 12 {
		pre = 12
	}
	num := 8*int64(payloadLen) - 4*sf
	if !r.NoCRC {
		num += 16
	}
	if !r.ImplicitHeader {
		num += 20
	}
	var den int64
	if sf <= 6 {
		den = 4 * sf
	} else {
		num += 8
		if p.LowDataRateOptimize() {
			den = 4 * (sf - 2)
		} else {
			den = 4 * sf
		}
	}
	if num < 0 {
		num = 0
	}
	n := (num+den-1)/den*int64(r.CodingRate+4) + pre + 12
	if sf <= 6 {
		n += 2
	}
	return 4*n + 1
}

// TimeOnAir is the exact airtime of one frame carrying payloadLen bytes,
// rounded up to the nanosecond.
func (p Params) TimeOnAir(payloadLen int) time.Duration {
	r := p.Resolved()
	// chips = quarter symbols * 2^SF / 4; ns = chips * 1e9 / BW.
	chips := p.quarterSymbols(payloadLen) << (r.SpreadingFactor - 2)
	bw := int64(r.BandwidthHz)
	return time.Duration((chips*int64(time.Second) + bw - 1) / bw)
}

// MaxPayload is the largest payload (at most MaxFrame) whose time on air is
// within dwell, or -1 when not even an empty frame fits. dwell <= 0 means no
// limit.
func (p Params) MaxPayload(dwell time.Duration) int {
	if dwell <= 0 {
		return MaxFrame
	}
	// Time on air grows monotonically with length: binary search.
	lo, hi := -1, MaxFrame
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.TimeOnAir(mid) <= dwell {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// BitRate is the raw payload bit rate SF·BW/2^SF·4/(4+CR), scaled by
// (SF−2)/SF when LDRO is on.
func (p Params) BitRate() float64 {
	r := p.Resolved()
	sf := float64(r.SpreadingFactor)
	rate := sf * float64(r.BandwidthHz) / float64(int64(1)<<r.SpreadingFactor) * 4 / float64(4+r.CodingRate)
	if p.LowDataRateOptimize() {
		rate *= (sf - 2) / sf
	}
	return rate
}
