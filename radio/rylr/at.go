package rylr

import (
	"bytes"
	"errors"
	"strconv"
)

// kind is the type of one line the module sends.
type kind uint8

const (
	kindUnknown kind = iota // anything we do not recognise (kept for error messages)
	kindOK                  // +OK
	kindErr                 // +ERR=<code>
	kindReady               // +READY: the module (re)booted
	kindReset               // +RESET: answer to AT+RESET, +READY follows
	kindValue               // +<NAME>=<value>: answer to a query
	kindRCV                 // +RCV=<addr>,<len>,<data>,<rssi>,<snr>
)

// response is one parsed line from the module.
type response struct {
	kind  kind
	code  int    // kindErr
	name  string // kindValue: "VER", "UID", "ADDRESS", ...
	value string // kindValue
	addr  uint16 // kindRCV: sender address
	data  []byte // kindRCV: payload as sent on the serial line (aliases the input)
	rssi  int    // kindRCV, dBm
	snr   int    // kindRCV, dB
	line  []byte // kindUnknown / malformed: the raw line (aliases the input)
}

// errMalformed marks a line that started like a known response but broke its
// grammar, typically because the UART dropped bytes.
var errMalformed = errors.New("rylr: malformed response")

const (
	// maxLine bounds a non-+RCV line; longer runs without a line end are garbage.
	maxLine = 512
	// maxRCVData is the largest +RCV length we accept: the LoRa length
	// register is 8 bits (the module itself never sends more than 240).
	maxRCVData = 255
	// maxTrailer is the longest ",<rssi>,<snr>\r\n" tail: ",-164,-20\r\n" plus slack.
	maxTrailer = 16
)

var rcvPrefix = []byte("+RCV=")

// parseResponse parses one response from the front of buf, in the way
// bufio.SplitFunc does: n is the number of bytes consumed, and n == 0 with a
// nil error means "need more input". A +RCV line is framed by its length
// field, so its data may hold commas, CR, LF or NUL. A line that starts like
// +RCV but breaks the grammar is consumed up to the first line end after its
// header and reported with errMalformed, so the stream resynchronises on the
// next line. r's byte slices alias buf.
func parseResponse(buf []byte) (r response, n int, err error) {
	// Stray line ends between responses (and NULs some modules emit on
	// power-up) carry nothing.
	for n < len(buf) && (buf[n] == '\r' || buf[n] == '\n' || buf[n] == 0) {
		n++
	}
	if n > 0 {
		return response{}, n, errSkip
	}
	if len(buf) == 0 {
		return response{}, 0, nil
	}
	if len(buf) < len(rcvPrefix) && bytes.HasPrefix(rcvPrefix, buf) {
		return response{}, 0, nil
	}
	if bytes.HasPrefix(buf, rcvPrefix) {
		return parseRCV(buf)
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > maxLine {
			return response{kind: kindUnknown, line: buf[:maxLine]}, maxLine, errMalformed
		}
		return response{}, 0, nil
	}
	line := bytes.TrimSuffix(buf[:i], []byte("\r"))
	return parseLine(line), i + 1, nil
}

// errSkip reports consumed filler bytes that carry no response.
var errSkip = errors.New("rylr: filler")

func parseLine(line []byte) response {
	switch {
	case bytes.Equal(line, []byte("+OK")):
		return response{kind: kindOK}
	case bytes.Equal(line, []byte("+READY")):
		return response{kind: kindReady}
	case bytes.Equal(line, []byte("+RESET")):
		return response{kind: kindReset}
	}
	if v, ok := bytes.CutPrefix(line, []byte("+ERR=")); ok {
		if code, ok := atoi(v); ok {
			return response{kind: kindErr, code: code}
		}
		return response{kind: kindUnknown, line: line}
	}
	if len(line) > 1 && line[0] == '+' {
		if name, value, ok := bytes.Cut(line[1:], []byte("=")); ok && len(name) > 0 && isName(name) {
			return response{kind: kindValue, name: string(name), value: string(value)}
		}
	}
	return response{kind: kindUnknown, line: line}
}

func isName(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func parseRCV(buf []byte) (response, int, error) {
	p := len(rcvPrefix)
	addr, p, st := field(buf, p, 5)
	if st != fieldOK {
		return rcvFail(buf, st)
	}
	if addr > 65535 {
		return rcvFail(buf, fieldBad)
	}
	length, p, st := field(buf, p, 3)
	if st != fieldOK {
		return rcvFail(buf, st)
	}
	if length > maxRCVData {
		return rcvFail(buf, fieldBad)
	}
	dataStart := p
	p += length
	if p >= len(buf) {
		return response{}, 0, nil
	}
	if buf[p] != ',' {
		return rcvFail(buf, fieldBad)
	}
	// Trailer: ,<rssi>,<snr>\r\n
	rssi, q, st := signedField(buf, p+1, ',')
	if st != fieldOK {
		return rcvFail(buf, st)
	}
	snr, q, st := signedField(buf, q, '\n')
	if st != fieldOK {
		return rcvFail(buf, st)
	}
	return response{kind: kindRCV, addr: uint16(addr), data: buf[dataStart : dataStart+length], rssi: rssi, snr: snr}, q, nil
}

type fieldState uint8

const (
	fieldOK fieldState = iota
	fieldMore
	fieldBad
)

// field reads an unsigned decimal of at most maxDigits digits at buf[p:]
// followed by a comma, and returns the position after the comma.
func field(buf []byte, p, maxDigits int) (int, int, fieldState) {
	v, start := 0, p
	for ; p < len(buf); p++ {
		c := buf[p]
		if c == ',' {
			if p == start {
				return 0, 0, fieldBad
			}
			return v, p + 1, fieldOK
		}
		if c < '0' || c > '9' || p-start >= maxDigits {
			return 0, 0, fieldBad
		}
		v = v*10 + int(c-'0')
	}
	return 0, 0, fieldMore
}

// signedField reads an optionally negative decimal of at most 4 digits ended
// by end ('\n' may be preceded by '\r'), returning the position after end.
func signedField(buf []byte, p int, end byte) (int, int, fieldState) {
	start := p
	neg := false
	if p < len(buf) && buf[p] == '-' {
		neg = true
		p++
	}
	digits := p
	v := 0
	for ; p < len(buf); p++ {
		c := buf[p]
		if c >= '0' && c <= '9' {
			if p-digits >= 4 {
				return 0, 0, fieldBad
			}
			v = v*10 + int(c-'0')
			continue
		}
		if p == digits {
			return 0, 0, fieldBad
		}
		if end == '\n' && c == '\r' {
			if p+1 >= len(buf) {
				return 0, 0, fieldMore
			}
			if buf[p+1] != '\n' {
				return 0, 0, fieldBad
			}
			p++
			c = '\n'
		}
		if c != end {
			return 0, 0, fieldBad
		}
		if neg {
			v = -v
		}
		return v, p + 1, fieldOK
	}
	if p-start > maxTrailer {
		return 0, 0, fieldBad
	}
	return 0, 0, fieldMore
}

// rcvFail turns a failed +RCV parse into "need more" or a malformed line
// consumed up to the first line end after the "+RCV=" prefix.
func rcvFail(buf []byte, st fieldState) (response, int, error) {
	if st == fieldMore {
		return response{}, 0, nil
	}
	i := bytes.IndexByte(buf[len(rcvPrefix):], '\n')
	if i < 0 {
		// No line end yet: drop only the prefix so the next '+' can resync.
		return response{kind: kindUnknown, line: buf[:len(rcvPrefix)]}, len(rcvPrefix), errMalformed
	}
	end := len(rcvPrefix) + i + 1
	return response{kind: kindUnknown, line: bytes.TrimRight(buf[:end], "\r\n")}, end, errMalformed
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	v, err := strconv.Atoi(string(b))
	return v, err == nil && v >= 0
}
