package chunking

import (
	"errors"
	"testing"
	"time"
)

// TestErrorClasses: every way a peer fails an exchange belongs to exactly
// one class, which errors.Is tells apart.
func TestErrorClasses(t *testing.T) {
	classes := []error{ErrUnreachable, ErrPeerBusy, ErrRefused, ErrHandler}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no ack", ErrNoAck, ErrUnreachable},
		{"restarted", refusal(refuseStale), ErrRefused},
		{"too large", refusal(refuseTooLarge), ErrRefused},
		{"corrupt", refusal(refuseCorrupt), ErrRefused},
		{"out of buffer", refusal(refuseBusy), ErrPeerBusy},
		{"backlog", refusal(refuseBacklog), ErrPeerBusy},
		{"handler code", &RemoteError{Code: CodeHandler, Msg: "model not loaded"}, ErrHandler},
		{"busy code", &RemoteError{Code: CodeBusy, Msg: "later"}, ErrPeerBusy},
		{"refused code", &RemoteError{Code: CodeRefused, Msg: "no"}, ErrRefused},
		{"unknown code", &RemoteError{Code: 99, Msg: "?"}, ErrHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range classes {
				if got := errors.Is(tc.err, c); got != (c == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, c, got, c == tc.want)
				}
			}
		})
	}
	if !errors.Is(refusal(refuseTooLarge), ErrTooLarge) {
		t.Error("a refusal for size is not ErrTooLarge")
	}
}

// TestBusy: a request the receiver has no room for fails at once with
// ErrPeerBusy, also when the first REFUSE is lost (the sender's POLL gets
// it again), and the receiver takes the request when it is sent again.
func TestBusy(t *testing.T) {
	for _, lose := range []int{0, 1, 2} {
		n := newVnet(t, 0, 1)
		a, b := n.add(1, nil), n.add(2, nil)
		b.onRequest = func(ev Event) ([]byte, bool) {
			if err := b.e.Busy(n.now, ev.ID); err != nil {
				t.Fatal(err)
			}
			return nil, false
		}
		lost := 0
		n.drop = func(from Addr, f []byte) bool {
			if from == 2 && frameKind(t, f) == "refuse" && lost < lose {
				lost++
				return true
			}
			return false
		}
		a.e.Send(n.now, 2, []byte("hello"), false)
		n.run(time.Hour)
		f := a.find(EventFailed)
		if len(f) != 1 || !errors.Is(f[0].Err, ErrPeerBusy) || errors.Is(f[0].Err, ErrRefused) {
			t.Fatalf("%d REFUSEs lost: got %+v, want ErrPeerBusy only", lose, f)
		}
		if d := f[0].Stats.Latency; d > time.Duration(lose+1)*2*time.Second {
			t.Errorf("%d REFUSEs lost: busy after %v, want a POLL round per loss", lose, d)
		}
		exchange(t, n, a, b, []byte("hello again"))
	}
	e, _ := NewEngine(1, testPSK, nil)
	if err := e.Busy(time.Unix(1e9, 0), 42); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("Busy on no request: got %v, want ErrUnknownMessage", err)
	}
}
