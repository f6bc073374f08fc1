package gpio

import (
	"context"

	"github.com/nexfield/nexfield/radio"
)

// ActivityRadio wraps a radio so that every frame sent or received shows on
// the LED. It implements radio.Radio and passes Airtime through when the
// wrapped radio has it.
type ActivityRadio struct {
	radio.Radio
	LED *LED
}

// Send shows Transmitting, then sends.
func (a ActivityRadio) Send(ctx context.Context, p []byte) error {
	a.LED.Event(Transmitting)
	err := a.Radio.Send(ctx, p)
	a.LED.Event(Transmitting) // hold after long frames too
	return err
}

// Receive shows Receiving for each frame that arrives.
func (a ActivityRadio) Receive(ctx context.Context) (radio.Frame, error) {
	f, err := a.Radio.Receive(ctx)
	if err == nil {
		a.LED.Event(Receiving)
	}
	return f, err
}
