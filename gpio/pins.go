package gpio

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNoPin is wrapped by Open when no pin of that name exists.
var ErrNoPin = errors.New("gpio: no such pin")

// InitHost loads periph.io's host drivers (GPIO character device, SPI
// spidev, ...). It never fails for missing hardware: pins are simply absent.
func InitHost() error {
	if _, err := host.Init(); err != nil {
		return fmt.Errorf("gpio: periph host init: %w", err)
	}
	return nil
}

// Open returns the pin registered as name ("GPIO25", "25", a header
// position like "P1_22", or a line name from the device tree). InitHost
// must have been called. A missing pin is an error naming what exists.
func Open(name string) (pgpio.PinIO, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, fmt.Errorf("%w: empty pin name", ErrNoPin)
	}
	p := gpioreg.ByName(name)
	if p == nil || p == pgpio.INVALID {
		return nil, fmt.Errorf("%w: %q (%s)", ErrNoPin, name, known())
	}
	return p, nil
}

// OpenOptional is Open for pins that may be left unwired: "" gives nil.
func OpenOptional(name string) (pgpio.PinIO, error) {
	if strings.TrimSpace(name) == "" {
		return nil, nil
	}
	return Open(name)
}

func known() string {
	all := gpioreg.All()
	if len(all) == 0 {
		return "this machine has no GPIO pins; is the gpio character device present and readable?"
	}
	names := make([]string, 0, len(all))
	for _, p := range all {
		names = append(names, p.Name())
	}
	sort.Strings(names)
	if len(names) > 12 {
		names = append(names[:12], "...")
	}
	return "known pins: " + strings.Join(names, ", ")
}
