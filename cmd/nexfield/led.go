package main

import (
	"context"
	"flag"
	"fmt"
	"sync"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/gpio"
)

// ledConfig is the optional status LED of the relay and the peer.
type ledConfig struct {
	pin       string
	activeLow bool
}

func addLEDFlags(fs *flag.FlagSet) *ledConfig {
	c := &ledConfig{}
	fs.StringVar(&c.pin, "led", "", "GPIO of a status LED, e.g. GPIO17: fast blink while starting, on with a short dark blink every 2 s while serving, a flicker per frame, three flashes while the radio (or the relay's NATS) is down (optional)")
	fs.BoolVar(&c.activeLow, "led-active-low", false, "the status LED is wired from 3.3 V to the pin")
	return c
}

// statusLED is a running status LED; a nil *gpio.LED (no --led) ignores
// every call, so callers never check.
type statusLED struct {
	*gpio.LED
	ctx  context.Context // ends with Close
	stop func()
	wg   sync.WaitGroup
}

// start opens the LED pin and drives it, showing Booting, until Close.
func (c *ledConfig) start(ctx context.Context) (*statusLED, error) {
	s := &statusLED{ctx: ctx, stop: func() {}}
	if c.pin == "" {
		return s, nil
	}
	if err := gpio.InitHost(); err != nil {
		return nil, fmt.Errorf("led: %w", err)
	}
	pin, err := gpio.Open(c.pin)
	if err != nil {
		return nil, fmt.Errorf("led: %w", err)
	}
	led, err := gpio.NewLED(pin, &gpio.LEDOpts{ActiveLow: c.activeLow})
	if err != nil {
		return nil, err
	}
	led.Set(gpio.Booting)
	ctx, cancel := context.WithCancel(ctx)
	s.LED, s.ctx, s.stop = led, ctx, cancel
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = led.Run(ctx) }()
	return s, nil
}

// follow shows l's frames on the LED until ctx ends or the LED closes.
func (s *statusLED) follow(ctx context.Context, l *chunking.Link) {
	if s.LED == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.ctx, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer unhook()
		defer cancel()
		s.Follow(ctx, func() (int, int) { st := l.Stats(); return st.Sent, st.Accepted }, 0)
	}()
}

// Close stops the LED (dark) and joins its goroutines.
func (s *statusLED) Close() {
	s.stop()
	s.wg.Wait()
}
