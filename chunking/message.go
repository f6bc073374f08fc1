package chunking

import (
	"errors"
	"hash/crc32"
	"slices"
)

// reasm holds the fragments of one message.
type reasm struct {
	frags [][]byte
	have  []bool
	count int
	n     int // -1 until the last fragment arrives
	bytes int
}

// crcLen is the CRC-32 (IEEE, as SCHC's RCS) each message carries after
// its payload, once: it catches reassembly faults the per-frame tags cannot.
const crcLen = 4

// withCRC returns payload followed by its CRC.
func withCRC(payload []byte) []byte {
	c := crc32.ChecksumIEEE(payload)
	return append(append(make([]byte, 0, len(payload)+crcLen), payload...), byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}

// checkCRC splits a reassembled message into its payload and reports
// whether its CRC matches.
func checkCRC(data []byte) ([]byte, bool) {
	if len(data) < crcLen {
		return nil, false
	}
	pl := data[:len(data)-crcLen]
	c := crc32.ChecksumIEEE(pl)
	t := data[len(data)-crcLen:]
	return pl, t[0] == byte(c>>24) && t[1] == byte(c>>16) && t[2] == byte(c>>8) && t[3] == byte(c)
}

var errFragments = errors.New("fragments disagree on the message length")

// add stores fragment idx; it reports whether it was new.
func (r *reasm) add(idx int, data []byte, last bool) (bool, error) {
	if idx >= maxFrags || (r.n >= 0 && idx >= r.n) || (last && idx+1 < len(r.have) && slices.Contains(r.have[idx+1:], true)) {
		return false, errFragments
	}
	if last {
		if r.n >= 0 && r.n != idx+1 {
			return false, errFragments
		}
		r.n = idx + 1
	}
	if idx >= len(r.have) {
		r.have = append(r.have, make([]bool, idx+1-len(r.have))...)
		r.frags = append(r.frags, make([][]byte, idx+1-len(r.frags))...)
	}
	if r.have[idx] {
		return false, nil
	}
	r.have[idx] = true
	r.frags[idx] = slices.Clone(data)
	r.count++
	r.bytes += len(data)
	return true, nil
}

func (r *reasm) complete() bool { return r.n >= 0 && r.count == r.n }

// release drops the fragments (the bitmap stays) and returns their bytes.
func (r *reasm) release() int {
	n := r.bytes
	r.frags, r.bytes = nil, 0
	return n
}

// ackBody is the body of an ACK (or RACK) about r: nil when r is
// complete, else what is missing, in at most limit bytes.
func (r *reasm) ackBody(limit int) []byte {
	if r.complete() {
		return nil
	}
	return encodeAck(r.have, r.n, limit)
}

func (r *reasm) assemble() []byte {
	out := make([]byte, 0, r.bytes)
	for _, f := range r.frags[:r.n] {
		out = append(out, f...)
	}
	return out
}
