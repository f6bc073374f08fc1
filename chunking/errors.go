package chunking

import "errors"

// RemoteError is the error text the peer's handler returned.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "chunking: peer handler: " + e.Msg }

// Errors callers branch on.
var (
	// ErrInvalidOpts wraps every configuration error.
	ErrInvalidOpts = errors.New("chunking: invalid options")
	// ErrTooLarge: the message exceeds MaxMessage (ours or the peer's).
	ErrTooLarge = errors.New("chunking: message too large")
	// ErrNoAck: the retry budget of ACK requests ran out.
	ErrNoAck = errors.New("chunking: peer does not acknowledge")
	// ErrRefused: the peer refused the message (restarted mid-exchange,
	// out of buffer space, or the message failed its integrity check).
	ErrRefused = errors.New("chunking: peer refused the message")
	// ErrUnknownPeer: the address is not among the configured peers.
	ErrUnknownPeer = errors.New("chunking: unknown peer")
	// ErrUnknownMessage: Reply or Cancel named no live message.
	ErrUnknownMessage = errors.New("chunking: no such message")
	// ErrCanceled: Cancel was called.
	ErrCanceled = errors.New("chunking: canceled")
)
