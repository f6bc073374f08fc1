package chunking

import "context"

// Overhead is the number of bytes each frame spends on header and tag, so
// callers can tell how many frames a message takes.
func (l *Link) Overhead() int { return l.e.Overhead() }

// Flush waits until no frame is queued or on the air, or ctx ends. A process
// that stops right after its last exchange calls it before Close, so the
// acknowledgement of the last reply still goes out and the peer is not left
// asking for it (and holding the channel) until its retry budget runs out.
func (l *Link) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	l.mu.Lock()
	l.flushers = append(l.flushers, ch)
	l.mu.Unlock()
	l.poke()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
}

// releaseFlushers wakes Flush callers once nothing is left to send; the
// caller holds mu.
func (l *Link) releaseFlushers() {
	if len(l.flushers) == 0 || l.e.pending() {
		return
	}
	for _, ch := range l.flushers {
		close(ch)
	}
	l.flushers = nil
}
