package main

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
)

// lossyRadio loses the next dropNext frames it is asked to send, as a
// collision with a radio that cannot sense the channel would.
type lossyRadio struct {
	radio.Radio
	dropNext atomic.Int32
}

func (r *lossyRadio) Send(ctx context.Context, p []byte) error {
	if r.dropNext.Add(-1) >= 0 {
		return nil
	}
	r.dropNext.Store(0)
	return r.Radio.Send(ctx, p)
}

// TestLingerAnswersPeerThatMissedTheFinalRack: a relay stops right after an
// exchange and its final RACK is lost. Without lingering the peer asks for
// it again and again (each ask deafens its half-duplex radio to whoever
// else talks to it); with linger the relay repeats the RACK and the peer
// falls silent.
func TestLingerAnswersPeerThatMissedTheFinalRack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		linger bool
	}{{"flush only", false}, {"linger", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ether := rylrsim.NewEther()
				ra := &lossyRadio{Radio: ether.Radio()}
				rb := ether.Radio()
				defer ra.Close()
				defer rb.Close()
				psk := bytes.Repeat([]byte{0x5a}, 16)
				relayLink, err := chunking.New(ra, 1, psk, nil)
				if err != nil {
					t.Fatal(err)
				}
				peerLink, err := chunking.New(rb, 2, psk, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer peerLink.Close()
				go peerLink.Serve(ctx, func(ctx context.Context, from chunking.Addr, req []byte) ([]byte, error) {
					return append([]byte("re: "), req...), nil
				})
				got, _, err := relayLink.Request(ctx, 2, []byte("status?"))
				if err != nil || string(got) != "re: status?" {
					t.Fatalf("request: %q, %v", got, err)
				}
				ra.dropNext.Store(1) // the final RACK, held back by the RACK delay
				stop, cancelStop := context.WithTimeout(ctx, 3500*time.Millisecond)
				defer cancelStop()
				if tc.linger {
					err = linger(stop, relayLink, 1500*time.Millisecond)
				} else {
					err = relayLink.Flush(stop)
				}
				if err != nil {
					t.Fatal(err)
				}
				if ra.dropNext.Load() != 0 {
					t.Fatal("the final RACK was never sent")
				}
				relayLink.Close()
				before := peerLink.Stats().Sent
				time.Sleep(5 * time.Minute) // virtual: the peer's whole retry budget
				synctest.Wait()
				asked := peerLink.Stats().Sent - before
				t.Logf("peer frames after the relay left: %d", asked)
				if tc.linger && asked != 0 {
					t.Errorf("peer sent %d frames after the relay left: it is still asking for the RACK", asked)
				}
				if !tc.linger && asked < 8 {
					t.Errorf("peer sent only %d frames after the relay left: the lost RACK is not reproduced", asked)
				}
			})
		})
	}
}
