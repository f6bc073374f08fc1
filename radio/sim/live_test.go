package sim

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

func mkAir(t *testing.T, o *Opts) *Air {
	t.Helper()
	a, err := NewAir(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newRadioOn(t *testing.T, a *Air, o *RadioOpts) *Radio {
	t.Helper()
	r, err := a.NewRadio(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestAirSendReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mkAir(t, nil)
		x := newRadioOn(t, a, &RadioOpts{Name: "x"})
		y := newRadioOn(t, a, &RadioOpts{Name: "y", RSSI: -70, SNR: 9.5})
		ctx := t.Context()
		start := time.Now()
		if err := x.Send(ctx, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(start), x.Airtime(4); got != want {
			t.Errorf("Send took %v, want the airtime %v", got, want)
		}
		f, err := y.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Payload) != "ping" || f.RSSI != -70 || f.SNR != 9.5 {
			t.Errorf("got %+v", f)
		}
		if st := y.Stats(); st.Received != 1 {
			t.Errorf("stats %+v", st)
		}
		// The sender does not hear itself.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := x.Receive(rctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("sender received %v", err)
		}
	})
}

func TestAirCollisionAndCarrierSense(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mkAir(t, nil)
		x := newRadioOn(t, a, &RadioOpts{Name: "x"})
		y := newRadioOn(t, a, &RadioOpts{Name: "y"})
		z := newRadioOn(t, a, &RadioOpts{Name: "z"})
		ctx := t.Context()
		done := make(chan error, 2)
		go func() { done <- x.Send(ctx, make([]byte, 100)) }()
		synctest.Wait()
		busy, err := z.ChannelBusy(ctx)
		if err != nil || !busy {
			t.Errorf("z sees busy=%v err=%v during x's frame", busy, err)
		}
		time.Sleep(20 * time.Millisecond)
		go func() { done <- y.Send(ctx, make([]byte, 100)) }()
		<-done
		<-done
		time.Sleep(time.Second)
		if st := z.Stats(); st.Collided != 2 || st.Received != 0 {
			t.Errorf("z stats %+v, want 2 collided", st)
		}
		if busy, _ := z.ChannelBusy(ctx); busy {
			t.Error("channel busy after both frames")
		}
	})
}

func TestAirRegion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mkAir(t, &Opts{Params: lora.Params{SpreadingFactor: 9}})
		us := newRadioOn(t, a, &RadioOpts{Name: "us", Region: lora.US915})
		if us.MTU() != 66 {
			t.Errorf("SF9 US915 MTU %d, want 66", us.MTU())
		}
		if err := us.Send(t.Context(), make([]byte, 67)); !errors.Is(err, radio.ErrFrameTooLarge) {
			t.Errorf("got %v, want ErrFrameTooLarge", err)
		}
		// 0.1 % of an hour is 3.6 s: twelve 255-byte SF9 frames (1.25 s) do not fit.
		eu := newRadioOn(t, a, &RadioOpts{Name: "eu", Region: lora.EU868, FrequencyHz: 863_500_000})
		var err error
		sent := 0
		for ; sent < 10; sent++ {
			if err = eu.Send(t.Context(), make([]byte, 255)); err != nil {
				break
			}
		}
		if sent != 2 || !errors.Is(err, radio.ErrDutyCycle) {
			t.Errorf("sent %d then %v, want 2 then ErrDutyCycle", sent, err)
		}
		time.Sleep(time.Hour)
		if err := eu.Send(t.Context(), make([]byte, 255)); err != nil {
			t.Errorf("an hour later: %v", err)
		}
	})
}

func TestAirClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mkAir(t, nil)
		x := newRadioOn(t, a, nil)
		errc := make(chan error, 1)
		go func() { _, err := x.Receive(context.Background()); errc <- err }()
		synctest.Wait()
		x.Close()
		if err := <-errc; !errors.Is(err, radio.ErrClosed) {
			t.Errorf("Receive after Close: %v", err)
		}
		if err := x.Send(t.Context(), []byte{1}); !errors.Is(err, radio.ErrClosed) {
			t.Errorf("Send after Close: %v", err)
		}
		if err := x.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestUDPHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	h, err := ListenHub(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, err := DialUDP(ctx, h.Addr(), &RadioOpts{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := DialUDP(ctx, h.Addr(), &RadioOpts{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sent := make(chan error, 1)
	// A long frame (about 330 ms on the air) leaves time to see the busy notice.
	payload := append([]byte("over udp, 255 bytes max"), make([]byte, 180)...)
	go func() { sent <- a.Send(ctx, payload) }()
	// b learns from the hub that the channel is busy while a transmits.
	deadline := time.Now().Add(5 * time.Second)
	sawBusy := false
	for !sawBusy && time.Now().Before(deadline) {
		sawBusy, _ = b.ChannelBusy(ctx)
		if f, err := receiveWithin(ctx, b, time.Millisecond); err == nil {
			t.Fatalf("frame %q before the busy notice", f.Payload)
		}
	}
	if !sawBusy {
		t.Error("b never saw the channel busy")
	}
	f, err := receiveWithin(ctx, b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Payload) != string(payload) || f.RSSI != -90 || f.SNR != 7 {
		t.Errorf("got %+v", f)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if st, ok := h.Stats("b"); !ok || st.Received != 1 {
		t.Errorf("hub stats for b: %+v %v", st, ok)
	}
	if err := a.Send(ctx, make([]byte, 256)); !errors.Is(err, radio.ErrFrameTooLarge) {
		t.Errorf("256 bytes: %v", err)
	}
}

func TestUDPHubLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h, err := ListenHub(ctx, "127.0.0.1:0", &HubOpts{Opts: Opts{Channel: Channel{Loss: 1}, Params: lora.Params{BandwidthHz: 500000}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, _ := DialUDP(ctx, h.Addr(), &RadioOpts{Name: "a"})
	b, _ := DialUDP(ctx, h.Addr(), &RadioOpts{Name: "b"})
	if a == nil || b == nil {
		t.Fatal("dial failed")
	}
	defer a.Close()
	defer b.Close()
	if a.Params().BandwidthHz != 500000 {
		t.Errorf("radio did not take the hub's params: %v", a.Params())
	}
	for range 3 {
		if err := a.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
		// The radio times the airtime on its own clock and the hub on
		// its own; a datagram delayed on a loaded (or emulated) machine
		// would land inside the next frame's airtime at the hub, which
		// drops a frame sent while its sender still transmits.
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := receiveWithin(ctx, b, 300*time.Millisecond); err == nil {
		t.Error("frame through a channel with 100 % loss")
	}
	// Poll: the hub accounts each loss when the frame's airtime ends.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := h.Stats("b"); st.Lost == 3 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _ := h.Stats("b")
	t.Errorf("hub did not count 3 lost frames for b: %+v", st)
}

func receiveWithin(ctx context.Context, r *Radio, d time.Duration) (radio.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return r.Receive(ctx)
}

func TestDialUDPNoHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := DialUDP(ctx, "127.0.0.1:9", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
}

func TestAirCancelledSendKeepsFrameOnAir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mkAir(t, nil)
		x := newRadioOn(t, a, &RadioOpts{Name: "x"})
		y := newRadioOn(t, a, &RadioOpts{Name: "y"})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := x.Send(ctx, make([]byte, 200)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
		start := time.Now()
		// The next frame waits for the first to leave the antenna.
		if err := x.Send(t.Context(), []byte{2}); err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(start), x.Airtime(200)-50*time.Millisecond+x.Airtime(1); got != want {
			t.Errorf("second Send took %v, want %v", got, want)
		}
		for i, n := range []int{200, 1} {
			f, err := y.Receive(t.Context())
			if err != nil || len(f.Payload) != n {
				t.Fatalf("frame %d: %d bytes, %v", i, len(f.Payload), err)
			}
		}
	})
}

func TestUDPHubCollision(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	h, err := ListenHub(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var rs []*Radio
	for _, name := range []string{"a", "b", "c"} {
		r, err := DialUDP(ctx, h.Addr(), &RadioOpts{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, r)
	}
	// a and b start 255-byte frames (400 ms) within microseconds of each
	// other: c gets neither, and neither hears the other.
	errs := make(chan error, 2)
	for _, r := range rs[:2] {
		go func() { errs <- r.Send(ctx, make([]byte, 255)) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := h.Stats("c"); st.Collided == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := h.Stats("c"); st.Collided != 2 || st.Received != 0 {
		t.Errorf("c: %+v, want 2 collided", st)
	}
	for _, r := range rs {
		if _, err := receiveWithin(ctx, r, 100*time.Millisecond); err == nil {
			t.Errorf("%v received a frame", r)
		}
	}
}
