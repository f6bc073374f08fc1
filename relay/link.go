package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexfield/nexfield/chunking"
)

// OverLink carries the relay's requests over a chunking link. The link's
// failures already belong to the relay's classes (they are the link's);
// what is left, the link closed or the radio failing, is ErrRadio.
func OverLink(l *chunking.Link) Exchanger { return linkExchanger{l} }

type linkExchanger struct{ l *chunking.Link }

func (x linkExchanger) Exchange(ctx context.Context, to Peer, payload []byte) (Result, error) {
	reply, st, err := x.l.Request(ctx, chunking.Addr(to.Addr), payload)
	res := Result{Reply: reply, RSSI: st.RSSI, SNR: st.SNR, Airtime: st.Airtime,
		Frames: st.Frames + st.Received, Retries: st.Retries}
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, chunking.ErrUnknownPeer):
		err = fmt.Errorf("%w: %s is not configured on the link: %w", ErrPeerUnreachable, to, err)
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrRefused), errors.Is(err, ErrPeerBusy),
		errors.Is(err, ErrHandler), errors.Is(err, ErrPeerUnreachable):
		err = fmt.Errorf("%s: %w", to, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	default:
		err = fmt.Errorf("%w: %w", ErrRadio, err)
	}
	return res, err
}
