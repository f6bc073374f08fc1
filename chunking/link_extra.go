package chunking

import (
	"context"
	"time"
)

// Overhead is the number of bytes each frame spends on header and tag, so
// callers can tell how many frames a message takes.
func (l *Link) Overhead() int { return l.e.Overhead() }

// Budget is how long an exchange of a request of request bytes answered
// with reply bytes may take on this link (Engine.Budget): a deadline sized
// by it survives 30 % frame loss and a fade as long as the retry budget.
func (l *Link) Budget(request, reply int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.Budget(request, reply)
}

// MaxMessage is the largest message the link carries.
func (l *Link) MaxMessage() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.o.MaxMessage
}

// Flush waits until no frame is queued or on the air, or ctx ends.
func (l *Link) Flush(ctx context.Context) error { return l.wait(ctx, false) }

// Drain keeps the link on the air until it can stop without leaving a
// peer behind (Engine.Settled), or ctx ends: what is queued has gone out,
// a reply of ours has been acknowledged, and a peer that lost our last
// acknowledgement has had the time to ask for it again, and got it. The
// final RACK of an exchange is the frame nobody acknowledges: a peer that
// lost it keeps asking for its whole retry budget, minutes in
// which its half-duplex radio is deaf to whoever else talks to it (the
// relay that takes over, say). A process calls Drain before Close; the
// wait is bounded by the peers' retry timers, a second or two at SF7.
func (l *Link) Drain(ctx context.Context) error { return l.wait(ctx, true) }

// drainer is a Flush (settle false) or Drain call waiting for the loop.
type drainer struct {
	done   chan struct{}
	settle bool
}

func (l *Link) wait(ctx context.Context, settle bool) error {
	d := drainer{done: make(chan struct{}), settle: settle}
	l.mu.Lock()
	l.drainers = append(l.drainers, d)
	l.mu.Unlock()
	l.poke()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
}

// releaseDrainers wakes the Flush and Drain callers whose wait is over. It
// returns when the loop must look again for the others, zero if only
// frames can end their wait. The caller holds mu.
func (l *Link) releaseDrainers(now time.Time) time.Time {
	if len(l.drainers) == 0 {
		return time.Time{}
	}
	flushed := !l.e.pending()
	next, settled := l.e.Settled(now)
	keep := l.drainers[:0]
	for _, d := range l.drainers {
		if settled || (flushed && !d.settle) {
			close(d.done)
			continue
		}
		keep = append(keep, d)
	}
	clear(l.drainers[len(keep):])
	l.drainers = keep
	for _, d := range keep {
		if d.settle {
			return next
		}
	}
	return time.Time{}
}
