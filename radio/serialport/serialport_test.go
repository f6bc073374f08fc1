package serialport_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nexfield/nexfield/radio/serialport"
)

// openPTY returns the master side and the path of the slave, which plays the
// UART. The slave stays open on our side too so that the master never sees a
// hang-up between a driver's Close and its next Open.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s.Name()
}

func TestReadTimeoutIsCleanAndBounded(t *testing.T) {
	_, path := openPTY(t)
	p, err := serialport.Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, d := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond} {
		if err := p.SetReadTimeout(d); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n, err := p.Read(make([]byte, 16))
		el := time.Since(start)
		if n != 0 || !errors.Is(err, serialport.ErrTimeout) {
			t.Fatalf("timeout %v: got (%d, %v), want (0, ErrTimeout)", d, n, err)
		}
		if el < d || el > d+200*time.Millisecond {
			t.Errorf("timeout %v: Read returned after %v", d, el)
		}
	}
}

func TestCloseUnblocksReader(t *testing.T) {
	_, path := openPTY(t)
	p, err := serialport.Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(0); err != nil { // block until data or Close
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the reader block in select()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked while a reader was waiting")
	}
	select {
	case err := <-done:
		if !errors.Is(err, serialport.ErrClosed) {
			t.Fatalf("blocked Read returned %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock the reader")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Write([]byte("AT\r\n")); !errors.Is(err, serialport.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := p.SetReadTimeout(time.Second); err == nil {
		t.Errorf("SetReadTimeout after Close succeeded")
	}
}

func TestReopenAndBinaryRoundTrip(t *testing.T) {
	m, path := openPTY(t)
	payload := []byte{0, 1, '\r', '\n', 0x11, 0x13, 0x7f, 0xff, 3, 4}
	for round := 0; round < 3; round++ {
		p, err := serialport.Open(path, 115200)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := p.SetReadTimeout(time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write(payload); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 64)
		for len(got) < len(payload) {
			n, err := p.Read(buf)
			if err != nil {
				t.Fatalf("round %d: read: %v", round, err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("round %d: got %q, want %q (the line must be raw: no CR/LF translation, no XON/XOFF)", round, got, payload)
		}
		if _, err := p.Write(payload); err != nil {
			t.Fatal(err)
		}
		back := make([]byte, len(payload))
		m.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := readFull(m, back); err != nil || !bytes.Equal(back, payload) {
			t.Fatalf("round %d: master got %q, %v", round, back, err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestOpenMissingDevice(t *testing.T) {
	start := time.Now()
	_, err := serialport.Open("/dev/nexfield-no-such-uart", 115200)
	if err == nil {
		t.Fatal("Open of a missing device succeeded")
	}
	if time.Since(start) > time.Second {
		t.Errorf("Open took %v to fail", time.Since(start))
	}
}

func TestHangupIsDisconnectNotClose(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	p, err := serialport.Open(s.Name(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadTimeout(time.Second)
	s.Close()
	m.Close() // the device goes away under the open port
	_, err = p.Read(make([]byte, 8))
	if !errors.Is(err, serialport.ErrDisconnected) {
		t.Fatalf("got %v, want ErrDisconnected", err)
	}
}
