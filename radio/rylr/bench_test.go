package rylr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
	"github.com/nexfield/nexfield/radio/serialport"
)

// byteTime is the UART time of n bytes at 115200 baud, 8N1.
func byteTime(n int) time.Duration { return time.Duration(n) * 10 * time.Second / 115200 }

// skipAirtime is a clock whose timers under 300 ms fire at once: the
// driver's wait for the module's airtime (and its retry pauses) vanish,
// while command timeouts (over 500 ms) stay real.
type skipAirtime struct{ clock.Real }

func (skipAirtime) NewTimer(d time.Duration) clock.Timer {
	if d < 300*time.Millisecond {
		d = 0
	}
	return clock.Real{}.NewTimer(d)
}

func benchPair(b *testing.B, instant bool, clk clock.Clock, enc rylr.Encoding) (a, r *rylr.Dev) {
	ether := rylrsim.NewEther()
	var ds []*rylr.Dev
	for i := 0; i < 2; i++ {
		air := ether.Radio()
		m, err := rylrsim.New(&rylrsim.Opts{BinarySafe: true, Instant: instant, Air: air})
		if err != nil {
			b.Skip(err)
		}
		d, err := rylr.Open(context.Background(), m.Path(), &rylr.Opts{Params: fast, Encoding: enc, Address: uint16(i + 1), Clock: clk})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close(); m.Close(); air.Close() })
		ds = append(ds, d)
	}
	return ds[0], ds[1]
}

// BenchmarkSendReceive measures one frame from the driver of module A to the
// driver of module B through two pseudo-terminals and the emulator.
//
// timing=module: the emulator spends UART byte time at 115200 baud and the
// frame's time on air; overhead_ms/op is the wall time minus that model
// (command bytes + airtime + the longer of the +OK and +RCV lines), i.e.
// what the driver, the kernel's pty and the emulator add per frame.
//
// timing=none: the emulator answers at once and sends at once;
// overhead_ms/op is the wall time minus the airtime the sending driver
// waits after +OK: the whole software path of one frame (both drivers, both
// emulators, four pty crossings) plus the timer slack of that wait.
//
// timing=software: as none, and the driver's airtime wait is skipped through
// its injected clock; ns/op is the software path alone.
func BenchmarkSendReceive(b *testing.B) {
	for _, timing := range []string{"module", "none", "software"} {
		for _, enc := range []rylr.Encoding{rylr.EncodingRaw, rylr.EncodingBase64} {
			for _, n := range []int{16, 180} {
				b.Run(fmt.Sprintf("timing=%s/encoding=%v/len=%d", timing, enc, n), func(b *testing.B) {
					var clk clock.Clock
					if timing == "software" {
						clk = skipAirtime{}
					}
					a, r := benchPair(b, timing != "module", clk, enc)
					payload := bytes.Repeat([]byte{0xA5, '\r', '\n', ','}, n/4)
					wire := len(payload)
					if enc == rylr.EncodingBase64 {
						wire = base64.StdEncoding.EncodedLen(len(payload))
					}
					cmd := len(fmt.Sprintf("AT+SEND=0,%d,", wire)) + wire + 2
					rcv := len(fmt.Sprintf("+RCV=1,%d,", wire)) + wire + len(",-42,9\r\n")
					model := byteTime(cmd) + a.Airtime(len(payload)) + max(byteTime(len("+OK\r\n")), byteTime(rcv))
					switch timing {
					case "none":
						// The driver still waits out the airtime after +OK.
						model = a.Airtime(len(payload))
					case "software":
						model = 0
					}
					ctx := context.Background()
					b.ReportAllocs()
					b.ResetTimer()
					start := time.Now()
					for i := 0; i < b.N; i++ {
						if err := a.Send(ctx, payload); err != nil {
							b.Fatal(err)
						}
						f, err := r.Receive(ctx)
						if err != nil || len(f.Payload) != len(payload) {
							b.Fatalf("got %d bytes, %v", len(f.Payload), err)
						}
					}
					per := time.Since(start) / time.Duration(b.N)
					b.ReportMetric(float64(per-model)/1e6, "overhead_ms/op")
					b.ReportMetric(float64(model)/1e6, "model_ms/op")
				})
			}
		}
	}
}

// BenchmarkPTYRoundTrip is the baseline: one AT+SEND-sized line through the
// pseudo-terminal to a responder that answers +OK, with no driver or
// emulator logic, using the same serial port implementation.
func BenchmarkPTYRoundTrip(b *testing.B) {
	for _, n := range []int{16, 180} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			ptm, tty, err := pty.Open()
			if err != nil {
				b.Skip(err)
			}
			defer ptm.Close()
			defer tty.Close()
			p, err := serialport.Open(tty.Name(), 115200)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			p.SetReadTimeout(time.Second)
			go func() {
				buf := make([]byte, 1024)
				var acc []byte
				for {
					k, err := ptm.Read(buf)
					if err != nil {
						return
					}
					acc = append(acc, buf[:k]...)
					for {
						i := bytes.Index(acc, []byte("\r\n"))
						if i < 0 {
							break
						}
						acc = acc[i+2:]
						ptm.Write([]byte("+OK\r\n"))
					}
				}
			}()
			line := append([]byte(fmt.Sprintf("AT+SEND=0,%d,", n)), bytes.Repeat([]byte("x"), n)...)
			line = append(line, '\r', '\n')
			buf := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := p.Write(line); err != nil {
					b.Fatal(err)
				}
				got := 0
				for got < 5 {
					k, err := p.Read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += k
				}
			}
		})
	}
}
