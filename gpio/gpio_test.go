package gpio_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/nexfield/nexfield/gpio"
)

func TestOpenByName(t *testing.T) {
	p := &gpiotest.Pin{N: "NEXFIELD_TEST_DIO0", Num: 9025}
	if err := gpioreg.Register(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gpioreg.Unregister(p.N) })
	got, err := gpio.Open(" NEXFIELD_TEST_DIO0 ")
	if err != nil || got.Name() != p.N {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := gpio.OpenOptional(""); got != nil || err != nil {
		t.Fatalf("optional empty: %v, %v", got, err)
	}
	for _, name := range []string{"NEXFIELD_NO_SUCH_PIN", ""} {
		_, err := gpio.Open(name)
		if !errors.Is(err, gpio.ErrNoPin) || (name != "" && !strings.Contains(err.Error(), "NEXFIELD_TEST_DIO0")) {
			t.Errorf("Open(%q): %v, want ErrNoPin listing the known pins", name, err)
		}
	}
}

func TestInitHostWithoutHardware(t *testing.T) {
	if err := gpio.InitHost(); err != nil {
		t.Fatalf("InitHost on a machine without GPIO: %v", err)
	}
}

// scope records every level the LED pin is driven to, with the time.
type scope struct {
	gpiotest.Pin
	mu     sync.Mutex
	start  time.Time
	events []edge
}

type edge struct {
	at time.Duration
	on bool
}

func (s *scope) Out(l pgpio.Level) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.events); n > 0 && s.events[n-1].on == bool(l) {
		return nil
	}
	s.events = append(s.events, edge{time.Since(s.start), bool(l)})
	return nil
}

// window returns the levels seen in [from, to).
func (s *scope) window(from, to time.Duration) []edge {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []edge
	for _, e := range s.events {
		if e.at >= from && e.at < to {
			out = append(out, e)
		}
	}
	return out
}

func (s *scope) level() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events) > 0 && s.events[len(s.events)-1].on
}

func run(t *testing.T, opts *gpio.LEDOpts) (*gpio.LED, *scope, context.CancelFunc, chan error) {
	pin := &scope{Pin: gpiotest.Pin{N: "LED"}, start: time.Now()}
	led, err := gpio.NewLED(pin, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- led.Run(ctx) }()
	return led, pin, cancel, done
}

func TestLEDPatterns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		led, pin, cancel, done := run(t, nil)
		led.Set(gpio.Booting)
		time.Sleep(1000 * time.Millisecond)
		// 100 ms on, 100 ms off: 5 flashes a second.
		if n := count(pin.window(0, time.Second), true); n != 5 {
			t.Errorf("booting: %d flashes in 1 s, want 5", n)
		}
		led.Set(gpio.Registered)
		time.Sleep(4 * time.Second)
		if n := count(pin.window(time.Second, 5*time.Second), false); n != 2 {
			t.Errorf("registered: %d dark blinks in 4 s, want 2", n)
		}
		led.Set(gpio.Fault)
		time.Sleep(2 * time.Second)
		// Three flashes, then the 1 s pause, then the next cycle starts at 6.75 s.
		if n := count(pin.window(5*time.Second, 7*time.Second), true); n != 4 {
			t.Errorf("fault: %d flashes in 2 s, want 4: %v", n, pin.window(5*time.Second, 7*time.Second))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if pin.level() {
			t.Error("LED left on after Run returned")
		}
	})
}

func count(es []edge, on bool) int {
	n := 0
	for _, e := range es {
		if e.on == on {
			n++
		}
	}
	return n
}

func TestLEDActivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		led, pin, cancel, done := run(t, &gpio.LEDOpts{Hold: 100 * time.Millisecond})
		defer func() { cancel(); <-done }()
		led.Set(gpio.Off)
		synctest.Wait()
		led.Event(gpio.Transmitting)
		synctest.Wait()
		if !pin.level() || led.State() != gpio.Transmitting {
			t.Fatalf("transmitting: LED %v state %v", pin.level(), led.State())
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if pin.level() || led.State() != gpio.Off {
			t.Fatalf("after the hold: LED %v state %v, want off", pin.level(), led.State())
		}
		led.Event(gpio.Receiving)
		time.Sleep(100 * time.Millisecond)
		if n := count(pin.window(150*time.Millisecond, 250*time.Millisecond), true); n < 2 {
			t.Errorf("receiving: %d flickers in 100 ms, want >= 2", n)
		}
		led.Set(gpio.Fault)
		led.Event(gpio.Transmitting)
		if led.State() != gpio.Fault {
			t.Errorf("fault must hide activity, shows %v", led.State())
		}
	})
}

func TestLEDFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		led, _, cancel, done := run(t, nil)
		defer func() { cancel(); <-done }()
		led.Set(gpio.Registered)
		var mu sync.Mutex
		var sent, recv int
		counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return sent, recv }
		fctx, stop := context.WithCancel(context.Background())
		followed := make(chan struct{})
		go func() { led.Follow(fctx, counts, 0); close(followed) }()
		defer func() { stop(); <-followed }()

		time.Sleep(time.Second)
		if s := led.State(); s != gpio.Registered {
			t.Fatalf("no traffic: %v, want registered", s)
		}
		mu.Lock()
		sent++
		mu.Unlock()
		time.Sleep(60 * time.Millisecond) // one poll
		if s := led.State(); s != gpio.Transmitting {
			t.Fatalf("after a frame sent: %v, want transmitting", s)
		}
		time.Sleep(time.Second)
		mu.Lock()
		recv += 3
		mu.Unlock()
		time.Sleep(60 * time.Millisecond)
		if s := led.State(); s != gpio.Receiving {
			t.Fatalf("after frames received: %v, want receiving", s)
		}
		time.Sleep(time.Second)
		if s := led.State(); s != gpio.Registered {
			t.Fatalf("after the hold: %v, want registered", s)
		}
	})
}

func TestNilLEDIsInert(t *testing.T) {
	var led *gpio.LED
	led.Set(gpio.Fault)
	led.Event(gpio.Transmitting)
	if led.State() != gpio.Off || led.Halt() != nil || led.String() != "led{none}" {
		t.Fatal("nil LED is not inert")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := led.Run(ctx); err != nil {
		t.Fatal(err)
	}
	led.Follow(ctx, func() (int, int) { return 1, 1 }, 0) // returns at once
}

func TestNewLEDNeedsPin(t *testing.T) {
	if _, err := gpio.NewLED(nil, nil); err == nil {
		t.Fatal("nil pin accepted")
	}
	if _, err := gpio.NewLED(pgpio.INVALID, nil); err == nil {
		t.Fatal("INVALID pin accepted")
	}
}
