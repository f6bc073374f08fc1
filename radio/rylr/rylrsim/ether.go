package rylrsim

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/nexfield/nexfield/radio"
)

// Ether is the simplest air: every frame one radio sends reaches every other
// radio on the same Ether at once, with fixed signal quality. It has no
// airtime, loss or collisions of its own (the modules time their
// transmissions); use radio/sim for a channel model.
type Ether struct {
	mu     sync.Mutex
	radios []*etherRadio
	// RSSI and SNR are reported for every delivered frame.
	RSSI, SNR float64
}

// NewEther returns an empty Ether with RSSI -42 dBm and SNR 9 dB.
func NewEther() *Ether { return &Ether{RSSI: -42, SNR: 9} }

// Radio attaches a new radio to the Ether.
func (e *Ether) Radio() radio.Radio {
	r := &etherRadio{e: e, in: make(chan radio.Frame, 64), done: make(chan struct{})}
	e.mu.Lock()
	e.radios = append(e.radios, r)
	e.mu.Unlock()
	return r
}

type etherRadio struct {
	e    *Ether
	in   chan radio.Frame
	done chan struct{}
	once sync.Once
}

func (r *etherRadio) Send(ctx context.Context, p []byte) error {
	select {
	case <-r.done:
		return radio.ErrClosed
	default:
	}
	if len(p) > r.MTU() {
		return radio.ErrFrameTooLarge
	}
	r.e.mu.Lock()
	peers := append([]*etherRadio(nil), r.e.radios...)
	rssi, snr := r.e.RSSI, r.e.SNR
	r.e.mu.Unlock()
	for _, o := range peers {
		if o == r {
			continue
		}
		select {
		case o.in <- radio.Frame{Payload: bytes.Clone(p), RSSI: rssi, SNR: snr, Time: time.Now()}:
		default: // a receiver that does not keep up loses frames, as on air
		}
	}
	return nil
}

func (r *etherRadio) Receive(ctx context.Context) (radio.Frame, error) {
	select {
	case f := <-r.in:
		return f, nil
	case <-ctx.Done():
		return radio.Frame{}, ctx.Err()
	case <-r.done:
		return radio.Frame{}, radio.ErrClosed
	}
}

func (r *etherRadio) MTU() int { return 255 }

func (r *etherRadio) Close() error {
	r.once.Do(func() {
		close(r.done)
		r.e.mu.Lock()
		for i, o := range r.e.radios {
			if o == r {
				r.e.radios = append(r.e.radios[:i], r.e.radios[i+1:]...)
				break
			}
		}
		r.e.mu.Unlock()
	})
	return nil
}
