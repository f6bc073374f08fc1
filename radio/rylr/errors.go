package rylr

import (
	"errors"
	"fmt"

	"github.com/nexfield/nexfield/radio"
)

// ATError is a +ERR answer of the module to one command.
type ATError struct {
	Model   Model
	Command string // the command as sent, without data ("AT+SEND=0,12")
	Code    int
}

func (e *ATError) Error() string {
	return fmt.Sprintf("rylr: %s: +ERR=%d: %s", e.Command, e.Code, e.Model.describeErr(e.Code))
}

// Unwrap lets callers branch with errors.Is: a transmit timeout is a
// radio.ErrTimeout, an oversize payload a radio.ErrFrameTooLarge.
func (e *ATError) Unwrap() error {
	switch e.Code {
	case 10:
		return radio.ErrTimeout
	case 13:
		return radio.ErrFrameTooLarge
	}
	return nil
}

// Error codes of the AT command guides. The two models share most numbers
// but not all: RYLR896 (REYAX "LoRa AT command RYLR40x/RYLR89x", 2018 and
// 2022) and RYLR998 (REYAX "RYLR998/RYLR498 AT command guide").
var (
	errText896 = map[int]string{
		1:  "command does not end with CR LF",
		2:  "command does not start with AT",
		3:  "no '=' in the command",
		4:  "unknown command",
		10: "transmit timed out",
		11: "receive timed out",
		12: "CRC error",
		13: "data longer than 240 bytes",
		15: "unknown error",
	}
	errText998 = map[int]string{
		1:  "command does not end with CR LF",
		2:  "command does not start with AT",
		4:  "unknown command",
		5:  "data length does not match the declared length",
		10: "transmit timed out",
		12: "CRC error",
		13: "data longer than 240 bytes",
		14: "writing the settings to flash failed",
		15: "unknown failure",
		17: "previous transmission not finished",
		18: "preamble value not allowed (must be 12 unless the network id is 18)",
		19: "reception failed: header error",
		20: "smart-receive power-saving time invalid",
	}
)

func (m Model) describeErr(code int) string {
	t := errText998
	if m == RYLR896 {
		t = errText896
	}
	if s, ok := t[code]; ok {
		return s
	}
	return "undocumented error code"
}

// ErrInvalidOpts is wrapped by New for settings the module cannot use.
var ErrInvalidOpts = errors.New("rylr: invalid options")
