package rylr

import (
	"fmt"
	"strings"

	"github.com/nexfield/nexfield/radio/lora"
)

// Model is the module variant; it decides which settings and error codes apply.
type Model uint8

const (
	// ModelAuto detects the model from the module's AT+VER? answer.
	ModelAuto Model = iota
	// RYLR998 (and RYLR498): REYAX's current module.
	RYLR998
	// RYLR896 (and RYLR406/RYLR896 family): the SX1276-based predecessor.
	RYLR896
)

func (m Model) String() string {
	switch m {
	case ModelAuto:
		return "auto"
	case RYLR998:
		return "RYLR998"
	case RYLR896:
		return "RYLR896"
	}
	return fmt.Sprintf("Model(%d)", uint8(m))
}

// ParseModel reads "auto", "rylr998"/"998", "rylr896"/"896".
func ParseModel(s string) (Model, error) {
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(s), "rylr")) {
	case "", "auto":
		return ModelAuto, nil
	case "998", "498":
		return RYLR998, nil
	case "896", "406", "89x", "40x":
		return RYLR896, nil
	}
	return ModelAuto, fmt.Errorf("%w: unknown model %q (want auto, rylr998 or rylr896)", ErrInvalidOpts, s)
}

// modelFromVersion recognises the firmware string of AT+VER?, for example
// "RYLR998_REYAX_V1.2.2" or "RYLR89C_V1.2.7".
func modelFromVersion(v string) (Model, bool) {
	u := strings.ToUpper(v)
	switch {
	case strings.Contains(u, "998"), strings.Contains(u, "498"):
		return RYLR998, true
	case strings.Contains(u, "RYLR89"), strings.Contains(u, "RYLR40"):
		return RYLR896, true
	}
	return ModelAuto, false
}

// bwCodes maps the AT+PARAMETER bandwidth code to Hz (the SX127x table; the
// RYLR998 only takes 7, 8 and 9).
var bwCodes = [...]int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}

func bwCode(hz int) (int, bool) {
	for i, b := range bwCodes {
		if b == hz {
			return i, true
		}
	}
	return 0, false
}

// factory returns the module's factory radio settings.
func (m Model) factory() (p lora.Params, network int, powerDBm int) {
	if m == RYLR896 {
		// RYLR89x guide: 12,7,1,4; network id 0; +15 dBm.
		return lora.Params{SpreadingFactor: 12, BandwidthHz: 125000, CodingRate: 1, PreambleSymbols: 4}, 0, 15
	}
	// RYLR998 AT+FACTORY: 9,7,1,12; network id 18; +22 dBm.
	return lora.Params{SpreadingFactor: 9, BandwidthHz: 125000, CodingRate: 1, PreambleSymbols: 12}, 18, 22
}

// validate refuses what the model's firmware refuses, with the reason,
// before anything is sent to it.
func (m Model) validate(p lora.Params, network, powerDBm, bandHz int) error {
	bw, ok := bwCode(p.BandwidthHz)
	if !ok {
		return fmt.Errorf("%w: %s: bandwidth %d Hz is not a module bandwidth", ErrInvalidOpts, m, p.BandwidthHz)
	}
	if p.CodingRate < 1 || p.CodingRate > 4 {
		return fmt.Errorf("%w: %s: coding rate %d not in 1..4", ErrInvalidOpts, m, p.CodingRate)
	}
	if bandHz < 820_000_000 || bandHz > 960_000_000 {
		return fmt.Errorf("%w: %s: band %d Hz outside 820..960 MHz", ErrInvalidOpts, m, bandHz)
	}
	switch m {
	case RYLR998:
		// The guide lists SF5..11 but pairs each bandwidth with SF7 and up:
		// SF7-9 at 125 kHz, SF7-10 at 250 kHz, SF7-11 at 500 kHz.
		maxSF := map[int]int{7: 9, 8: 10, 9: 11}[bw]
		if maxSF == 0 {
			return fmt.Errorf("%w: RYLR998: bandwidth %d Hz not supported (125, 250 or 500 kHz)", ErrInvalidOpts, p.BandwidthHz)
		}
		if p.SpreadingFactor < 7 || p.SpreadingFactor > maxSF {
			return fmt.Errorf("%w: RYLR998: SF%d not supported at %d kHz (SF7..SF%d)", ErrInvalidOpts, p.SpreadingFactor, p.BandwidthHz/1000, maxSF)
		}
		if network != 18 && p.PreambleSymbols != 12 {
			return fmt.Errorf("%w: RYLR998: preamble must be 12 unless the network id is 18 (got %d with network %d)", ErrInvalidOpts, p.PreambleSymbols, network)
		}
		if p.PreambleSymbols < 4 || p.PreambleSymbols > 24 {
			return fmt.Errorf("%w: RYLR998: preamble %d not in 4..24", ErrInvalidOpts, p.PreambleSymbols)
		}
		if !(network >= 3 && network <= 15) && network != 18 {
			return fmt.Errorf("%w: RYLR998: network id %d not in 3..15 or 18", ErrInvalidOpts, network)
		}
		if powerDBm < 0 || powerDBm > 22 {
			return fmt.Errorf("%w: RYLR998: output power %d dBm not in 0..22", ErrInvalidOpts, powerDBm)
		}
	case RYLR896:
		if p.SpreadingFactor < 7 || p.SpreadingFactor > 12 {
			return fmt.Errorf("%w: RYLR896: SF%d not in SF7..SF12", ErrInvalidOpts, p.SpreadingFactor)
		}
		if p.PreambleSymbols < 4 || p.PreambleSymbols > 7 {
			return fmt.Errorf("%w: RYLR896: preamble %d not in 4..7", ErrInvalidOpts, p.PreambleSymbols)
		}
		if network < 0 || network > 16 {
			return fmt.Errorf("%w: RYLR896: network id %d not in 0..16", ErrInvalidOpts, network)
		}
		if powerDBm < 0 || powerDBm > 15 {
			return fmt.Errorf("%w: RYLR896: output power %d dBm not in 0..15", ErrInvalidOpts, powerDBm)
		}
	default:
		return fmt.Errorf("%w: unknown model %v", ErrInvalidOpts, m)
	}
	return nil
}
