package linkbench

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// SCHC is the ACK-on-Error baseline of RFC 8724 with the LoRaWAN uplink
// profile of RFC 9011, without security: 10-byte tiles, windows of 63
// tiles, a 1-byte fragment header behind 13 bytes of LoRaWAN overhead, a
// 32-bit CRC (RCS) over the packet in the All-1 fragment, bitmap ACKs whose
// trailing ones are compressed away, MAX_ACK_REQUESTS 8 then Sender-Abort.
//
// Modelling choices (documented in radio/README.md):
//   - A regular fragment carries up to 24 tiles (254-byte PHY payload); the
//     All-1 carries the last tiles and the RCS.
//   - The receiver acknowledges after the All-1 and after each ACK REQ, for
//     the lowest window with missing tiles (C=1 when the packet is complete
//     and the RCS matches). The sender resends that window's missing tiles
//     then sends an ACK REQ; each ACK that arrives resets the attempts.
//   - RFC 9011 uses 2 window bits, which caps a packet at 2 520 bytes; for
//     larger messages the model lets the window number grow without adding
//     a header byte, which favours SCHC.
//
// With Compound set (name "schc-compound") the receiver answers an All-1 or
// ACK REQ with one compound ACK (RFC 9441) listing the bitmaps of every
// window with missing tiles (6-bit window numbers), so every gap is
// repaired in one round: the idealised SCHC of the model in docs/radio-notes.md.
type SCHC struct {
	Compound bool
}

// RFC 9011 uplink parameters.
const (
	schcTile       = 10
	schcWindow     = 63
	schcFragTiles  = 24
	schcL2         = 13
	schcHeader     = 1
	schcRCS        = 4
	schcMaxAckReqs = 8
	schcMaxAck     = schcL2 + 9 // W+C and a full 63-bit bitmap
	schcMaxTiles   = 1 << 18    // 2.6 MB: bounds what a forged index can make the receiver scan
	// schcMargin is added to the retransmission timer for turnaround and
	// channel delay; waiting costs time, never airtime.
	schcMargin = time.Second
)

// Frame kinds, carried in the (simulated) LoRaWAN header bytes.
const (
	schcFrag   = 'F'
	schcAll0   = '0' // first-pass fragment ending a window: the sender listens after it
	schcAll1   = '1'
	schcAckReq = 'Q'
	schcAck    = 'K'
	schcCACK   = 'C' // compound ACK (RFC 9441)
	schcCompW  = 6   // window-number bits in a compound ACK
	schcAbort  = 'X'
)

func (s SCHC) Name() string {
	if s.Compound {
		return "schc-compound"
	}
	return "schc"
}

func (SCHC) Params(base lora.Params) lora.Params { return base }

func (s SCHC) NewPair(uint64) (Endpoint, Endpoint, error) {
	return &schcEndpoint{compound: s.Compound}, &schcEndpoint{compound: s.Compound}, nil
}

type schcEndpoint struct {
	compound bool
	// sender
	msgID    uint32
	tiles    [][]byte
	rcs      uint32
	waiting  bool // an ACK is expected
	attempts int
	plan     [][2]int     // first-pass fragments, tiles [from, to)
	next     int          // next first-pass fragment
	pausing  bool         // listening after an All-0
	pending  map[int]bool // tiles reported missing, not resent yet
	// receiver
	rxID   uint32
	rxT    map[int][]byte
	rxN    int // number of tiles, -1 until the All-1 arrives
	rxRCS  uint32
	rxDone bool
}

const (
	schcTimer = 1
	schcPause = 2
)

func (s *schcEndpoint) Send(env Env, msg []byte) {
	s.msgID++
	s.tiles = s.tiles[:0]
	for i := 0; i < len(msg) || i == 0; i += schcTile {
		s.tiles = append(s.tiles, msg[i:min(i+schcTile, len(msg))])
	}
	s.rcs = crc32.ChecksumIEEE(msg)
	n := len(s.tiles)
	// The All-1 carries the last k tiles; at most 23 fit beside the RCS.
	k := n % schcFragTiles
	if k == 0 {
		k = min(n, schcFragTiles-1)
	}
	s.plan = s.plan[:0]
	for i := 0; i < n-k; i += schcFragTiles {
		s.plan = append(s.plan, [2]int{i, min(i+schcFragTiles, n-k)})
	}
	s.plan = append(s.plan, [2]int{n - k, n})
	s.next, s.attempts, s.pending = 0, 0, map[int]bool{}
	s.pump(env)
}

// pump sends first-pass fragments back to back up to the next one that ends
// a window (the All-0): there it pauses for the receiver's ACK-on-error.
func (s *schcEndpoint) pump(env Env) {
	s.pausing = false
	for s.next < len(s.plan) {
		fr := s.plan[s.next]
		s.next++
		if fr[1] == len(s.tiles) {
			s.await(env, s.sendTiles(env, fr[0], fr[1], false))
			return
		}
		if endsWindow(fr[0], fr[1]) {
			end := s.sendTiles(env, fr[0], fr[1], true)
			s.pausing = true
			env.SetTimer(schcPause, end.Sub(env.Now())+env.Airtime(schcMaxAck)+schcMargin)
			return
		}
		s.sendTiles(env, fr[0], fr[1], false)
	}
}

// endsWindow reports whether tiles [from, to) include the last tile of a window.
func endsWindow(from, to int) bool {
	return to/schcWindow > from/schcWindow
}

// sendTiles sends tiles [from, to) as one fragment, an All-1 if it ends the
// packet, and returns when it will have left.
func (s *schcEndpoint) sendTiles(env Env, from, to int, all0 bool) time.Time {
	last := to == len(s.tiles)
	f := make([]byte, schcL2+schcHeader, schcL2+schcHeader+schcRCS+schcFragTiles*schcTile)
	f[0] = schcFrag
	if all0 {
		f[0] = schcAll0
	}
	if last {
		f[0] = schcAll1
	}
	binary.BigEndian.PutUint32(f[1:], s.msgID)
	binary.BigEndian.PutUint32(f[5:], uint32(from))
	if last {
		f = binary.BigEndian.AppendUint32(f, s.rcs)
	}
	for _, t := range s.tiles[from:to] {
		f = append(f, t...)
	}
	end, _ := env.Transmit(f)
	return end
}

func (s *schcEndpoint) control(kind byte, id uint32) []byte {
	f := make([]byte, schcL2+schcHeader)
	f[0] = kind
	binary.BigEndian.PutUint32(f[1:], id)
	return f
}

// await arms the retransmission timer: our last frame leaves at end, the
// receiver answers at once with an ACK of at most schcMaxAck bytes.
func (s *schcEndpoint) await(env Env, end time.Time) {
	s.waiting = true
	env.SetTimer(schcTimer, end.Sub(env.Now())+env.Airtime(schcMaxAck)+schcMargin)
}

func (s *schcEndpoint) OnTimer(env Env, id int) {
	if id == schcPause {
		if s.pausing {
			s.pump(env)
		}
		return
	}
	if !s.waiting {
		return
	}
	s.attempts++
	if s.attempts > schcMaxAckReqs {
		s.waiting = false
		env.Transmit(s.control(schcAbort, s.msgID))
		env.Fail(fmt.Errorf("%w: %d ACK REQs unanswered", ErrRetries, schcMaxAckReqs))
		return
	}
	end, _ := env.Transmit(s.control(schcAckReq, s.msgID))
	s.await(env, end)
}

func (s *schcEndpoint) OnFrame(env Env, f []byte) {
	if len(f) < schcL2+schcHeader {
		return
	}
	id := binary.BigEndian.Uint32(f[1:])
	switch f[0] {
	case schcAck:
		s.onAck(env, id, f)
	case schcCACK:
		s.onCompoundAck(env, id, f[schcL2:])
	case schcFrag, schcAll0, schcAll1:
		s.onFragment(env, id, f)
	case schcAckReq:
		if id != s.rxID {
			// Every fragment was lost: start the packet from nothing.
			s.rxID, s.rxT, s.rxN, s.rxDone = id, map[int][]byte{}, -1, false
		}
		s.ack(env)
	case schcAbort:
		if id == s.rxID && !s.rxDone {
			s.rxT = nil
		}
	}
}

func (s *schcEndpoint) onAck(env Env, id uint32, f []byte) {
	if id != s.msgID || !s.waiting && !s.pausing {
		return
	}
	w := int(binary.BigEndian.Uint16(f[6:]))
	s.noteGaps(w, f[schcL2:], 3)
	if s.pausing {
		// ACK-on-error after an All-0: note the gaps, go on with the first
		// pass, repair after the All-1.
		env.StopTimer(schcPause)
		s.pump(env)
		return
	}
	if f[5] == 1 { // C: packet complete, RCS checked
		env.StopTimer(schcTimer)
		s.waiting = false
		return
	}
	s.repair(env)
}

// noteGaps records the tiles window w's bitmap (starting at bit off of b)
// reports missing.
func (s *schcEndpoint) noteGaps(w int, b []byte, off int) {
	n := len(s.tiles)
	for i := w * schcWindow; i < min((w+1)*schcWindow, n); i++ {
		if !bitSet(b, off+i-w*schcWindow) {
			s.pending[i] = true
		}
	}
}

// onCompoundAck reads C (1 bit) then (W, bitmap) pairs; the last bitmap
// is compressed and the padding is ones.
func (s *schcEndpoint) onCompoundAck(env Env, id uint32, b []byte) {
	if id != s.msgID || !s.waiting || len(b) == 0 {
		return
	}
	pos := 1
	for pos+schcCompW+1 <= 8*len(b) {
		w := 0
		for range schcCompW {
			w = w<<1 | boolInt(bitSet(b, pos))
			pos++
		}
		s.noteGaps(w, b, pos)
		pos += schcWindow
	}
	s.repair(env)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// repair resends every tile known missing, in runs of at most 24 tiles,
// then asks for the next ACK.
func (s *schcEndpoint) repair(env Env) {
	env.StopTimer(schcTimer)
	s.waiting = false
	s.attempts = 0
	n := len(s.tiles)
	var end time.Time
	sentAll1 := false
	for i := 0; i < n; {
		if !s.pending[i] {
			i++
			continue
		}
		j := i + 1
		for j < n && j-i < schcFragTiles && s.pending[j] {
			j++
		}
		if j == n && j-i == schcFragTiles {
			j-- // an All-1 has room for 23 tiles beside the RCS
		}
		end = s.sendTiles(env, i, j, false)
		sentAll1 = sentAll1 || j == n
		i = j
	}
	clear(s.pending)
	if !sentAll1 || end.IsZero() {
		end, _ = env.Transmit(s.control(schcAckReq, s.msgID))
	}
	s.await(env, end)
}

// bitSet reads bit i (MSB first) of a compressed bitmap: bits past its end
// are ones, as RFC 8724 §8.4.3 compression implies.
func bitSet(b []byte, i int) bool {
	if i/8 >= len(b) {
		return true
	}
	return b[i/8]&(0x80>>(i%8)) != 0
}

func (s *schcEndpoint) onFragment(env Env, id uint32, f []byte) {
	if id != s.rxID {
		s.rxID, s.rxT, s.rxN, s.rxDone = id, map[int][]byte{}, -1, false
	}
	if s.rxDone || s.rxT == nil {
		if f[0] == schcAll1 {
			s.ack(env)
		}
		return
	}
	first := int(binary.BigEndian.Uint32(f[5:]) & 0xfffff)
	if first >= schcMaxTiles {
		return
	}
	body := f[schcL2+schcHeader:]
	if f[0] == schcAll1 {
		if len(body) < schcRCS {
			return
		}
		s.rxRCS = binary.BigEndian.Uint32(body)
		body = body[schcRCS:]
		s.rxN = first + max((len(body)+schcTile-1)/schcTile, 1)
	}
	for i := 0; i*schcTile < len(body) || i == 0 && len(body) == 0; i++ {
		s.rxT[first+i] = append([]byte{}, body[i*schcTile:min((i+1)*schcTile, len(body))]...)
	}
	switch f[0] {
	case schcAll1:
		s.ack(env)
	case schcAll0:
		s.ackWindowEnd(env, first, first+(len(body)+schcTile-1)/schcTile)
	}
}

// ackWindowEnd sends ACK-on-error after an All-0 carrying tiles [from, to):
// a bitmap for the window it ends if that window has missing tiles, nothing
// otherwise.
func (s *schcEndpoint) ackWindowEnd(env Env, from, to int) {
	w := to/schcWindow - 1 // the window whose last tile is in [from, to)
	bits := make([]bool, schcWindow)
	complete := true
	for i := range bits {
		_, bits[i] = s.rxT[w*schcWindow+i]
		complete = complete && bits[i]
	}
	if !complete {
		env.Transmit(s.ackFrame(w, false, bits))
	}
}

// ack answers an All-1 or ACK REQ: C=1 when the packet is whole and its RCS
// matches (delivering it the first time), else the bitmap of the lowest
// window with a missing tile.
func (s *schcEndpoint) ack(env Env) {
	if s.rxDone {
		env.Transmit(s.ackFrame(0, true, nil))
		return
	}
	if s.rxT == nil {
		return
	}
	limit := s.rxN
	if limit < 0 {
		// All-1 not seen: everything up to the highest tile seen, plus one.
		for i := range s.rxT {
			limit = max(limit, i+2)
		}
	}
	limit = max(limit, 1)
	miss := -1
	for i := 0; i < limit; i++ {
		if _, ok := s.rxT[i]; !ok {
			miss = i
			break
		}
	}
	if miss < 0 && s.rxN >= 0 {
		var msg []byte
		for i := 0; i < s.rxN; i++ {
			msg = append(msg, s.rxT[i]...)
		}
		if crc32.ChecksumIEEE(msg) != s.rxRCS {
			// A corrupted tile slipped past the PHY CRC: RFC 8724 has the
			// receiver abort; the message is lost.
			s.rxT = nil
			env.Transmit(s.ackFrame(0, true, nil)) // Receiver-Abort, same size as a C=1 ACK
			return
		}
		s.rxDone = true
		env.Deliver(msg)
		env.Transmit(s.ackFrame(0, true, nil))
		return
	}
	if s.compound {
		env.Transmit(s.compoundAck(miss/schcWindow, (limit-1)/schcWindow))
		return
	}
	w := miss / schcWindow
	env.Transmit(s.ackFrame(w, false, s.windowBits(w)))
}

// windowBits is window w's bitmap: received tiles, and tiles past the end
// of the packet, are ones.
func (s *schcEndpoint) windowBits(w int) []bool {
	bits := make([]bool, schcWindow)
	for i := range bits {
		t := w*schcWindow + i
		_, ok := s.rxT[t]
		bits[i] = ok || (s.rxN >= 0 && t >= s.rxN)
	}
	return bits
}

// compoundAck lists windows from..to that have missing tiles, as many as
// fit one frame: C=0, then per window 6 bits of W and 63 bits of bitmap,
// the last bitmap cut after its last zero, padded with ones.
func (s *schcEndpoint) compoundAck(from, to int) []byte {
	var bits []bool
	bits = append(bits, false) // C
	for w := from; w <= to; w++ {
		wb := s.windowBits(w)
		complete := true
		for _, b := range wb {
			complete = complete && b
		}
		if complete {
			continue
		}
		if 13*8+len(bits)+schcCompW+schcWindow > 8*lora.MaxFrame {
			break
		}
		for k := schcCompW - 1; k >= 0; k-- {
			bits = append(bits, w>>k&1 == 1)
		}
		bits = append(bits, wb...)
	}
	last := len(bits) - 1
	for last > 0 && bits[last] {
		last--
	}
	bits = bits[:last+1]
	f := make([]byte, schcL2+(len(bits)+7)/8)
	f[0] = schcCACK
	binary.BigEndian.PutUint32(f[1:], s.rxID)
	for i := range 8 * (len(f) - schcL2) {
		if i >= len(bits) || bits[i] {
			f[schcL2+i/8] |= 0x80 >> (i % 8)
		}
	}
	return f
}

// ackFrame builds an ACK: 13 bytes of LoRaWAN overhead carrying our
// bookkeeping, then W (2 bits), C (1 bit) and the bitmap with its trailing
// ones removed, padded to a byte.
func (s *schcEndpoint) ackFrame(w int, c bool, bits []bool) []byte {
	last := -1
	for i, b := range bits {
		if !b {
			last = i
		}
	}
	nbits := 3 + last + 1
	f := make([]byte, schcL2+(nbits+7)/8)
	f[0] = schcAck
	binary.BigEndian.PutUint32(f[1:], s.rxID)
	if c {
		f[5] = 1
	}
	binary.BigEndian.PutUint16(f[6:], uint16(w))
	for i := 0; i <= last; i++ {
		if bits[i] {
			f[schcL2+(3+i)/8] |= 0x80 >> ((3 + i) % 8)
		}
	}
	// Padding bits after the last zero are ones, as compression requires.
	for i := 3 + last + 1; i < 8*(len(f)-schcL2); i++ {
		f[schcL2+i/8] |= 0x80 >> (i % 8)
	}
	return f
}
