package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio"
)

// OverLink carries the relay's requests over a chunking link and sorts the
// link's failures into the relay's error classes.
func OverLink(l *chunking.Link) Exchanger { return linkExchanger{l} }

type linkExchanger struct{ l *chunking.Link }

func (x linkExchanger) Exchange(ctx context.Context, to Peer, payload []byte) (Result, error) {
	reply, st, err := x.l.Request(ctx, chunking.Addr(to.Addr), payload)
	res := Result{Reply: reply, RSSI: st.RSSI, SNR: st.SNR, Airtime: st.Airtime,
		Frames: st.Frames + st.Received, Retries: st.Retries}
	if err == nil {
		return res, nil
	}
	var remote *chunking.RemoteError
	switch {
	case errors.Is(err, chunking.ErrTooLarge):
		err = fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, chunking.ErrPeerBusy):
		err = fmt.Errorf("%w: %s: %w", ErrPeerBusy, to, err)
	case errors.Is(err, chunking.ErrNoAck), errors.Is(err, chunking.ErrRefused):
		err = fmt.Errorf("%w: %s: %w", ErrPeerUnreachable, to, err)
	case errors.Is(err, chunking.ErrUnknownPeer):
		err = fmt.Errorf("%w: %s is not configured on the link: %w", ErrPeerUnreachable, to, err)
	case errors.As(err, &remote):
		err = fmt.Errorf("%w: %s: %w", ErrPeerBusy, to, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	case errors.Is(err, chunking.ErrClosed), errors.Is(err, radio.ErrClosed), errors.Is(err, radio.ErrTimeout),
		errors.Is(err, radio.ErrNoDevice), errors.Is(err, radio.ErrDwellTime), errors.Is(err, radio.ErrDutyCycle):
		err = fmt.Errorf("%w: %w", ErrRadio, err)
	default:
		err = fmt.Errorf("%w: %w", ErrRadio, err)
	}
	return res, err
}
