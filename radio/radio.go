// Package radio defines what nexfield needs from a LoRa radio: send one frame,
// receive frames with their signal quality, and close. Drivers (rylr, sx127x)
// and the simulated medium (sim) implement Radio; the link layer in chunking
// builds messages, addressing and security on top of it.
package radio

import (
	"context"
	"errors"
	"time"
)

// Radio is one half-duplex LoRa transceiver. Frames are broadcast on the
// configured channel: addressing is the link layer's job.
//
// Send and Receive may be called from different goroutines; a driver
// serialises access to the device itself. Both return ctx.Err() (possibly
// wrapped) when ctx ends, and ErrClosed after Close.
type Radio interface {
	// Send transmits payload as one frame and returns once it has left the
	// antenna (or failed). len(payload) must be at most MTU(); a frame whose
	// time on air breaks the configured region's rules is refused with
	// ErrDwellTime or ErrDutyCycle before anything is transmitted.
	Send(ctx context.Context, payload []byte) error
	// Receive blocks until a frame with a valid PHY CRC arrives.
	Receive(ctx context.Context) (Frame, error)
	// MTU is the largest payload Send accepts under the current settings.
	MTU() int
	// Close stops the radio and unblocks pending calls. It is idempotent.
	Close() error
}

// Frame is one received LoRa frame.
type Frame struct {
	Payload []byte
	// RSSI is the packet's received signal strength in dBm.
	RSSI float64
	// SNR is the packet's signal-to-noise ratio in dB.
	SNR float64
	// Time is when reception completed.
	Time time.Time
}

// Airtimer is implemented by radios that know the time on air of a frame of
// n payload bytes under their current settings. The link uses it to size
// retransmission timers and to report airtime.
type Airtimer interface {
	Airtime(n int) time.Duration
}

// CarrierSenser is implemented by radios that can tell whether someone else
// is transmitting on the channel right now (LoRa CAD, or the simulator), so
// the link can listen before it talks.
type CarrierSenser interface {
	ChannelBusy(ctx context.Context) (bool, error)
}

// Errors callers branch on.
var (
	// ErrClosed is returned by calls on a closed radio.
	ErrClosed = errors.New("radio: closed")
	// ErrFrameTooLarge is returned by Send for a payload longer than MTU().
	ErrFrameTooLarge = errors.New("radio: frame larger than MTU")
	// ErrDwellTime is returned by Send when the frame's time on air exceeds
	// the region's per-transmission dwell limit (US915: 400 ms).
	ErrDwellTime = errors.New("radio: frame exceeds the dwell-time limit")
	// ErrDutyCycle is returned by Send when the region's duty-cycle budget
	// (EU868) has no room for the frame now.
	ErrDutyCycle = errors.New("radio: duty-cycle budget exhausted")
	// ErrNoDevice is returned when the expected module or chip does not answer
	// or identifies as something else.
	ErrNoDevice = errors.New("radio: no device")
	// ErrTimeout is returned when the device does not complete an operation in
	// the time its physics allows.
	ErrTimeout = errors.New("radio: device timeout")
)

// NextFrame is the Receive of a driver that queues received frames on rx:
// a frame already queued wins over a cancelled ctx or a closed radio (done),
// so nothing heard is lost to a race between them.
func NextFrame(ctx context.Context, rx <-chan Frame, done <-chan struct{}) (Frame, error) {
	select {
	case f := <-rx:
		return f, nil
	default:
	}
	select {
	case f := <-rx:
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-done:
		return Frame{}, ErrClosed
	}
}
