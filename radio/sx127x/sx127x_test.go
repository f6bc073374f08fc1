package sx127x_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sx127x"
	"github.com/nexfield/nexfield/radio/sx127x/sx127xsim"
)

func noRules(t *testing.T) *lora.Regulator {
	r, err := lora.NewRegulator(lora.RegionNone, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sent collects what the emulated chip put on air.
type sent struct {
	mu     sync.Mutex
	frames [][]byte
}

func (s *sent) add(p []byte) {
	s.mu.Lock()
	s.frames = append(s.frames, bytes.Clone(p))
	s.mu.Unlock()
}

func (s *sent) all() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

func setup(t *testing.T, co *sx127xsim.Opts, o *sx127x.Opts) (*sx127xsim.Chip, *sx127x.Dev, *sent) {
	t.Helper()
	var tx sent
	var c sx127xsim.Opts
	if co != nil {
		c = *co
	}
	c.OnTransmit = tx.add
	chip := sx127xsim.New(&c)
	t.Cleanup(func() { chip.Close() })
	d, err := sx127x.New(chip, chip.Reset(), chip.DIO0(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Halt() })
	return chip, d, &tx
}

func TestFrf(t *testing.T) {
	for _, tc := range []struct {
		hz   int
		want uint32
	}{
		{915_000_000, 0xE4C000}, // docs/radio-notes.md §3.3
		{868_100_000, 0xD90666},
		{902_300_000, 0xE19333},
	} {
		if got := sx127x.Frf(tc.hz); got != tc.want {
			t.Errorf("Frf(%d) = 0x%06X, want 0x%06X", tc.hz, got, tc.want)
		}
	}
}

func TestNewConfiguresChip(t *testing.T) {
	for _, tc := range []struct {
		name           string
		o              sx127x.Opts
		mc1, mc2, mc3  byte
		pa, dac        byte
		freq, preamble int
	}{
		{"defaults", sx127x.Opts{}, 0x72, 0x74, 0x04, 0xFF, 0x84, 915_000_000, 8},
		{"SF12/125 LDRO, 4/8, +20 dBm", sx127x.Opts{Params: lora.Params{SpreadingFactor: 12, CodingRate: 4, PreambleSymbols: 12}, PowerDBm: 20, Regulator: noRules(t)},
			0x78, 0xC4, 0x0C, 0xFF, 0x87, 915_000_000, 12},
		{"SF9/500 no CRC, 10 dBm, 903.9 MHz", sx127x.Opts{FrequencyHz: 903_900_000, Params: lora.Params{SpreadingFactor: 9, BandwidthHz: 500000, NoCRC: true}, PowerDBm: 10},
			0x92, 0x90, 0x04, 0xF8, 0x84, 903_900_000, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip, d, _ := setup(t, nil, &tc.o)
				got := []byte{chip.Reg(0x1D), chip.Reg(0x1E), chip.Reg(0x26), chip.Reg(0x09), chip.Reg(0x4D)}
				want := []byte{tc.mc1, tc.mc2, tc.mc3, tc.pa, tc.dac}
				if !bytes.Equal(got, want) {
					t.Errorf("ModemConfig1/2/3, PaConfig, PaDac = % X, want % X", got, want)
				}
				if f := chip.FrequencyHz(); math.Abs(float64(f-tc.freq)) > 61 {
					t.Errorf("frequency %d Hz, want %d", f, tc.freq)
				}
				if p := chip.Params(); p.PreambleSymbols != tc.preamble {
					t.Errorf("preamble %d, want %d", p.PreambleSymbols, tc.preamble)
				}
				if chip.Reg(0x39) != 0x12 {
					t.Errorf("sync word 0x%02X", chip.Reg(0x39))
				}
				if mode, lora := chip.Mode(); mode != 5 || !lora {
					t.Errorf("mode %d lora %v, want RX continuous in LoRa mode", mode, lora)
				}
				if chip.Reg(0x40)>>6 != 0 {
					t.Errorf("DIO0 not mapped to RxDone")
				}
				if chip.Resets() != 1 {
					t.Errorf("%d resets, want 1", chip.Resets())
				}
				if !strings.Contains(d.String(), "sx127xsim") {
					t.Errorf("String() = %q", d.String())
				}
				if at := d.Airtime(d.MTU()); tc.o.Regulator == nil && at > lora.USDwell && chip.Params().BandwidthHz < 500000 {
					t.Errorf("MTU %d lasts %v, over the dwell limit", d.MTU(), at)
				}
			})
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version byte
		o       sx127x.Opts
		noDIO0  bool
		is      error
		want    string
	}{
		{"SX1272 version", 0x22, sx127x.Opts{}, false, radio.ErrNoDevice, "0x22"},
		{"nothing on the bus (MISO pulled up)", 0xFF, sx127x.Opts{}, false, radio.ErrNoDevice, "no chip answering"},
		{"no DIO0", 0, sx127x.Opts{}, true, sx127x.ErrInvalidOpts, "DIO0"},
		{"SF6", 0, sx127x.Opts{Params: lora.Params{SpreadingFactor: 6}}, false, sx127x.ErrInvalidOpts, "SF6"},
		{"power 21", 0, sx127x.Opts{PowerDBm: 21}, false, sx127x.ErrInvalidOpts, "21 dBm"},
		{"433 MHz", 0, sx127x.Opts{FrequencyHz: 433_000_000}, false, sx127x.ErrInvalidOpts, "433000000"},
		{"SF12/125 under US915", 0, sx127x.Opts{Params: lora.Params{SpreadingFactor: 12}}, false, sx127x.ErrInvalidOpts, "dwell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip := sx127xsim.New(&sx127xsim.Opts{Version: tc.version})
				defer chip.Close()
				dio0 := chip.DIO0()
				if tc.noDIO0 {
					dio0 = nil
				}
				d, err := sx127x.New(chip, chip.Reset(), dio0, &tc.o)
				if err == nil {
					d.Halt()
					t.Fatal("accepted")
				}
				if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want %v mentioning %q", err, tc.is, tc.want)
				}
			})
		})
	}
}

func TestSendWaitsForTxDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip, d, tx := setup(t, nil, nil)
		payload := []byte("hello, field\x00\r\n")
		start := time.Now()
		if err := d.Send(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
		if el, toa := time.Since(start), d.Airtime(len(payload)); el != toa {
			t.Errorf("Send took %v, want exactly the time on air %v", el, toa)
		}
		if got := tx.all(); len(got) != 1 || !bytes.Equal(got[0], payload) {
			t.Fatalf("on air: %q", got)
		}
		if mode, _ := chip.Mode(); mode != 5 || chip.Reg(0x40)>>6 != 0 {
			t.Errorf("after TX: mode %d, DIO0 map %d; want RX continuous, RxDone", mode, chip.Reg(0x40)>>6)
		}
		if err := d.Send(context.Background(), make([]byte, d.MTU()+1)); !errors.Is(err, radio.ErrFrameTooLarge) {
			t.Errorf("oversize: %v", err)
		}
		if d.Stats().Sent != 1 {
			t.Errorf("stats %+v", d.Stats())
		}
	})
}

func TestDwellAndDutyCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// SF10/125: 24 bytes fit in 400 ms (docs/radio-notes.md §1.2).
		_, d, _ := setup(t, nil, &sx127x.Opts{Params: lora.Params{SpreadingFactor: 10}})
		if d.MTU() != 24 {
			t.Fatalf("MTU %d, want 24", d.MTU())
		}
	})
	synctest.Test(t, func(t *testing.T) {
		reg, _ := lora.NewRegulator(lora.EU868, &lora.RegulatorOpts{FrequencyHz: 868_100_000, Window: 10 * time.Second})
		_, d, tx := setup(t, nil, &sx127x.Opts{FrequencyHz: 868_100_000, Regulator: reg})
		// 1 % of 10 s is 100 ms: two 41 ms frames fit, the third does not.
		for i := 0; i < 2; i++ {
			if err := d.Send(context.Background(), make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Send(context.Background(), make([]byte, 10)); !errors.Is(err, radio.ErrDutyCycle) {
			t.Fatalf("third frame: %v, want ErrDutyCycle", err)
		}
		if n := len(tx.all()); n != 2 {
			t.Fatalf("%d frames on air, want 2", n)
		}
	})
}

func TestReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip, d, _ := setup(t, nil, nil)
		for _, p := range []sx127xsim.Packet{
			{Payload: []byte("strong"), RSSI: -60, SNR: 9.5},
			{Payload: []byte("corrupted"), RSSI: -100, SNR: -3, CRCError: true},
			{Payload: []byte("weak"), RSSI: -118, SNR: -7.25},
		} {
			if !chip.Deliver(p) {
				t.Fatalf("chip not receiving")
			}
			synctest.Wait()
		}
		for _, want := range []sx127xsim.Packet{
			{Payload: []byte("strong"), RSSI: -60, SNR: 9.5},
			{Payload: []byte("weak"), RSSI: -118, SNR: -7.25},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f, err := d.Receive(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Payload, want.Payload) || math.Abs(f.RSSI-want.RSSI) > 1 || f.SNR != want.SNR {
				t.Errorf("got %q %v dBm %v dB, want %q %v dBm %v dB", f.Payload, f.RSSI, f.SNR, want.Payload, want.RSSI, want.SNR)
			}
		}
		if s := d.Stats(); s.CRCErrors != 1 || s.Received != 2 {
			t.Errorf("stats %+v, want 1 CRC error and 2 received", s)
		}
	})
}

func TestDeadDIO0FallsBackToPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip, d, tx := setup(t, nil, nil)
		chip.SetDIO0Dead(true)
		start := time.Now()
		if err := d.Send(context.Background(), []byte("no edge")); err != nil {
			t.Fatalf("Send with a dead DIO0: %v", err)
		}
		toa := d.Airtime(7)
		if el := time.Since(start); el > toa+toa/2+50*time.Millisecond || el < toa {
			t.Errorf("Send took %v for a %v frame", el, toa)
		}
		if s := d.Stats(); s.MissedEdges != 1 || len(tx.all()) != 1 {
			t.Fatalf("stats %+v, %d frames on air", s, len(tx.all()))
		}
		// Reception continues by polling.
		chip.Deliver(sx127xsim.Packet{Payload: []byte("polled"), RSSI: -70, SNR: 5})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f, err := d.Receive(ctx)
		if err != nil || string(f.Payload) != "polled" {
			t.Fatalf("got %q, %v", f.Payload, err)
		}
		// And the next transmission does not wait for the timeout.
		start = time.Now()
		if err := d.Send(context.Background(), []byte("again")); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > d.Airtime(5)+25*time.Millisecond {
			t.Errorf("polled Send took %v", el)
		}
	})
}

func TestStuckTransmitterIsReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip, d, tx := setup(t, nil, &sx127x.Opts{Params: lora.Params{SpreadingFactor: 9}, PowerDBm: 14})
		before := []byte{chip.Reg(0x1D), chip.Reg(0x1E), chip.Reg(0x09), chip.Reg(0x06)}
		chip.SetTxStuck(true)
		start := time.Now()
		err := d.Send(context.Background(), []byte("stuck"))
		if !errors.Is(err, radio.ErrTimeout) || !strings.Contains(err.Error(), "radio reset") {
			t.Fatalf("got %v, want ErrTimeout after a reset", err)
		}
		toa := d.Airtime(5)
		if el := time.Since(start); el < toa || el > toa+toa/2+50*time.Millisecond+10*time.Millisecond {
			t.Errorf("gave up after %v for a %v frame", el, toa)
		}
		if chip.Resets() != 2 || d.Stats().Recoveries != 1 {
			t.Fatalf("resets %d recoveries %d", chip.Resets(), d.Stats().Recoveries)
		}
		after := []byte{chip.Reg(0x1D), chip.Reg(0x1E), chip.Reg(0x09), chip.Reg(0x06)}
		if !bytes.Equal(before, after) {
			t.Fatalf("configuration after reset % X, want % X", after, before)
		}
		// The reset cleared the fault: the radio works again.
		if err := d.Send(context.Background(), []byte("ok now")); err != nil {
			t.Fatal(err)
		}
		if got := tx.all(); len(got) != 1 || string(got[0]) != "ok now" {
			t.Fatalf("on air: %q", got)
		}
	})
}

func TestContextHaltAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip, d, tx := setup(t, nil, &sx127x.Opts{Params: lora.Params{SpreadingFactor: 9}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := d.Send(ctx, make([]byte, 20)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
		synctest.Wait()
		time.Sleep(time.Second)
		if len(tx.all()) != 0 {
			t.Fatal("an aborted transmission completed")
		}
		if mode, _ := chip.Mode(); mode != 5 {
			t.Fatalf("mode %d after abort, want RX continuous", mode)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := d.Receive(context.Background())
			errc <- err
		}()
		synctest.Wait()
		if err := d.Halt(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, radio.ErrClosed) {
			t.Fatalf("pending Receive: %v", err)
		}
		if mode, _ := chip.Mode(); mode != 0 {
			t.Fatalf("mode %d after Halt, want sleep", mode)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Send(context.Background(), []byte("x")); !errors.Is(err, radio.ErrClosed) {
			t.Fatalf("Send after Halt: %v", err)
		}
	})
}

func TestTwoChipsOverTheAir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newLink()
		ca := sx127xsim.New(&sx127xsim.Opts{Air: a, Name: "SPI0.0"})
		cb := sx127xsim.New(&sx127xsim.Opts{Air: b, Name: "SPI0.1"})
		defer ca.Close()
		defer cb.Close()
		da, err := sx127x.New(ca, ca.Reset(), ca.DIO0(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer da.Halt()
		db, err := sx127x.New(cb, cb.Reset(), cb.DIO0(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Halt()
		if err := da.Send(context.Background(), []byte("ping")); err != nil {
			t.Fatal(err)
		}
		f, err := db.Receive(context.Background())
		if err != nil || string(f.Payload) != "ping" || math.Abs(f.RSSI+50) > 1 || f.SNR != 8 {
			t.Fatalf("got %q %v %v, %v", f.Payload, f.RSSI, f.SNR, err)
		}
	})
}

// link is a two-ended lossless air for the chip emulators.
type link struct {
	in, out chan []byte
	done    chan struct{}
	once    sync.Once
}

func newLink() (*link, *link) {
	ab, ba := make(chan []byte, 8), make(chan []byte, 8)
	return &link{in: ba, out: ab, done: make(chan struct{})}, &link{in: ab, out: ba, done: make(chan struct{})}
}

func (l *link) Send(ctx context.Context, p []byte) error {
	select {
	case l.out <- bytes.Clone(p):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *link) Receive(ctx context.Context) (radio.Frame, error) {
	select {
	case p := <-l.in:
		return radio.Frame{Payload: p, RSSI: -50, SNR: 8, Time: time.Now()}, nil
	case <-ctx.Done():
		return radio.Frame{}, ctx.Err()
	case <-l.done:
		return radio.Frame{}, radio.ErrClosed
	}
}

func (l *link) MTU() int     { return 255 }
func (l *link) Close() error { l.once.Do(func() { close(l.done) }); return nil }
