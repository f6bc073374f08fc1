package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

func TestDatagramRoundTrip(t *testing.T) {
	for _, d := range []datagram{
		{typ: msgJoin, name: "relay"},
		{typ: msgWelcome, params: lora.Params{SpreadingFactor: 9, BandwidthHz: 250000, CodingRate: 2, PreambleSymbols: 12, NoCRC: true, LDRO: lora.LDROOn}},
		{typ: msgFrame, payload: bytes.Repeat([]byte{0xAB}, 255)},
		{typ: msgRecv, payload: []byte{1, 2}, rssi: -101.5, snr: -7.25},
		{typ: msgBusy, duration: 399616 * time.Microsecond},
		{typ: msgLeave},
	} {
		got, err := decodeDatagram(encodeDatagram(d))
		if err != nil {
			t.Fatalf("%q: %v", d.typ, err)
		}
		if d.typ == msgWelcome {
			d.params = d.params.Resolved()
		}
		if d.typ == msgRecv {
			d.snr = -7.3 // tenths of a dB on the wire
		}
		if got.typ != d.typ || got.name != d.name || got.params != d.params || !bytes.Equal(got.payload, d.payload) ||
			got.rssi != d.rssi || got.snr != d.snr || got.duration != d.duration {
			t.Errorf("got %+v, want %+v", got, d)
		}
	}
	for _, b := range [][]byte{nil, []byte("nx"), []byte("xxF"), []byte("nxZ"), append([]byte("nxF"), make([]byte, 256)...), []byte("nxW\x07"), []byte("nxR\x00")} {
		if _, err := decodeDatagram(b); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

// FuzzDecodeDatagram feeds arbitrary bytes to the hub/radio decoder: it must
// never panic, and whatever it accepts must re-encode to a datagram it
// accepts again with the same meaning.
func FuzzDecodeDatagram(f *testing.F) {
	f.Add([]byte("nxJrelay"))
	f.Add(encodeDatagram(datagram{typ: msgWelcome, params: lora.Params{}}))
	f.Add([]byte("nxF\x01\x02\x03"))
	f.Add([]byte("nxR\xff\x10\x00\x46payload"))
	f.Add([]byte("nxB\x00\x06\x19\x00"))
	f.Add([]byte("nxL"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDatagram(b)
		if err != nil {
			return
		}
		d2, err := decodeDatagram(encodeDatagram(d))
		if err != nil {
			t.Fatalf("re-encoded %+v rejected: %v", d, err)
		}
		if d2.typ != d.typ || !bytes.Equal(d2.payload, d.payload) || d2.params != d.params.Resolved() && d.typ == msgWelcome {
			t.Fatalf("round trip changed %+v into %+v", d, d2)
		}
	})
}
