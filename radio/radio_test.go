package radio

import (
	"context"
	"errors"
	"testing"
)

func TestNextFrame(t *testing.T) {
	rx := make(chan Frame, 1)
	done := make(chan struct{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	rx <- Frame{Payload: []byte("queued")}
	close(done)
	// A frame already heard is returned even though ctx ended and the radio closed.
	if f, err := NextFrame(cancelled, rx, done); err != nil || string(f.Payload) != "queued" {
		t.Fatalf("got %q %v, want the queued frame", f.Payload, err)
	}
	if _, err := NextFrame(context.Background(), rx, done); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed radio: got %v, want ErrClosed", err)
	}
	if _, err := NextFrame(cancelled, rx, make(chan struct{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v, want context.Canceled", err)
	}
}
