package chunking_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

var psk = []byte("link-test pre-shared key, 32 B!!")

func newLink(t *testing.T, air *sim.Air, addr chunking.Addr, peers ...chunking.Addr) (*chunking.Link, *sim.Radio) {
	t.Helper()
	r, err := air.NewRadio(&sim.RadioOpts{Name: fmt.Sprint(addr), Region: lora.US915})
	if err != nil {
		t.Fatal(err)
	}
	l, err := chunking.New(r, addr, psk, &chunking.Opts{EngineOpts: chunking.EngineOpts{Peers: peers, Seed: uint64(addr)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		r.Close()
	})
	return l, r
}

func TestLinkRequestServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, err := sim.NewAir(&sim.Opts{Channel: sim.Channel{Loss: 0.2}, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		gw, _ := newLink(t, air, 1, 2, 3)
		p2, _ := newLink(t, air, 2, 1)
		p3, _ := newLink(t, air, 3, 1)
		var calls atomic.Int32
		serve := func(l *chunking.Link, tag string) {
			go l.Serve(t.Context(), func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
				calls.Add(1)
				if string(req) == "fail" {
					return nil, errors.New("no model")
				}
				return append([]byte(tag), req[:min(len(req), 20)]...), nil
			})
		}
		serve(p2, "two:")
		serve(p3, "three:")

		big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16 000 bytes
		var last chunking.Progress
		reply, st, err := gw.Request(t.Context(), 2, big, chunking.WithProgress(func(p chunking.Progress) { last = p }))
		if err != nil {
			t.Fatal(err)
		}
		if want := "two:" + string(big[:20]); string(reply) != want {
			t.Fatalf("got %q, want %q", reply, want)
		}
		t.Logf("16 000 B at 20 %% loss: %+v", st)
		if last.Acked != len(big) || last.Total != len(big) {
			t.Errorf("last progress %+v, want all %d bytes acknowledged", last, len(big))
		}
		if st.Frames < 66 || st.Airtime < 20*time.Second || st.Latency < st.Airtime/2 || st.RSSI == 0 {
			t.Errorf("implausible stats %+v", st)
		}

		// Two peers at once, from two goroutines.
		errs := make(chan error, 2)
		for _, to := range []chunking.Addr{2, 3} {
			go func() {
				r, _, err := gw.Request(t.Context(), to, []byte(fmt.Sprintf("hello %d", to)))
				if err == nil && !bytes.HasSuffix(r, []byte(fmt.Sprintf("hello %d", to))) {
					err = fmt.Errorf("peer %d: reply %q", to, r)
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}

		_, _, err = gw.Request(t.Context(), 3, []byte("fail"))
		var re *chunking.RemoteError
		if !errors.As(err, &re) || re.Msg != "no model" {
			t.Fatalf("got %v, want the handler's error", err)
		}
		if got := calls.Load(); got != 4 {
			t.Errorf("handlers ran %d times, want 4", got)
		}
	})
}

func TestLinkContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(nil)
		a, _ := newLink(t, air, 1, 2)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		// Nobody at address 2.
		_, _, err := a.Request(ctx, 2, []byte("anyone?"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
	})
}

func TestLinkClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(nil)
		a, _ := newLink(t, air, 1, 2)
		done := make(chan error)
		go func() {
			_, _, err := a.Request(t.Context(), 2, []byte("x"))
			done <- err
		}()
		time.Sleep(time.Second)
		a.Close()
		if err := <-done; !errors.Is(err, chunking.ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
		if err := a.Serve(t.Context(), nil); !errors.Is(err, chunking.ErrClosed) {
			t.Fatalf("Serve after Close: got %v", err)
		}
	})
}

// TestLinkDwell: a frame over the US915 400 ms dwell limit never leaves;
// the link sizes its frames from the radio's MTU.
func TestLinkDwell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 9}})
		a, ra := newLink(t, air, 1, 2)
		b, _ := newLink(t, air, 2, 1)
		if ra.MTU() >= 255 {
			t.Fatalf("MTU %d at SF9 under US915 dwell, want < 255", ra.MTU())
		}
		go b.Serve(t.Context(), func(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return req, nil })
		msg := bytes.Repeat([]byte{7}, 2000)
		got, _, err := a.Request(t.Context(), 2, msg)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
	})
}

var _ radio.Radio = (*sim.Radio)(nil)

// refusingRadio refuses its first sends, as a radio out of duty-cycle
// budget does.
type refusingRadio struct {
	radio.Radio
	refuse atomic.Int32
}

func (r *refusingRadio) Send(ctx context.Context, p []byte) error {
	if r.refuse.Add(-1) >= 0 {
		return radio.ErrDutyCycle
	}
	return r.Radio.Send(ctx, p)
}

func TestLinkRadioRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(nil)
		ra, _ := air.NewRadio(&sim.RadioOpts{Name: "a"})
		rb, _ := air.NewRadio(&sim.RadioOpts{Name: "b"})
		defer ra.Close()
		defer rb.Close()
		wa := &refusingRadio{Radio: ra}
		wa.refuse.Store(3)
		a, err := chunking.New(wa, 1, psk, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, _ := chunking.New(rb, 2, psk, nil)
		defer b.Close()
		go b.Serve(t.Context(), func(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return req, nil })
		start := time.Now()
		got, _, err := a.Request(t.Context(), 2, bytes.Repeat([]byte{1}, 1000))
		if err != nil || len(got) != 1000 {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
		if time.Since(start) < 10*time.Second {
			t.Errorf("took %v: the link did not pause after a duty-cycle refusal", time.Since(start))
		}
	})
}

func TestLinkFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(nil)
		a, _ := newLink(t, air, 1, 2)
		b, _ := newLink(t, air, 2, 1)
		go b.Serve(t.Context(), func(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return req, nil })
		if _, _, err := a.Request(t.Context(), 2, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		// The final RACK may still be queued or on the air.
		if err := a.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		sent := a.Stats().Sent
		if sent != 2 {
			t.Fatalf("sent %d frames by Flush's return, want request and RACK", sent)
		}
		if a.Overhead() != 12 {
			t.Errorf("overhead %d, want 12", a.Overhead())
		}
	})
}

// TestLinkBackToBack: requests issued as soon as the previous reply is in
// cost their airtime and one turnaround, like an isolated request: the
// request acknowledges the previous reply, and neither side waits for a
// RACK, a back-off or an old listen window. Short requests end before the
// replier's RPOLL timer, long ones after it.
func TestLinkBackToBack(t *testing.T) {
	for _, size := range []int{10, 101, 236} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}})
				if err != nil {
					t.Fatal(err)
				}
				a, _ := newLink(t, air, 1, 2)
				b, _ := newLink(t, air, 2, 1)
				go b.Serve(t.Context(), func(context.Context, chunking.Addr, []byte) ([]byte, error) { return []byte("12345678"), nil })
				for i := range 6 {
					start := time.Now()
					_, st, err := a.Request(t.Context(), 2, make([]byte, size))
					if err != nil {
						t.Fatal(err)
					}
					if over := time.Since(start) - st.Airtime; over != 10*time.Millisecond || st.Frames != 1 {
						t.Errorf("request %d: %v over its airtime %v, %d frames; want the 10 ms turnaround, 1 frame", i, over, st.Airtime, st.Frames)
					}
				}
			})
		})
	}
}

// busyRadio reports the channel busy for its first few carrier-sense
// checks, as a radio does while a station out of range of everyone else
// (or one that left mid-frame) transmits: nothing is received afterwards.
// Each busy check takes slow (a channel-activity scan takes time, and a
// loaded board may deschedule the loop).
type busyRadio struct {
	*sim.Radio
	busy atomic.Int32
	slow time.Duration
}

func (r *busyRadio) ChannelBusy(ctx context.Context) (bool, error) {
	if r.busy.Add(-1) >= 0 {
		time.Sleep(r.slow)
		return true, nil
	}
	return r.Radio.ChannelBusy(ctx)
}

// TestLinkBackoffWithoutTraffic: a fresh link whose first carrier-sense
// checks find the channel busy backs off; with no frame received to wake
// it, it must still transmit when the back-off ends, not an hour later,
// also when the back-off has already ended by the time a slow check
// returns.
func TestLinkBackoffWithoutTraffic(t *testing.T) {
	for _, slow := range []time.Duration{0, 5 * time.Second} {
		t.Run("check="+slow.String(), func(t *testing.T) { testBackoffWithoutTraffic(t, slow) })
	}
}

func testBackoffWithoutTraffic(t *testing.T, slow time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		air, err := sim.NewAir(&sim.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := air.NewRadio(&sim.RadioOpts{Name: "1", Region: lora.US915})
		if err != nil {
			t.Fatal(err)
		}
		br := &busyRadio{Radio: r, slow: slow}
		br.busy.Store(2)
		gw, err := chunking.New(br, 1, psk, &chunking.Opts{EngineOpts: chunking.EngineOpts{Peers: []chunking.Addr{2}, Seed: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { gw.Close(); r.Close() }()
		p2, _ := newLink(t, air, 2, 1)
		go p2.Serve(t.Context(), func(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) { return req, nil })

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		synctest.Wait() // the link's loop is idle, waiting for work
		start := time.Now()
		reply, _, err := gw.Request(ctx, 2, []byte("anyone there?"))
		if err != nil || string(reply) != "anyone there?" {
			t.Fatalf("request after a busy channel: %q, %v", reply, err)
		}
		if br.busy.Load() >= 0 {
			t.Errorf("carrier sense was not consulted twice (%d checks left)", br.busy.Load()+1)
		}
		if d := time.Since(start); d > 2*slow+3*time.Second {
			t.Errorf("answered after %v", d)
		}
	})
}

// TestLinkBusy: a request that finds the backlog full fails at once with
// ErrPeerBusy, not after the caller's deadline.
func TestLinkBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, _ := sim.NewAir(nil)
		gw, _ := newLink(t, air, 1, 2)
		r, err := air.NewRadio(&sim.RadioOpts{Name: "2", Region: lora.US915})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// Nobody serves the peer: its one backlog slot stays taken.
		p, err := chunking.New(r, 2, psk, &chunking.Opts{Backlog: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, _, err := gw.Request(ctx, 2, []byte("first")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first request: got %v, want the deadline", err)
		}
		start := time.Now()
		_, _, err = gw.Request(t.Context(), 2, []byte("second"))
		if !errors.Is(err, chunking.ErrPeerBusy) || errors.Is(err, chunking.ErrHandler) {
			t.Fatalf("second request: got %v, want ErrPeerBusy", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("busy after %v, want within an exchange's airtime", d)
		}
	})
}
