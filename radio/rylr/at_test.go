package rylr

import (
	"bytes"
	"fmt"
	"testing"
)

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want response
		n    int
		bad  bool
	}{
		{"ok", "+OK\r\n", response{kind: kindOK}, 5, false},
		{"err", "+ERR=17\r\n", response{kind: kindErr, code: 17}, 9, false},
		{"ready", "+READY\r\n", response{kind: kindReady}, 8, false},
		{"value", "+VER=RYLR998_REYAX_V1.2.2\r\n", response{kind: kindValue, name: "VER", value: "RYLR998_REYAX_V1.2.2"}, 27, false},
		{"parameter", "+PARAMETER=9,7,1,12\r\n", response{kind: kindValue, name: "PARAMETER", value: "9,7,1,12"}, 21, false},
		{"lf only", "+OK\n", response{kind: kindOK}, 4, false},
		{"need more", "+O", response{}, 0, false},
		{"rcv", "+RCV=50,5,HELLO,-99,40\r\n", response{kind: kindRCV, addr: 50, data: []byte("HELLO"), rssi: -99, snr: 40}, 24, false},
		{"rcv commas", "+RCV=1,5,a,b,c,-40,-3\r\n", response{kind: kindRCV, addr: 1, data: []byte("a,b,c"), rssi: -40, snr: -3}, 23, false},
		{"rcv only commas", "+RCV=1,3,,,,,-40,9\r\n", response{kind: kindRCV, addr: 1, data: []byte(",,,"), rssi: -40, snr: 9}, 20, false},
		{"rcv crlf inside", "+RCV=2,4,\r\n\x00+,-1,2\r\n", response{kind: kindRCV, addr: 2, data: []byte("\r\n\x00+"), rssi: -1, snr: 2}, 20, false},
		{"rcv empty", "+RCV=3,0,,-50,7\r\n", response{kind: kindRCV, addr: 3, data: []byte{}, rssi: -50, snr: 7}, 17, false},
		{"rcv partial prefix", "+RC", response{}, 0, false},
		{"rcv partial data", "+RCV=3,10,abc", response{}, 0, false},
		{"rcv partial trailer", "+RCV=3,3,abc,-4", response{}, 0, false},
		{"rcv truncated then next line", "+RCV=3,10,abc,-40,9\r\n+OK\r\n", response{kind: kindUnknown, line: []byte("+RCV=3,10,abc,-40,9")}, 21, true},
		{"rcv bad length", "+RCV=3,x,abc,-40,9\r\n", response{kind: kindUnknown, line: []byte("+RCV=3,x,abc,-40,9")}, 20, true},
		{"rcv too long", "+RCV=3,300,abc\r\n", response{kind: kindUnknown, line: []byte("+RCV=3,300,abc")}, 16, true},
		{"rcv big address", "+RCV=99999,1,a,-1,1\r\n", response{kind: kindUnknown, line: []byte("+RCV=99999,1,a,-1,1")}, 21, true},
		{"garbage", "\xff\xfeAB\r\n", response{kind: kindUnknown, line: []byte("\xff\xfeAB")}, 6, false},
		{"err not number", "+ERR=x\r\n", response{kind: kindUnknown, line: []byte("+ERR=x")}, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, n, err := parseResponse([]byte(tc.in))
			if n != tc.n {
				t.Fatalf("consumed %d, want %d", n, tc.n)
			}
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want malformed=%v", err, tc.bad)
			}
			if r.kind != tc.want.kind || r.code != tc.want.code || r.name != tc.want.name || r.value != tc.want.value ||
				r.addr != tc.want.addr || !bytes.Equal(r.data, tc.want.data) || r.rssi != tc.want.rssi || r.snr != tc.want.snr ||
				!bytes.Equal(r.line, tc.want.line) {
				t.Fatalf("got %+v, want %+v", r, tc.want)
			}
		})
	}
}

func TestParseResponseSkipsFiller(t *testing.T) {
	_, n, err := parseResponse([]byte("\r\n\x00+OK\r\n"))
	if n != 3 || err != errSkip {
		t.Fatalf("got (%d, %v), want (3, errSkip)", n, err)
	}
}

// parseAll runs the parser over a stream the way the driver's reader does.
func parseAll(b []byte) (out []response, rest []byte) {
	for len(b) > 0 {
		r, n, err := parseResponse(b)
		if n == 0 {
			break
		}
		if err == nil {
			out = append(out, r)
		}
		b = b[n:]
	}
	return out, b
}

func TestParseResyncsAfterDroppedBytes(t *testing.T) {
	// The UART lost 6 bytes of the first frame's data: its length field now
	// promises more than the line holds. The next frame must still parse.
	stream := []byte("+RCV=1,12,hello,-40,9\r\n+RCV=2,5,world,-41,8\r\n+OK\r\n")
	got, rest := parseAll(stream)
	if len(rest) != 0 {
		t.Fatalf("left %q unparsed", rest)
	}
	var frames []string
	oks := 0
	for _, r := range got {
		switch r.kind {
		case kindRCV:
			frames = append(frames, fmt.Sprintf("%d:%s", r.addr, r.data))
		case kindOK:
			oks++
		}
	}
	if len(frames) != 1 || frames[0] != "2:world" || oks != 1 {
		t.Fatalf("got frames %v and %d +OK, want [2:world] and 1", frames, oks)
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "+ERR=5\r\n", "+READY\r\n", "+RESET\r\n", "+VER=RYLR998_REYAX_V1.2.2\r\n",
		"+RCV=50,5,HELLO,-99,40\r\n", "+RCV=1,3,,,,,-40,9\r\n", "+RCV=2,4,\r\n\x00+,-1,2\r\n",
		"+RCV=1,12,hello,-40,9\r\n+RCV=2,5,world,-41,8\r\n", "+RCV=65535,240,", "+RCV=", "\r\n\x00",
		"+RCV=3,0,,-50,7\r\n+OK\r\n", "\xff\xfe garbage without end",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		for steps := 0; len(b) > 0; steps++ {
			r, n, err := parseResponse(b)
			if n < 0 || n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			if n == 0 {
				if err != nil {
					t.Fatalf("error %v without progress", err)
				}
				// Needing more input is only allowed for bounded prefixes.
				if len(b) > maxLine+len(rcvPrefix)+maxRCVData+maxTrailer+16 {
					t.Fatalf("parser stalls on %d bytes: %q", len(b), b)
				}
				break
			}
			if r.kind == kindRCV {
				if len(r.data) > maxRCVData {
					t.Fatalf("data of %d bytes", len(r.data))
				}
				// Re-encoding what was parsed must give the consumed bytes
				// back (modulo "\n" vs "\r\n").
				enc := fmt.Appendf(nil, "+RCV=%d,%d,", r.addr, len(r.data))
				enc = append(enc, r.data...)
				enc = fmt.Appendf(enc, ",%d,%d\r\n", r.rssi, r.snr)
				if !bytes.Equal(enc, b[:n]) && !bytes.Equal(bytes.Replace(enc, []byte("\r\n"), []byte("\n"), 1), b[:n]) && !looksPadded(b[:n]) {
					t.Fatalf("round trip: parsed %q as %+v, re-encoded %q", b[:n], r, enc)
				}
			}
			b = b[n:]
			if steps > len(in)+1 {
				t.Fatal("no progress")
			}
		}
	})
}

// looksPadded allows numerals the parser accepts but does not print the
// same way (leading zeros, "-0").
func looksPadded(b []byte) bool {
	return bytes.Contains(b, []byte(",0")) || bytes.Contains(b, []byte("=0")) || bytes.Contains(b, []byte("-0"))
}
