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
	"github.com/nexfield/nexfield/radio/sim"
)

// droppingRadio loses the next frames it is asked to send, as a collision
// with a station that cannot sense the channel would.
type droppingRadio struct {
	*sim.Radio
	drop atomic.Int32
}

func (r *droppingRadio) Send(ctx context.Context, p []byte) error {
	if r.drop.Add(-1) >= 0 {
		return nil
	}
	r.drop.Store(0)
	return r.Radio.Send(ctx, p)
}

// deaf hides a radio's carrier sense, as a UART module that transmits
// whenever it is told to: the link then runs without listen-before-talk.
type deaf struct {
	radio.Radio
	radio.Airtimer
}

// station is a link over a radio on air; with carrierSense false the link
// cannot sense the channel. Both close when the test ends.
func station(t *testing.T, air *sim.Air, addr chunking.Addr, carrierSense bool) (*chunking.Link, *droppingRadio) {
	t.Helper()
	r, err := air.NewRadio(&sim.RadioOpts{Name: fmt.Sprint(addr)})
	if err != nil {
		t.Fatal(err)
	}
	dr := &droppingRadio{Radio: r}
	var rr radio.Radio = dr
	if !carrierSense {
		rr = deaf{dr, dr}
	}
	l, err := chunking.New(rr, addr, psk, &chunking.Opts{EngineOpts: chunking.EngineOpts{Seed: uint64(addr)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		r.Close()
	})
	return l, dr
}

func echo(_ context.Context, _ chunking.Addr, req []byte) ([]byte, error) {
	return append([]byte("re: "), req...), nil
}

// TestDrainAnswersPeerThatMissedTheFinalRack: a station stops right after
// an exchange whose final RACK is lost. After Flush alone the peer asks for
// it again and again (each ask deafens its half-duplex radio to whoever
// else talks to it); after Drain the RACK has been repeated and the peer
// is silent.
func TestDrainAnswersPeerThatMissedTheFinalRack(t *testing.T) {
	for _, tc := range []struct {
		name                string
		drain, carrierSense bool
	}{
		{"flush/deaf", false, false},
		{"drain/deaf", true, false},
		{"flush/carrier sense", false, true},
		{"drain/carrier sense", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				air, err := sim.NewAir(nil)
				if err != nil {
					t.Fatal(err)
				}
				gw, gr := station(t, air, 1, tc.carrierSense)
				peer, _ := station(t, air, 2, tc.carrierSense)
				go peer.Serve(t.Context(), echo)
				got, _, err := gw.Request(t.Context(), 2, []byte("status?"))
				if err != nil || string(got) != "re: status?" {
					t.Fatalf("request: %q, %v", got, err)
				}
				gr.drop.Store(1) // the final RACK, held back by the RACK delay
				stop, cancel := context.WithTimeout(t.Context(), 3500*time.Millisecond)
				defer cancel()
				if tc.drain {
					err = gw.Drain(stop)
				} else {
					err = gw.Flush(stop)
				}
				if err != nil {
					t.Fatal(err)
				}
				if gr.drop.Load() != 0 {
					t.Fatal("the final RACK was never sent")
				}
				gw.Close()
				before := peer.Stats().Sent
				time.Sleep(5 * time.Minute) // virtual: the peer's whole retry budget
				synctest.Wait()
				asked := peer.Stats().Sent - before
				t.Logf("peer frames after the station left: %d", asked)
				if tc.drain && asked != 0 {
					t.Errorf("peer sent %d frames after the station left: it is still asking for the RACK", asked)
				}
				if !tc.drain && asked < 8 {
					t.Errorf("peer sent only %d frames after the station left: the lost RACK is not reproduced", asked)
				}
			})
		})
	}
}

// TestDrainBounded: Drain returns at once when no peer can be waiting, and
// after a clean exchange once the peer's retry timers have run out, long
// before its context's deadline.
func TestDrainBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, err := sim.NewAir(nil)
		if err != nil {
			t.Fatal(err)
		}
		gw, _ := station(t, air, 1, false)
		peer, _ := station(t, air, 2, false)
		go peer.Serve(t.Context(), echo)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()

		start := time.Now()
		if err := gw.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Drain on an idle link took %v, want no wait", d)
		}

		if _, _, err := gw.Request(ctx, 2, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if err := gw.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if sent := gw.Stats().Sent; sent != 2 {
			t.Errorf("sent %d frames by Drain's return, want request and RACK", sent)
		}
		if d < time.Second || d > 5*time.Second {
			t.Errorf("Drain after an exchange took %v, want the peer's retry timers: 1-5 s at SF7/BW125", d)
		}
	})
}

// TestDrainWaitsForReply: a peer that drains while its reply is on the
// air returns only once the requester has all of it.
func TestDrainWaitsForReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		air, err := sim.NewAir(&sim.Opts{Channel: sim.Channel{Loss: 0.2}, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		gw, _ := station(t, air, 1, true)
		peer, _ := station(t, air, 2, true)
		answered := make(chan struct{})
		long := bytes.Repeat([]byte("reply "), 500) // 3 KB: about 13 frames
		go peer.Serve(t.Context(), func(context.Context, chunking.Addr, []byte) ([]byte, error) {
			defer close(answered)
			return long, nil
		})
		done := make(chan error, 1)
		go func() {
			got, _, err := gw.Request(t.Context(), 2, []byte("tell me everything"))
			if err == nil && !bytes.Equal(got, long) {
				err = errors.New("reply does not match")
			}
			done <- err
		}()
		<-answered
		if err := peer.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Drain returned before the requester had the reply")
		}
	})
}
