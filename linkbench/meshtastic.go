package linkbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
)

// Meshtastic is the stop-and-wait baseline, modelled on how Meshtastic
// clients move long text: the message is cut into 200-byte chunks, each sent
// as its own packet with a 16-byte header and about 7 bytes of protobuf,
// acknowledged by a 27-byte routing ACK, tried at most 3 times
// (NUM_RELIABLE_RETX), with a 16-symbol preamble. A chunk that fails 3 times
// fails the message. Meshtastic has no fragmentation of its own: chunk
// numbers travel in the header bytes here, which the real firmware does not
// have, so the model is, if anything, kind to it.
type Meshtastic struct{}

// Meshtastic frame sizes.
const (
	meshChunk  = 200
	meshHeader = 16 + 7
	meshAck    = 27
	meshTries  = 3
)

// ErrRetries is passed to Fail when a scheme runs out of tries.
var ErrRetries = errors.New("linkbench: retries exhausted")

func (Meshtastic) Name() string { return "meshtastic" }

func (Meshtastic) Params(base lora.Params) lora.Params {
	base.PreambleSymbols = 16
	return base
}

func (Meshtastic) NewPair(uint64) (Endpoint, Endpoint, error) {
	return &meshEndpoint{}, &meshEndpoint{}, nil
}

type meshEndpoint struct {
	// sending side
	nextID uint32
	out    [][]byte
	cur    int
	tries  int
	sendID uint32
	active bool
	// receiving side
	rxID    uint32
	rxParts [][]byte
	rxHave  int
	rxDone  bool
}

const meshTimer = 1

func (m *meshEndpoint) Send(env Env, msg []byte) {
	m.nextID++
	m.sendID = m.nextID
	m.out = m.out[:0]
	for i := 0; i < len(msg) || i == 0; i += meshChunk {
		m.out = append(m.out, msg[i:min(i+meshChunk, len(msg))])
	}
	m.cur, m.tries, m.active = 0, 0, true
	m.transmit(env)
}

func (m *meshEndpoint) transmit(env Env) {
	chunk := m.out[m.cur]
	f := make([]byte, meshHeader+len(chunk))
	f[0] = 'D'
	binary.BigEndian.PutUint32(f[1:], m.sendID)
	binary.BigEndian.PutUint16(f[5:], uint16(m.cur))
	binary.BigEndian.PutUint16(f[7:], uint16(len(m.out)))
	copy(f[meshHeader:], chunk)
	end, err := env.Transmit(f)
	if err != nil {
		m.active = false
		env.Fail(err)
		return
	}
	m.tries++
	// Wait for our frame to leave, the ACK to come back, and a margin.
	env.SetTimer(meshTimer, end.Sub(env.Now())+env.Airtime(meshAck)+time.Second)
}

func (m *meshEndpoint) OnTimer(env Env, id int) {
	if !m.active {
		return
	}
	if m.tries >= meshTries {
		m.active = false
		env.Fail(fmt.Errorf("%w: chunk %d after %d tries", ErrRetries, m.cur, m.tries))
		return
	}
	m.transmit(env)
}

func (m *meshEndpoint) OnFrame(env Env, f []byte) {
	switch {
	case len(f) == meshAck && f[0] == 'A':
		id, idx := binary.BigEndian.Uint32(f[1:]), int(binary.BigEndian.Uint16(f[5:]))
		if !m.active || id != m.sendID || idx != m.cur {
			return
		}
		env.StopTimer(meshTimer)
		m.cur++
		m.tries = 0
		if m.cur == len(m.out) {
			m.active = false
			return
		}
		m.transmit(env)
	case len(f) >= meshHeader && f[0] == 'D':
		id := binary.BigEndian.Uint32(f[1:])
		idx, total := int(binary.BigEndian.Uint16(f[5:])), int(binary.BigEndian.Uint16(f[7:]))
		if total == 0 || idx >= total {
			return
		}
		ack := make([]byte, meshAck)
		ack[0] = 'A'
		copy(ack[1:7], f[1:7])
		env.Transmit(ack)
		if id != m.rxID {
			m.rxID, m.rxParts, m.rxHave, m.rxDone = id, make([][]byte, total), 0, false
		}
		if m.rxDone || total != len(m.rxParts) || m.rxParts[idx] != nil {
			return
		}
		m.rxParts[idx] = append([]byte{}, f[meshHeader:]...)
		m.rxHave++
		if m.rxHave == total {
			m.rxDone = true
			var msg []byte
			for _, p := range m.rxParts {
				msg = append(msg, p...)
			}
			env.Deliver(msg)
		}
	}
}
