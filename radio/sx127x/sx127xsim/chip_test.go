package sx127xsim_test

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sx127x/sx127xsim"
)

func connect(t *testing.T, c *sx127xsim.Chip) spi.Conn {
	t.Helper()
	conn, err := c.Connect(8*physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func rd(t *testing.T, c spi.Conn, addr byte) byte {
	r := make([]byte, 2)
	if err := c.Tx([]byte{addr, 0}, r); err != nil {
		t.Fatal(err)
	}
	return r[1]
}

func wr(t *testing.T, c spi.Conn, addr, v byte) {
	if err := c.Tx([]byte{addr | 0x80, v}, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
}

func TestRegistersAndFIFO(t *testing.T) {
	chip := sx127xsim.New(nil)
	defer chip.Close()
	c := connect(t, chip)
	if _, err := chip.Connect(0, spi.Mode0, 8); err == nil {
		t.Error("second Connect accepted")
	}
	if v := rd(t, c, 0x42); v != 0x12 {
		t.Fatalf("RegVersion 0x%02X", v)
	}
	wr(t, c, 0x42, 0x99) // read-only
	if v := rd(t, c, 0x42); v != 0x12 {
		t.Fatalf("RegVersion written: 0x%02X", v)
	}
	// LongRangeMode changes only in sleep.
	wr(t, c, 0x01, 0x81)
	if mode, lora := chip.Mode(); lora || mode != 1 {
		t.Fatalf("LoRa set outside sleep: mode %d lora %v", mode, lora)
	}
	wr(t, c, 0x01, 0x00)
	wr(t, c, 0x01, 0x80)
	if _, lora := chip.Mode(); !lora {
		t.Fatal("LoRa not set in sleep")
	}
	// Burst write of registers auto-increments: Frf MSB/MID/LSB in one go.
	if err := c.Tx([]byte{0x86, 0xE4, 0xC0, 0x00}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if f := chip.FrequencyHz(); f != 915_000_000 {
		t.Fatalf("frequency %d", f)
	}
	// FIFO bursts do not auto-increment the address, only FifoAddrPtr.
	wr(t, c, 0x0D, 0x10)
	if err := c.Tx([]byte{0x80, 1, 2, 3, 4}, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	wr(t, c, 0x0D, 0x10)
	// Split over two packets that keep chip select: one transaction.
	r1, r2 := make([]byte, 1), make([]byte, 4)
	if err := c.TxPackets([]spi.Packet{{W: []byte{0x00}, R: r1, KeepCS: true}, {W: make([]byte, 4), R: r2}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2, []byte{1, 2, 3, 4}) {
		t.Fatalf("FIFO read back % X", r2)
	}
	if err := c.Tx([]byte{0x01, 0}, make([]byte, 1)); err == nil {
		t.Error("half-length read buffer accepted")
	}
}

func TestTransmitTimingAndIRQ(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []byte
		chip := sx127xsim.New(&sx127xsim.Opts{OnTransmit: func(p []byte) { got = bytes.Clone(p) }})
		defer chip.Close()
		c := connect(t, chip)
		dio0 := chip.DIO0()
		if err := dio0.In(gpio.PullDown, gpio.RisingEdge); err != nil {
			t.Fatal(err)
		}
		wr(t, c, 0x01, 0x00)
		wr(t, c, 0x01, 0x81)
		wr(t, c, 0x1D, 0x72) // 125 kHz, 4/5, explicit
		wr(t, c, 0x1E, 0x94) // SF9, CRC on
		wr(t, c, 0x0E, 0x00)
		wr(t, c, 0x0D, 0x00)
		c.Tx([]byte{0x80, 'h', 'i', '!'}, make([]byte, 4))
		wr(t, c, 0x22, 3)
		wr(t, c, 0x40, 0x40) // DIO0 = TxDone
		start := time.Now()
		wr(t, c, 0x01, 0x83)
		if !dio0.WaitForEdge(10 * time.Second) {
			t.Fatal("no TxDone edge")
		}
		want := lora.Params{SpreadingFactor: 9}.TimeOnAir(3)
		if el := time.Since(start); el != want {
			t.Errorf("TxDone after %v, want the time on air %v", el, want)
		}
		if rd(t, c, 0x12)&0x08 == 0 || string(got) != "hi!" {
			t.Fatalf("flags 0x%02X, frame %q", rd(t, c, 0x12), got)
		}
		if mode, _ := chip.Mode(); mode != 1 {
			t.Errorf("mode %d after TX, want standby", mode)
		}
		wr(t, c, 0x12, 0x08)
		if rd(t, c, 0x12) != 0 {
			t.Error("flag not cleared by writing 1")
		}
		// RX continuous: a delivered frame raises RxDone on DIO0 mapping 00.
		wr(t, c, 0x40, 0x00)
		wr(t, c, 0x01, 0x85)
		if !chip.Deliver(sx127xsim.Packet{Payload: []byte("pong"), RSSI: -80, SNR: -2.5}) {
			t.Fatal("not receiving")
		}
		if !dio0.WaitForEdge(time.Second) {
			t.Fatal("no RxDone edge")
		}
		if rd(t, c, 0x13) != 4 || int8(rd(t, c, 0x19)) != -10 || rd(t, c, 0x12)&0x40 == 0 {
			t.Fatalf("RxNbBytes %d, PktSnr %d, flags 0x%02X", rd(t, c, 0x13), int8(rd(t, c, 0x19)), rd(t, c, 0x12))
		}
		// Not listening: frames are lost.
		wr(t, c, 0x01, 0x81)
		if chip.Deliver(sx127xsim.Packet{Payload: []byte("lost")}) {
			t.Fatal("frame received in standby")
		}
	})
}

func TestResetPin(t *testing.T) {
	chip := sx127xsim.New(nil)
	defer chip.Close()
	c := connect(t, chip)
	wr(t, c, 0x39, 0x34)
	chip.Reset().Out(gpio.Low)
	chip.Reset().Out(gpio.High)
	if v := rd(t, c, 0x39); v != 0x12 || chip.Resets() != 1 {
		t.Fatalf("sync word 0x%02X after reset, %d resets", v, chip.Resets())
	}
}
