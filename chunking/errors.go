package chunking

import (
	"errors"
	"fmt"
)

// Errors callers branch on.
var (
	// ErrInvalidOpts wraps every configuration error.
	ErrInvalidOpts = errors.New("chunking: invalid options")
	// ErrTooLarge: the message exceeds MaxMessage (ours or the peer's; a
	// peer's refusal for size is ErrRefused too).
	ErrTooLarge = errors.New("chunking: message too large")
	// ErrUnknownPeer: the address is not among the configured peers.
	ErrUnknownPeer = errors.New("chunking: unknown peer")
	// ErrUnknownMessage: Reply, Busy or Cancel named no live message.
	ErrUnknownMessage = errors.New("chunking: no such message")
	// ErrCanceled: Cancel was called.
	ErrCanceled = errors.New("chunking: canceled")
)

// The classes of a failed exchange with a peer: each failure the peer
// causes or reports is one of them, whether the link or the application
// above it (package exchange) found it, so a caller branches on the class
// with errors.Is and never on the text.
var (
	// ErrUnreachable: the peer did not answer.
	ErrUnreachable = errors.New("chunking: peer unreachable")
	// ErrNoAck: the peer stayed silent past the message's deadline or
	// retry budget.
	ErrNoAck = fmt.Errorf("%w: retry budget spent", ErrUnreachable)
	// ErrPeerBusy: the peer cannot take the message now (its request
	// backlog or its buffers are full); it may be sent again later.
	ErrPeerBusy = errors.New("chunking: peer busy")
	// ErrRefused: the peer will not take the message: the request is not
	// one it carries out, it is too large, it failed its integrity check,
	// or the peer restarted during the exchange (then it may be sent
	// again).
	ErrRefused = errors.New("chunking: peer refused the message")
	// ErrHandler: the peer took the request and its handler failed.
	ErrHandler = errors.New("chunking: peer handler failed")
)

// Code is the class of a peer's error answer as it crosses the air: the
// status byte of an error reply (package exchange). A link-level error
// reply, a Handler's error, is CodeHandler.
type Code uint8

const (
	// CodeHandler: the handler failed (ErrHandler).
	CodeHandler Code = 1
	// CodeBusy: the peer cannot take the request now (ErrPeerBusy).
	CodeBusy Code = 2
	// CodeRefused: the peer will not carry out the request (ErrRefused).
	CodeRefused Code = 3
)

func (c Code) String() string {
	switch c {
	case CodeHandler:
		return "handler failure"
	case CodeBusy:
		return "busy"
	case CodeRefused:
		return "refused"
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// class is the sentinel of c. An unknown code is still a failed answer:
// the handler's.
func (c Code) class() error {
	switch c {
	case CodeBusy:
		return ErrPeerBusy
	case CodeRefused:
		return ErrRefused
	}
	return ErrHandler
}

// RemoteError is a peer's error answer: its class and its text.
// errors.Is matches it against its class (ErrHandler, ErrPeerBusy,
// ErrRefused).
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return "peer: " + e.Msg }

// Is reports whether target is e's class.
func (e *RemoteError) Is(target error) bool { return target == e.Code.class() }

// refusal is the error a REFUSE frame with reason means to the sender.
func refusal(reason int) error {
	switch reason {
	case refuseStale:
		return fmt.Errorf("%w: peer no longer has the message: it restarted, or freed it after a silence longer than its Inactivity", ErrRefused)
	case refuseTooLarge:
		return fmt.Errorf("%w: message too large for the peer (%w)", ErrRefused, ErrTooLarge)
	case refuseCorrupt:
		return fmt.Errorf("%w: message failed its integrity check", ErrRefused)
	case refuseBusy:
		return fmt.Errorf("%w: out of buffer space", ErrPeerBusy)
	case refuseBacklog:
		return fmt.Errorf("%w: request backlog full", ErrPeerBusy)
	}
	return fmt.Errorf("%w: reason %d", ErrRefused, reason)
}
