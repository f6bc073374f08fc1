package rylr_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
)

// fast are settings with ~10 ms frames so timing tests stay short.
var fast = lora.Params{SpreadingFactor: 7, BandwidthHz: 500000, CodingRate: 1, PreambleSymbols: 12}

func emulator(t *testing.T, o *rylrsim.Opts) *rylrsim.Module {
	t.Helper()
	m, err := rylrsim.New(o)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func open(t *testing.T, m *rylrsim.Module, o *rylr.Opts) *rylr.Dev {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := rylr.Open(ctx, m.Path(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls f until it holds or the deadline passes.
func eventually(t *testing.T, total time.Duration, f func() bool) bool {
	t.Helper()
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f()
}

func TestOpenProbesAndConfigures(t *testing.T) {
	m := emulator(t, nil)
	d := open(t, m, &rylr.Opts{Address: 7, NetworkID: 5, Params: lora.Params{SpreadingFactor: 8}, PowerDBm: 14})
	if d.Model() != rylr.RYLR998 || d.Version() != rylrsim.DefaultVersion || d.UID() == "" {
		t.Fatalf("got model %v version %q uid %q", d.Model(), d.Version(), d.UID())
	}
	want := rylrsim.Settings{Address: 7, NetworkID: 5, BandHz: 915_000_000, SF: 8, BWCode: 7, CR: 1, Preamble: 12, PowerDBm: 14, Baud: 115200}
	if got := m.Settings(); got != want {
		t.Fatalf("module settings %+v, want %+v", got, want)
	}
	if got := d.String(); !strings.Contains(got, "RYLR998") || !strings.Contains(got, m.Path()) {
		t.Errorf("String() = %q", got)
	}
	writes := m.Stats().FlashWrites
	if writes != 4 { // address, network id, parameter, power; band is already 915 MHz
		t.Errorf("%d settings written, want 4 (only those that differ)", writes)
	}
	// A second start finds everything in place and writes nothing.
	d.Close()
	d2 := open(t, m, &rylr.Opts{Address: 7, NetworkID: 5, Params: lora.Params{SpreadingFactor: 8}, PowerDBm: 14})
	_ = d2
	if got := m.Stats().FlashWrites; got != writes {
		t.Errorf("reopen wrote %d more settings, want 0", got-writes)
	}
}

func TestRefusesUnsupportedSettings(t *testing.T) {
	m := emulator(t, &rylrsim.Opts{Instant: true})
	for _, tc := range []struct {
		name string
		o    rylr.Opts
		want string
	}{
		{"SF10 at 125 kHz", rylr.Opts{Params: lora.Params{SpreadingFactor: 10, BandwidthHz: 125000}}, "SF10 not supported at 125 kHz"},
		{"SF12 at 500 kHz", rylr.Opts{Params: lora.Params{SpreadingFactor: 12, BandwidthHz: 500000}}, "SF12"},
		{"62.5 kHz", rylr.Opts{Params: lora.Params{BandwidthHz: 62500}}, "bandwidth 62500"},
		{"preamble with private network", rylr.Opts{NetworkID: 5, Params: lora.Params{PreambleSymbols: 8}}, "preamble must be 12"},
		{"network id 16", rylr.Opts{NetworkID: 16}, "network id 16"},
		{"power 23 dBm", rylr.Opts{PowerDBm: 23}, "output power 23"},
		{"band 433 MHz", rylr.Opts{BandHz: 433_000_000}, "outside 820..960"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := rylr.Open(ctxT(t, 5*time.Second), m.Path(), &tc.o)
			if err == nil {
				d.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, rylr.ErrInvalidOpts) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidOpts mentioning %q", err, tc.want)
			}
		})
	}
	if got := m.Stats().FlashWrites; got != 0 {
		t.Errorf("refused settings still wrote %d values", got)
	}
}

func TestMTUFollowsDwellLimit(t *testing.T) {
	m := emulator(t, &rylrsim.Opts{Instant: true})
	for _, tc := range []struct {
		name string
		o    rylr.Opts
		mtu  int
	}{
		// docs/radio-notes.md §3.1: 240 B at SF7/125, 126 B at SF8/125, 54 B at SF9/125
		// with the 12-symbol preamble and the 8 hidden bytes.
		{"SF9/125 factory", rylr.Opts{}, 54},
		{"SF8/125", rylr.Opts{Params: lora.Params{SpreadingFactor: 8}}, 126},
		{"SF7/125", rylr.Opts{Params: lora.Params{SpreadingFactor: 7}}, 240},
		{"SF9/125 base64", rylr.Opts{Encoding: rylr.EncodingBase64}, 39},
		{"SF7/500 base64", rylr.Opts{Params: fast, Encoding: rylr.EncodingBase64}, 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t, m, &tc.o)
			if d.MTU() != tc.mtu {
				t.Fatalf("MTU %d, want %d", d.MTU(), tc.mtu)
			}
			if at := d.Airtime(d.MTU()); at > lora.USDwell {
				t.Fatalf("airtime of an MTU frame %v exceeds the dwell limit", at)
			}
			err := d.Send(ctxT(t, time.Second), make([]byte, d.MTU()+1))
			if !errors.Is(err, radio.ErrFrameTooLarge) {
				t.Fatalf("oversize Send: %v, want ErrFrameTooLarge", err)
			}
			d.Close()
		})
	}
}

func TestDwellRefusedWithoutMTUCheck(t *testing.T) {
	// A regulator for US915 refuses what MTU would also refuse; check the
	// regulator path itself with an EU868 budget that one frame exhausts.
	m := emulator(t, &rylrsim.Opts{Instant: true})
	reg, err := lora.NewRegulator(lora.EU868, &lora.RegulatorOpts{Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := open(t, m, &rylr.Opts{Regulator: reg, BandHz: 868_100_000, Params: lora.Params{SpreadingFactor: 9}})
	// 1 % of one second is 10 ms: even one byte at SF9 (~150 ms) is over.
	if err := d.Send(ctxT(t, time.Second), []byte("x")); !errors.Is(err, radio.ErrDutyCycle) {
		t.Fatalf("got %v, want ErrDutyCycle", err)
	}
	if m.Stats().Sent != 0 {
		t.Fatal("the module transmitted a refused frame")
	}
}

type pair struct {
	ma, mb *rylrsim.Module
	a, b   *rylr.Dev
}

func newPair(t *testing.T, so rylrsim.Opts, o rylr.Opts) pair {
	t.Helper()
	ether := rylrsim.NewEther()
	sa, sb := so, so
	sa.Air, sb.Air = ether.Radio(), ether.Radio()
	t.Cleanup(func() { sa.Air.Close(); sb.Air.Close() })
	p := pair{ma: emulator(t, &sa), mb: emulator(t, &sb)}
	oa, ob := o, o
	oa.Address, ob.Address = 1, 2
	if os.Getenv("NEXFIELD_TEST_LOG") == "debug" {
		h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
		oa.Logger, ob.Logger = slog.New(h).With("dev", "a"), slog.New(h).With("dev", "b")
	}
	p.a, p.b = open(t, p.ma, &oa), open(t, p.mb, &ob)
	return p
}

func TestSendReceiveBinaryThroughPTY(t *testing.T) {
	p := newPair(t, rylrsim.Opts{BinarySafe: true}, rylr.Opts{Params: fast})
	payloads := [][]byte{
		[]byte("hello"),
		[]byte("a,b,,c,"),
		{0, '\r', '\n', 0xff, ',', '+', 'R', 'C', 'V', '=', '\n'},
		bytes.Repeat([]byte{0xA5, '\r', '\n', 0}, 60), // 240 bytes
	}
	for _, want := range payloads {
		start := time.Now()
		if err := p.a.Send(ctxT(t, 2*time.Second), want); err != nil {
			t.Fatalf("Send %d bytes: %v", len(want), err)
		}
		if el, toa := time.Since(start), p.a.Airtime(len(want)); el < toa {
			t.Errorf("Send of %d bytes returned after %v, before its airtime %v", len(want), el, toa)
		}
		f, err := p.b.Receive(ctxT(t, 2*time.Second))
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if !bytes.Equal(f.Payload, want) {
			t.Fatalf("got %q, want %q", f.Payload, want)
		}
		if f.RSSI != -42 || f.SNR != 9 || f.Time.IsZero() {
			t.Errorf("frame quality %v dBm / %v dB at %v", f.RSSI, f.SNR, f.Time)
		}
	}
	if s := p.b.Stats(); s.Received != uint64(len(payloads)) || s.Malformed != 0 {
		t.Errorf("receiver stats %+v", s)
	}
}

func TestTextOnlyModuleNeedsBase64(t *testing.T) {
	binary := []byte{'o', 'k', '\r', '\n', 0, 1, 2}
	t.Run("raw", func(t *testing.T) {
		p := newPair(t, rylrsim.Opts{}, rylr.Opts{Params: fast})
		err := p.a.Send(ctxT(t, 2*time.Second), binary)
		var ae *rylr.ATError
		if !errors.As(err, &ae) || ae.Code != 5 || !strings.Contains(err.Error(), "does not match the declared length") {
			t.Fatalf("got %v, want +ERR=5 explained", err)
		}
		// Text still works, and the driver is not confused by the stray
		// error the rest of the broken line caused.
		if err := p.a.Send(ctxT(t, 2*time.Second), []byte("plain text")); err != nil {
			t.Fatalf("text after a refused binary frame: %v", err)
		}
		f, err := p.b.Receive(ctxT(t, 2*time.Second))
		if err != nil || string(f.Payload) != "plain text" {
			t.Fatalf("got %q, %v", f.Payload, err)
		}
	})
	t.Run("base64", func(t *testing.T) {
		p := newPair(t, rylrsim.Opts{}, rylr.Opts{Params: fast, Encoding: rylr.EncodingBase64})
		if err := p.a.Send(ctxT(t, 2*time.Second), binary); err != nil {
			t.Fatal(err)
		}
		f, err := p.b.Receive(ctxT(t, 2*time.Second))
		if err != nil || !bytes.Equal(f.Payload, binary) {
			t.Fatalf("got %q, %v", f.Payload, err)
		}
	})
}

func TestNoModuleConnected(t *testing.T) {
	// A tty with nothing behind it: the master side is open but nobody answers.
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptm.Close()
	defer tty.Close()
	go drain(ptm)
	start := time.Now()
	_, err = rylr.Open(ctxT(t, 10*time.Second), tty.Name(), nil)
	if !errors.Is(err, radio.ErrNoDevice) || !strings.Contains(err.Error(), "no module connected") {
		t.Fatalf("got %v, want ErrNoDevice saying no module is connected", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v to give up, want < 2 s", el)
	}
}

func TestNoSuchPort(t *testing.T) {
	_, err := rylr.Open(ctxT(t, time.Second), "/dev/nexfield-no-uart", nil)
	if err == nil || !strings.Contains(err.Error(), "/dev/nexfield-no-uart") {
		t.Fatalf("got %v", err)
	}
}

func drain(f *os.File) {
	b := make([]byte, 256)
	for {
		if _, err := f.Read(b); err != nil {
			return
		}
	}
}

func TestGarbageAnswers(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptm.Close()
	defer tty.Close()
	go func() { // a device at another baud rate: every command draws line noise
		b := make([]byte, 256)
		for {
			if _, err := ptm.Read(b); err != nil {
				return
			}
			ptm.Write([]byte("\xf0\x8a\x13?\xfe~\r\n"))
		}
	}()
	start := time.Now()
	_, err = rylr.Open(ctxT(t, 10*time.Second), tty.Name(), nil)
	if !errors.Is(err, radio.ErrNoDevice) || !strings.Contains(err.Error(), "unrecognised output") {
		t.Fatalf("got %v, want ErrNoDevice quoting the garbage", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestUnknownFirmwareNeedsModel(t *testing.T) {
	m := emulator(t, &rylrsim.Opts{Instant: true, Version: "ACME_LORA_2"})
	if _, err := rylr.Open(ctxT(t, 5*time.Second), m.Path(), nil); !errors.Is(err, radio.ErrNoDevice) || !strings.Contains(err.Error(), "ACME_LORA_2") {
		t.Fatalf("got %v", err)
	}
	d := open(t, m, &rylr.Opts{Model: rylr.RYLR998})
	if d.Model() != rylr.RYLR998 {
		t.Fatal(d.Model())
	}
}

func TestDroppedBytesMidRCV(t *testing.T) {
	p := newPair(t, rylrsim.Opts{BinarySafe: true}, rylr.Opts{Params: fast})
	// A frame whose data lost bytes on the UART, directly followed by a good
	// one, then a truncated frame with nothing after it, then a good one.
	p.mb.Inject([]byte("+RCV=1,20,lost some by"))
	p.mb.Inject([]byte("tes,-40,9\r\n"))
	if err := p.a.Send(ctxT(t, 2*time.Second), []byte("first")); err != nil {
		t.Fatal(err)
	}
	f, err := p.b.Receive(ctxT(t, 2*time.Second))
	if err != nil || string(f.Payload) != "first" {
		t.Fatalf("got %q, %v", f.Payload, err)
	}
	p.mb.Inject([]byte("+RCV=1,30,cut off her"))
	time.Sleep(150 * time.Millisecond) // the line goes quiet: the fragment is stale
	if err := p.a.Send(ctxT(t, 2*time.Second), []byte("second")); err != nil {
		t.Fatal(err)
	}
	f, err = p.b.Receive(ctxT(t, 2*time.Second))
	if err != nil || string(f.Payload) != "second" {
		t.Fatalf("got %q, %v", f.Payload, err)
	}
	if s := p.b.Stats(); s.Malformed < 2 || s.Received != 2 {
		t.Fatalf("stats %+v, want 2 received and >= 2 malformed", s)
	}
}

func TestModuleRebootIsReconfigured(t *testing.T) {
	p := newPair(t, rylrsim.Opts{BinarySafe: true}, rylr.Opts{Params: fast, NetworkID: 18})
	want := p.mb.Settings()
	p.mb.FactoryReset() // flash lost: SF9/125 again
	ok := eventually(t, 3*time.Second, func() bool { return p.mb.Settings() == want })
	if !ok {
		t.Fatalf("module settings after reboot %+v, want %+v", p.mb.Settings(), want)
	}
	if p.b.Stats().Reboots != 1 {
		t.Errorf("reboots %d, want 1", p.b.Stats().Reboots)
	}
	// Reception works again without anyone sending through b.
	if err := p.a.Send(ctxT(t, 2*time.Second), []byte("after reboot")); err != nil {
		t.Fatal(err)
	}
	if f, err := p.b.Receive(ctxT(t, 2*time.Second)); err != nil || string(f.Payload) != "after reboot" {
		t.Fatalf("got %q, %v", f.Payload, err)
	}
}

// resetPin is a NRST line wired to the emulated module.
type resetPin struct {
	gpiotest.Pin
	m      *rylrsim.Module
	mu     sync.Mutex
	pulses int
}

func (r *resetPin) Out(l gpio.Level) error {
	r.Pin.Out(l)
	if l == gpio.Low {
		r.mu.Lock()
		r.pulses++
		r.mu.Unlock()
		r.m.Reset()
	}
	return nil
}

func TestModuleStopsAnswering(t *testing.T) {
	t.Run("reset pin recovers", func(t *testing.T) {
		m := emulator(t, &rylrsim.Opts{BinarySafe: true, BootTime: 20 * time.Millisecond})
		pin := &resetPin{Pin: gpiotest.Pin{N: "NRST"}, m: m}
		d := open(t, m, &rylr.Opts{Params: fast, Reset: pin})
		if pin.pulses != 1 {
			t.Fatalf("reset at start: %d pulses, want 1", pin.pulses)
		}
		m.SetSilent(true)
		if err := d.Send(ctxT(t, 5*time.Second), []byte("still there?")); err != nil {
			t.Fatalf("Send after the module wedged: %v", err)
		}
		if pin.pulses != 2 || d.Stats().Recoveries != 1 {
			t.Fatalf("pulses %d, recoveries %d; want 2 and 1", pin.pulses, d.Stats().Recoveries)
		}
	})
	t.Run("no reset pin fails clearly", func(t *testing.T) {
		m := emulator(t, &rylrsim.Opts{BinarySafe: true})
		d := open(t, m, &rylr.Opts{Params: fast})
		m.SetSilent(true) // also ignores AT+RESET
		start := time.Now()
		err := d.Send(ctxT(t, 10*time.Second), []byte("anyone?"))
		if !errors.Is(err, radio.ErrNoDevice) {
			t.Fatalf("got %v, want ErrNoDevice after a failed recovery", err)
		}
		if el := time.Since(start); el > 4*time.Second {
			t.Errorf("gave up after %v", el)
		}
		m.SetSilent(false)
		if err := d.Send(ctxT(t, 5*time.Second), []byte("back")); err != nil {
			t.Fatalf("Send once the module answers again: %v", err)
		}
	})
}

func TestContextAndClose(t *testing.T) {
	m := emulator(t, &rylrsim.Opts{Instant: true})
	d := open(t, m, &rylr.Opts{Params: fast})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Send(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context: %v", err)
	}
	if _, err := d.Receive(ctxT(t, 20*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing on air: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := d.Receive(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, radio.ErrClosed) {
			t.Fatalf("pending Receive got %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not unblock Receive")
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("Close took %v", el)
	}
	if err := d.Send(context.Background(), []byte("x")); !errors.Is(err, radio.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The port was released: the module can be opened again at once.
	open(t, m, &rylr.Opts{Params: fast})
}

func TestATErrorTables(t *testing.T) {
	for _, tc := range []struct {
		model rylr.Model
		code  int
		want  string
	}{
		{rylr.RYLR998, 17, "previous transmission not finished"},
		{rylr.RYLR998, 18, "preamble"},
		{rylr.RYLR896, 3, "no '='"},
		{rylr.RYLR896, 11, "receive timed out"},
		{rylr.RYLR896, 17, "undocumented"},
		{rylr.RYLR998, 10, "transmit timed out"},
	} {
		e := &rylr.ATError{Model: tc.model, Command: "AT+SEND=0,5", Code: tc.code}
		if !strings.Contains(e.Error(), tc.want) || !strings.HasPrefix(e.Error(), "rylr: AT+SEND=0,5: +ERR=") {
			t.Errorf("%v %d: %q, want it to mention %q", tc.model, tc.code, e.Error(), tc.want)
		}
	}
	if !errors.Is(&rylr.ATError{Code: 10}, radio.ErrTimeout) || !errors.Is(&rylr.ATError{Code: 13}, radio.ErrFrameTooLarge) {
		t.Error("ATError does not unwrap to the radio sentinels")
	}
}

func TestReopensADisconnectedPort(t *testing.T) {
	// The serial device disappears (USB adapter unplugged) and a module
	// comes back under the same name: the driver reopens it by path and
	// configures the module again.
	link := filepath.Join(t.TempDir(), "ttyUSB0")
	first, err := rylrsim.New(&rylrsim.Opts{BinarySafe: true, BootTime: time.Millisecond})
	if err != nil {
		t.Skip(err)
	}
	if err := os.Symlink(first.Path(), link); err != nil {
		t.Fatal(err)
	}
	d, err := rylr.Open(ctxT(t, 5*time.Second), link, &rylr.Opts{Params: fast, Address: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	first.Close() // unplugged
	if !eventually(t, 2*time.Second, func() bool {
		err := d.Send(ctxT(t, time.Second), []byte("anyone?"))
		return errors.Is(err, radio.ErrNoDevice) && strings.Contains(err.Error(), "disconnected")
	}) {
		t.Fatal("Send on an unplugged device does not say so")
	}
	second := emulator(t, &rylrsim.Opts{BinarySafe: true, BootTime: time.Millisecond})
	os.Remove(link)
	if err := os.Symlink(second.Path(), link); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 5*time.Second, func() bool { return d.Stats().Reconnects == 1 && second.Settings().Address == 9 }) {
		t.Fatalf("stats %+v, module settings %+v", d.Stats(), second.Settings())
	}
	if err := d.Send(ctxT(t, 2*time.Second), []byte("back")); err != nil {
		t.Fatalf("Send after reconnecting: %v", err)
	}
	if second.Stats().Sent != 1 {
		t.Fatalf("the new module sent %d frames", second.Stats().Sent)
	}
}
