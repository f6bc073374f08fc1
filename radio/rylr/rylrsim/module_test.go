package rylrsim_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
	"github.com/nexfield/nexfield/radio/serialport"
	"github.com/nexfield/nexfield/radio/sim"
)

// terminal is a host talking AT to the module by hand, as a technician's
// terminal program would.
type terminal struct {
	t   *testing.T
	p   serialport.Port
	buf []byte
}

func dial(t *testing.T, m *rylrsim.Module) *terminal {
	t.Helper()
	p, err := serialport.Open(m.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetReadTimeout(20 * time.Millisecond)
	return &terminal{t: t, p: p}
}

// line returns the next line the module sent, without CR LF.
func (c *terminal) line(within time.Duration) string {
	c.t.Helper()
	end := time.Now().Add(within)
	chunk := make([]byte, 512)
	for {
		if i := bytes.Index(c.buf, []byte("\r\n")); i >= 0 {
			l := string(c.buf[:i])
			c.buf = c.buf[i+2:]
			return l
		}
		if time.Now().After(end) {
			c.t.Fatalf("no line within %v (have %q)", within, c.buf)
		}
		n, _ := c.p.Read(chunk)
		c.buf = append(c.buf, chunk[:n]...)
	}
}

func (c *terminal) do(cmd string) string {
	c.t.Helper()
	if _, err := c.p.Write([]byte(cmd)); err != nil {
		c.t.Fatal(err)
	}
	return c.line(time.Second)
}

func TestATCommandSet(t *testing.T) {
	m, err := rylrsim.New(&rylrsim.Opts{BootTime: time.Millisecond})
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	c := dial(t, m)
	if l := c.line(time.Second); l != "+READY" {
		t.Fatalf("power-up: %q, want +READY", l)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"AT\r\n", "+OK"},
		{"AT+VER?\r\n", "+VER=" + rylrsim.DefaultVersion},
		{"AT+PARAMETER?\r\n", "+PARAMETER=9,7,1,12"},
		{"AT+NETWORKID?\r\n", "+NETWORKID=18"},
		{"AT+BAND?\r\n", "+BAND=915000000"},
		{"AT+CRFOP?\r\n", "+CRFOP=22"},
		{"AT+ADDRESS=120\r\n", "+OK"},
		{"AT+ADDRESS?\r\n", "+ADDRESS=120"},
		{"AT+PARAMETER=7,9,1,8\r\n", "+OK"}, // preamble 8 allowed on network 18
		{"AT+NETWORKID=5\r\n", "+ERR=18"},   // ... but not on another network
		{"AT+PARAMETER=10,7,1,12\r\n", "+ERR=4"},
		{"AT+PARAMETER=11,9,1,12\r\n", "+OK"},
		{"AT+NETWORKID=5\r\n", "+OK"},
		{"AT+PARAMETER=7,9,1,8\r\n", "+ERR=18"},
		{"AT+CRFOP=23\r\n", "+ERR=4"},
		{"AT+BAND=433000000\r\n", "+ERR=4"},
		{"AT+IPR=250000\r\n", "+ERR=4"},
		{"AT+UID?\r\n", "+UID="},
		{"AT+CPIN?\r\n", "+CPIN=No Password!"},
		{"AT+FOO?\r\n", "+ERR=4"},
		{"BT\r\n", "+ERR=2"},
		{"AT\n", "+ERR=1"},
		{"AT+SEND=0,5,hello\r\n", "+OK"},
		{"AT+SEND=0,5,hell\r\n", "+ERR=5"},
		{"AT+SEND=0,241," + strings.Repeat("x", 241) + "\r\n", "+ERR=13"},
	} {
		if got := c.do(tc.cmd); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q, want %q", strings.TrimSpace(tc.cmd), got, tc.want)
		}
	}
	if s := m.Settings(); s.Address != 120 || s.NetworkID != 5 || s.SF != 11 || s.BWCode != 9 {
		t.Errorf("settings %+v", s)
	}
	if got := c.do("AT+RESET\r\n"); got != "+RESET" {
		t.Fatalf("AT+RESET: %q", got)
	}
	if got := c.line(time.Second); got != "+READY" {
		t.Fatalf("after reset: %q", got)
	}
	if s := m.Settings(); s.Address != 120 {
		t.Errorf("settings lost on reset: %+v", s)
	}
	if got := c.do("AT+FACTORY\r\n"); got != "+FACTORY" || m.Settings().Address != 0 {
		t.Errorf("AT+FACTORY: %q, %+v", got, m.Settings())
	}
}

func TestBusyAndTiming(t *testing.T) {
	m, err := rylrsim.New(&rylrsim.Opts{BootTime: time.Millisecond, Air: rylrsim.NewEther().Radio()})
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	c := dial(t, m)
	c.line(time.Second)
	// SF9/125 with a 12-symbol preamble: 50 bytes + 8 hidden take ~390 ms on air.
	data := strings.Repeat("z", 50)
	start := time.Now()
	if got := c.do("AT+SEND=0,50," + data + "\r\n"); got != "+OK" {
		t.Fatal(got)
	}
	// 65 bytes at 115200 baud take 5.6 ms each way.
	if el := time.Since(start); el < 5*time.Millisecond {
		t.Errorf("+OK after %v: the UART byte time was not spent", el)
	}
	if got := c.do("AT+SEND=0,1,x\r\n"); got != "+ERR=17" {
		t.Fatalf("second send while transmitting: %q, want +ERR=17", got)
	}
	// The module is busy for the whole airtime and free soon after. Polling
	// instead of sleeping a fixed margin keeps this exact on a slow
	// (emulated) machine: the transmission began only after the command's
	// last byte arrived, so "free" may come later than start+toa, never
	// earlier.
	toa := lora.Params{SpreadingFactor: 9, BandwidthHz: 125000, CodingRate: 1, PreambleSymbols: 12}.TimeOnAir(58)
	for {
		got := c.do("AT+SEND=0,1,x\r\n")
		el := time.Since(start)
		if got == "+OK" {
			if el < toa {
				t.Errorf("free after %v, before the %v airtime ended", el, toa)
			}
			if el > toa+time.Second {
				t.Errorf("busy for %v after a %v transmission", el, toa)
			}
			break
		}
		if got != "+ERR=17" {
			t.Fatalf("send while waiting for the airtime to end: %q", got)
		}
		if el > toa+5*time.Second {
			t.Fatalf("still busy after %v", el)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBinarySafety(t *testing.T) {
	for _, safe := range []bool{true, false} {
		ether := rylrsim.NewEther()
		rx := ether.Radio()
		m, err := rylrsim.New(&rylrsim.Opts{BinarySafe: safe, Instant: true, Air: ether.Radio()})
		if err != nil {
			t.Skip(err)
		}
		c := dial(t, m)
		c.line(time.Second)
		got := c.do("AT+SEND=0,6,a\r\n\x00bc\r\n")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		f, err := rx.Receive(ctx)
		cancel()
		if safe {
			if got != "+OK" || err != nil || string(f.Payload[rylrsim.HiddenBytes:]) != "a\r\n\x00bc" {
				t.Errorf("binary-safe: %q, frame %q, %v", got, f.Payload, err)
			}
		} else {
			// The line ends at the CR: length mismatch, then the rest is a
			// command that does not start with AT.
			if got != "+ERR=5" || err == nil {
				t.Errorf("text-only: %q, frame %q, %v", got, f.Payload, err)
			}
			if l := c.line(time.Second); l != "+ERR=2" {
				t.Errorf("text-only, rest of the line: %q, want +ERR=2", l)
			}
		}
		m.Close()
	}
}

func TestOverSimulatedChannel(t *testing.T) {
	air, err := sim.NewAir(&sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 500000}})
	if err != nil {
		t.Fatal(err)
	}
	var mods []*rylrsim.Module
	for _, name := range []string{"a", "b"} {
		r, err := air.NewRadio(&sim.RadioOpts{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		m, err := rylrsim.New(&rylrsim.Opts{Air: r, BinarySafe: true, BootTime: time.Millisecond})
		if err != nil {
			t.Skip(err)
		}
		defer m.Close()
		mods = append(mods, m)
	}
	a, b := dial(t, mods[0]), dial(t, mods[1])
	a.line(time.Second)
	b.line(time.Second)
	for _, c := range []*terminal{a, b} {
		if got := c.do("AT+PARAMETER=7,9,1,12\r\n"); got != "+OK" {
			t.Fatal(got)
		}
	}
	if got := b.do("AT+ADDRESS=2\r\n"); got != "+OK" {
		t.Fatal(got)
	}
	if got := a.do("AT+SEND=2,3,a,b\r\n"); got != "+OK" {
		t.Fatal(got)
	}
	if got := b.line(2 * time.Second); !strings.HasPrefix(got, "+RCV=0,3,a,b,") {
		t.Fatalf("b got %q", got)
	}
	// A module on another network id hears nothing.
	if got := b.do("AT+NETWORKID=6\r\n"); got != "+OK" {
		t.Fatal(got)
	}
	a.do("AT+SEND=0,2,hi\r\n")
	b.p.SetReadTimeout(300 * time.Millisecond)
	n, _ := b.p.Read(make([]byte, 64))
	if n != 0 {
		t.Fatal("a module on another network id received the frame")
	}
}

func TestClosedTTYCanBeReopened(t *testing.T) {
	m, err := rylrsim.New(&rylrsim.Opts{Instant: true})
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	for i := 0; i < 3; i++ {
		p, err := serialport.Open(m.Path(), 115200)
		if err != nil {
			t.Fatal(err)
		}
		p.SetReadTimeout(10 * time.Millisecond)
		c := &terminal{t: t, p: p}
		if got := c.do("AT\r\n"); got != "+OK" && got != "+READY" {
			t.Fatalf("round %d: %q", i, got)
		}
		p.Close()
	}
	if _, err := os.Stat(m.Path()); err != nil {
		t.Fatal(err)
	}
}
