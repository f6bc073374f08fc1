package chunking

import (
	"errors"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// fade loses every frame that starts between from and from+length from
// now: the channel is gone both ways.
func fade(n *vnet, from, length time.Duration) {
	start := n.now.Add(from)
	end := start.Add(length)
	n.drop = func(Addr, []byte) bool { return !n.now.Before(start) && n.now.Before(end) }
}

// sendThrough sends a one-way message of size bytes from 1 to 2 over a fade
// and returns the sender's outcome.
func sendThrough(t *testing.T, sf int, size int, from, length time.Duration, deadline time.Duration, opts *EngineOpts) Event {
	t.Helper()
	n := newVnet(t, 0, 1)
	air := lora.Params{SpreadingFactor: sf}.TimeOnAir
	n.airtime = air
	var o EngineOpts
	if opts != nil {
		o = *opts
	}
	o.Airtime = air
	a, b := n.add(1, &o), n.add(2, &o)
	fade(n, from, length)
	var until time.Time
	if deadline > 0 {
		until = n.now.Add(deadline)
	}
	msg := payload(size, 3)
	if _, err := a.e.SendUntil(n.now, 2, msg, true, until); err != nil {
		t.Fatal(err)
	}
	n.run(time.Hour)
	var out []Event
	for _, ev := range a.events {
		if ev.Kind == EventDelivered || ev.Kind == EventFailed {
			out = append(out, ev)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d outcomes, want 1: %+v", len(out), out)
	}
	if out[0].Kind == EventDelivered {
		got := b.find(EventMessage)
		if len(got) != 1 || string(got[0].Data) != string(msg) {
			t.Fatalf("delivered %d messages, want the one sent", len(got))
		}
	}
	return out[0]
}

// TestFadeWithinBudget: a 90 s fade in the middle of a 16 KiB message at
// SF7 costs time, not the message (32 ACK requests at a fixed interval
// gave up after 6 s of it).
func TestFadeWithinBudget(t *testing.T) {
	if ev := sendThrough(t, 7, 16<<10, 10*time.Second, 90*time.Second, 0, nil); ev.Kind != EventDelivered {
		t.Fatalf("got %v %v, want the message delivered", ev.Kind, ev.Err)
	}
}

// TestFadeUntilDeadline: a fade longer than RetryBudget ends the message
// with ErrNoAck, unless its sender's deadline lies beyond the fade.
func TestFadeUntilDeadline(t *testing.T) {
	ev := sendThrough(t, 7, 16<<10, 10*time.Second, 150*time.Second, 0, nil)
	if ev.Kind != EventFailed || !errors.Is(ev.Err, ErrNoAck) {
		t.Fatalf("without a deadline: got %v %v, want ErrNoAck", ev.Kind, ev.Err)
	}
	if ev.Stats.Latency < defaultRetryBudget {
		t.Errorf("gave up after %v, want at least the %v budget", ev.Stats.Latency, defaultRetryBudget)
	}
	if ev := sendThrough(t, 7, 16<<10, 10*time.Second, 150*time.Second, 4*time.Minute, nil); ev.Kind != EventDelivered {
		t.Fatalf("with a 4-minute deadline: got %v %v, want the message delivered", ev.Kind, ev.Err)
	}
	ev = sendThrough(t, 7, 16<<10, 10*time.Second, 10*time.Minute, 4*time.Minute, nil)
	if ev.Kind != EventFailed || !errors.Is(ev.Err, ErrNoAck) || ev.Stats.Latency > 4*time.Minute+5*time.Second {
		t.Fatalf("a fade past the deadline: got %v %v after %v, want ErrNoAck at the deadline", ev.Kind, ev.Err, ev.Stats.Latency)
	}
}

// TestOutageSF10: at SF10 a 58 s outage in the middle of a 16 KiB message
// (a 150 s burst) leaves the receiver more than a minute without a frame;
// a fixed 60 s Inactivity freed the message and refused its sender as if
// the peer had restarted.
func TestOutageSF10(t *testing.T) {
	ev := sendThrough(t, 10, 16<<10, 30*time.Second, 58*time.Second, 0, nil)
	if ev.Kind != EventDelivered {
		t.Fatalf("got %v %v, want the message delivered", ev.Kind, ev.Err)
	}
	ev = sendThrough(t, 10, 16<<10, 30*time.Second, 58*time.Second, 0, &EngineOpts{Inactivity: time.Minute})
	if ev.Kind != EventFailed || !errors.Is(ev.Err, ErrRefused) {
		t.Fatalf("with a fixed 60 s Inactivity: got %v %v, want the refusal it caused", ev.Kind, ev.Err)
	}
}

// TestFadeAirtime measures what a 60 s fade costs in ACK requests, against
// the schedule's own bounds (jitter takes up to a quarter off each spaced
// wait), at SF7 and SF10.
func TestFadeAirtime(t *testing.T) {
	for _, sf := range []int{7, 10} {
		air := lora.Params{SpreadingFactor: sf}.TimeOnAir
		n := newVnet(t, 0, 1)
		n.airtime = air
		a, _ := n.add(1, &EngineOpts{Airtime: air}), n.add(2, &EngineOpts{Airtime: air})
		const length = time.Minute
		fade(n, 0, length)
		end := n.now.Add(length)
		polls := 0
		n.trace = func(from Addr, f []byte) {
			if h, _, err := parseHeader(f, 8); err == nil && from == 1 && !h.isFrag() && h.ctlType() == ctlPoll && n.now.Before(end) {
				polls++
			}
		}
		frame := 100
		if _, err := a.e.Send(n.now, 2, payload(frame, 1), true); err != nil {
			t.Fatal(err)
		}
		n.run(time.Hour)
		if len(a.find(EventDelivered)) != 1 {
			t.Fatalf("SF%d: not delivered after the fade", sf)
		}
		// The schedule: the fragment, then requests after each wait.
		e := a.e
		pollAir := air(hdrLen + pollExt + e.tagLen)
		count := func(shrink func(time.Duration) time.Duration) int {
			t := air(hdrLen + e.tagLen + frame + crcLen)
			k := 0
			for polls := 1; ; polls++ {
				w := e.ackWait()
				if polls > fastPolls {
					w = shrink(min(e.pollCap(), w<<min(polls-fastPolls, 16)))
				}
				t += w
				if t >= length {
					return k
				}
				t += pollAir
				k++
			}
		}
		most := count(func(d time.Duration) time.Duration { return d - d/4 })
		least := count(func(d time.Duration) time.Duration { return d })
		if polls < least || polls > most {
			t.Errorf("SF%d: %d POLLs in the fade, want %d-%d", sf, polls, least, most)
		}
		t.Logf("SF%d: a 60 s fade cost %d POLLs (schedule: %d-%d) of %v: %v of airtime", sf, polls, least, most, pollAir, time.Duration(polls)*pollAir)
	}
}

// TestBudget: a 64 KiB message at SF7 takes 108 s of airtime without loss,
// longer than a fixed 2-minute deadline once frames are lost; the budget
// allows for 30 % loss and a fade, and grows with the spreading factor.
func TestBudget(t *testing.T) {
	e7, _ := NewEngine(1, testPSK, nil)
	e10, _ := NewEngine(1, testPSK, &EngineOpts{Airtime: lora.Params{SpreadingFactor: 10}.TimeOnAir})
	b := e7.Budget(64<<10, 0)
	if b < 108*time.Second/7*10+defaultRetryBudget || b > 6*time.Minute {
		t.Errorf("SF7 64 KiB budget %v, want 108 s / 0.7 + the retry budget, under 6 minutes", b)
	}
	if small := e7.Budget(100, 8); small >= b || small < defaultRetryBudget {
		t.Errorf("small request budget %v, want between the retry budget and %v", small, b)
	}
	if b10 := e10.Budget(64<<10, 0); b10 < 5*b/2 {
		t.Errorf("SF10 budget %v, want well above SF7's %v", b10, b)
	}
}
