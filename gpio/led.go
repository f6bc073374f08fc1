package gpio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/nexfield/nexfield/clock"
)

// State is what the status LED shows.
type State uint8

const (
	// Off keeps the LED dark.
	Off State = iota
	// Booting blinks fast (100 ms on, 100 ms off) until the node is up.
	Booting
	// Registered is steady on with a short dark blink every 2 s: the node is
	// connected and alive.
	Registered
	// Transmitting blinks (60 ms on, 40 ms off) while frames go out (an
	// activity event): solid light would not show against Registered.
	Transmitting
	// Receiving flickers (40 ms on, 40 ms off) while frames come in (an
	// activity event).
	Receiving
	// Fault flashes three times and pauses; it hides activity events.
	Fault
)

func (s State) String() string {
	switch s {
	case Off:
		return "off"
	case Booting:
		return "booting"
	case Registered:
		return "registered"
	case Transmitting:
		return "transmitting"
	case Receiving:
		return "receiving"
	case Fault:
		return "fault"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// step is one phase of a pattern.
type step struct {
	on bool
	d  time.Duration
}

// patterns repeat; a single step with d == 0 holds forever.
var patterns = map[State][]step{
	Off:          {{false, 0}},
	Booting:      {{true, 100 * time.Millisecond}, {false, 100 * time.Millisecond}},
	Registered:   {{true, 1900 * time.Millisecond}, {false, 100 * time.Millisecond}},
	Transmitting: {{true, 60 * time.Millisecond}, {false, 40 * time.Millisecond}},
	Receiving:    {{true, 40 * time.Millisecond}, {false, 40 * time.Millisecond}},
	Fault: {{true, 150 * time.Millisecond}, {false, 150 * time.Millisecond}, {true, 150 * time.Millisecond},
		{false, 150 * time.Millisecond}, {true, 150 * time.Millisecond}, {false, 1000 * time.Millisecond}},
}

var _ conn.Resource = (*LED)(nil)

// LEDOpts configures a status LED. The zero value suits an LED between the
// pin and ground.
type LEDOpts struct {
	// ActiveLow is for an LED wired from 3.3 V to the pin.
	ActiveLow bool
	// Hold is how long an activity event shows after the last one; 0 means
	// 150 ms.
	Hold time.Duration
	// Clock drives the patterns; nil means real time.
	Clock clock.Clock
}

// LED shows the node's state on one pin. Set and Event may be called from
// any goroutine; Run drives the pin. A nil *LED ignores every call, so
// wiring code can pass one around whether or not an LED is configured.
type LED struct {
	pin  pgpio.PinOut
	o    LEDOpts
	clk  clock.Clock
	wake chan struct{}

	mu       sync.Mutex
	base     State
	activity State
	until    time.Time
}

// NewLED returns an LED on pin, dark and in state Off.
func NewLED(pin pgpio.PinOut, opts *LEDOpts) (*LED, error) {
	if pin == nil || pin == pgpio.INVALID {
		return nil, errors.New("gpio: status LED: no pin")
	}
	var o LEDOpts
	if opts != nil {
		o = *opts
	}
	if o.Hold <= 0 {
		o.Hold = 150 * time.Millisecond
	}
	return &LED{pin: pin, o: o, clk: clock.Or(o.Clock), wake: make(chan struct{}, 1)}, nil
}

func (l *LED) String() string {
	if l == nil {
		return "led{none}"
	}
	return "led{" + l.pin.String() + "}"
}

// Set changes the lasting state (Off, Booting, Registered, Fault).
// Transmitting and Receiving passed here act as Event.
func (l *LED) Set(s State) {
	if l == nil {
		return
	}
	if s == Transmitting || s == Receiving {
		l.Event(s)
		return
	}
	l.mu.Lock()
	changed := l.base != s
	l.base = s
	l.mu.Unlock()
	if changed {
		l.poke()
	}
}

// Event shows activity (Transmitting or Receiving) for the hold time;
// repeated events extend it. Transmitting wins over Receiving while both
// are fresh.
func (l *LED) Event(s State) {
	if l == nil || (s != Transmitting && s != Receiving) {
		return
	}
	now := l.clk.Now()
	l.mu.Lock()
	fresh := now.Before(l.until)
	changed := !fresh || (s == Transmitting && l.activity != Transmitting)
	if changed {
		l.activity = s
	}
	l.until = now.Add(l.o.Hold)
	l.mu.Unlock()
	if changed {
		l.poke()
	}
}

// State returns what the LED shows now.
func (l *LED) State() State {
	if l == nil {
		return Off
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.currentLocked(l.clk.Now())
}

func (l *LED) currentLocked(now time.Time) State {
	if l.base != Fault && now.Before(l.until) {
		return l.activity
	}
	return l.base
}

func (l *LED) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *LED) out(on bool) error {
	if l.o.ActiveLow {
		on = !on
	}
	return l.pin.Out(pgpio.Level(on))
}

// Run drives the pin until ctx ends, then turns the LED off and returns
// nil, or returns the first pin error.
func (l *LED) Run(ctx context.Context) error {
	if l == nil {
		<-ctx.Done()
		return nil
	}
	defer l.out(false)
	t := l.clk.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := l.clk.Now()
		l.mu.Lock()
		s := l.currentLocked(now)
		until := l.until
		l.mu.Unlock()
		pat := patterns[s]
		// Play the pattern from its start until something changes.
		for i := 0; ; i = (i + 1) % len(pat) {
			if err := l.out(pat[i].on); err != nil {
				return fmt.Errorf("gpio: status LED %s: %w", l.pin, err)
			}
			d := pat[i].d
			if s == Transmitting || s == Receiving {
				// Activity ends at until; wake then to fall back.
				left := until.Sub(l.clk.Now())
				if d == 0 || left < d {
					d = max(left, time.Millisecond)
				}
			}
			if d == 0 {
				d = time.Hour
			}
			t.Reset(d)
			changed := false
			select {
			case <-ctx.Done():
				return nil
			case <-l.wake:
				changed = true
			case <-t.C():
			}
			l.mu.Lock()
			now2 := l.clk.Now()
			cur := l.currentLocked(now2)
			until = l.until
			l.mu.Unlock()
			if changed || cur != s {
				if !t.Stop() {
					select {
					case <-t.C():
					default:
					}
				}
				break
			}
		}
	}
}

// Halt turns the LED off; a running Run keeps driving it until its context
// ends.
func (l *LED) Halt() error {
	if l == nil {
		return nil
	}
	return l.out(false)
}

// Follow shows link activity on the LED: every poll (0: 50 ms) it reads
// counts, the frames sent and received so far, and shows Transmitting or
// Receiving when they grew. It returns when ctx ends. Reading counters
// instead of wrapping the radio leaves the radio's optional interfaces
// (airtime, carrier sense) visible to the link that uses them.
func (l *LED) Follow(ctx context.Context, counts func() (sent, received int), poll time.Duration) {
	if l == nil {
		return
	}
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	t := l.clk.NewTimer(poll)
	defer t.Stop()
	sent, recv := counts()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		t.Reset(poll)
		s, r := counts()
		if s != sent {
			l.Event(Transmitting)
		}
		if r != recv {
			l.Event(Receiving)
		}
		sent, recv = s, r
	}
}
