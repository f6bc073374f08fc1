package chunking

import "time"

// The engine's timers, each defined once. They are built from the radio's
// airtime and the options, so they scale with the spreading factor and
// bandwidth; the two slacks are the only fixed parts.

const (
	// answerSlack is added to every wait for an answer: both stations'
	// scheduling (an OS, a serial line to a module) lies between a frame's
	// end and the start of the answer to it, beyond the turnarounds.
	answerSlack = 50 * time.Millisecond
	// burstSlack is added to the wait for the next fragment of a burst:
	// its frames leave back to back, so only the sender's own scheduling
	// lies between them.
	burstSlack = 20 * time.Millisecond
	// maxAckBody caps the body of an ACK or RACK. An ACK stays a short
	// frame (60 bytes with header and tag, 113 ms at SF7/BW125), and its
	// 46 bytes of bitmap after the first gap still cover 368 fragments:
	// all 270 of a 64 KiB message in 255-byte frames.
	maxAckBody = 48

	// defaultRetryBudget is how long a message sits out its peer's silence
	// when its sender set no deadline: a minute-long outage (a vehicle
	// parked in front of the antenna, a power cycle of the peer) plus the
	// longest spaced-out poll after it.
	defaultRetryBudget = 2 * time.Minute
	// minRetryBudget keeps the budget above what ordinary frame loss costs:
	// at 50 % loss both ways, 8 fast ACK requests all fail with p ≈ 1e-1
	// per round, and the spaced-out ones that follow need a few seconds.
	minRetryBudget = 10 * time.Second
	// fastPolls ACK requests in a row go at the base interval: at 30 % loss
	// an ACK round trip fails with p = 0.51, so a run of 8 failures
	// (p = 0.005) is rare under i.i.d. loss and a lost ACK costs no more
	// than it always did. Past them the peer is in a fade or gone.
	fastPolls = 8
	// pollCapFactor caps the spaced-out interval at this many base
	// intervals: a 15-byte POLL every 16 ACK waits keeps polling under
	// 2 % of the airtime (46 ms every 2.9 s at SF7/BW125), and a fade that
	// ends is noticed within one cap.
	pollCapFactor = 16
)

// answerAt is the earliest an answer to a frame that ended at now may go:
// the other radio needs Turnaround to switch from sending to receiving.
func (e *Engine) answerAt(now time.Time) time.Time { return now.Add(e.o.Turnaround) }

// ackWait is how long the sender of a frame that asks for an answer (the
// end of a burst, a POLL, an RPOLL) waits for it before asking again: both
// turnarounds, the longest ACK, and slack.
func (e *Engine) ackWait() time.Duration {
	return 2*e.o.Turnaround + e.o.Airtime(hdrLen+e.tagLen+e.ackLimit) + answerSlack
}

// resendWait is how long a receiver whose ACK listed gaps waits for the
// answer, a resent fragment: both turnarounds, a whole frame, and slack.
func (e *Engine) resendWait() time.Duration {
	return 2*e.o.Turnaround + e.o.Airtime(e.o.MTU) + answerSlack
}

// replyAllowance is added to the wait after a request's last fragment: the
// answer may be the first fragment of the reply, after the handler's grace.
func (e *Engine) replyAllowance() time.Duration { return e.o.ReplyGrace + e.o.Airtime(e.o.MTU) }

// rackAllowance is added to a replier's wait for the RACK when it cannot
// sense the channel: the requester may acknowledge with its next message,
// which can start RackDelay later and take a whole frame, and an RPOLL
// before then would talk over it.
func (e *Engine) rackAllowance() time.Duration { return e.o.RackDelay + e.o.Airtime(e.o.MTU) }

// burstGap is how long after a fragment that does not end its burst the
// next one is due: it is on the air for at most a whole frame, behind both
// turnarounds and slack. Until then the receiver keeps quiet; with carrier
// sense, a burst silent for longer lost its end.
func (e *Engine) burstGap() time.Duration {
	return e.o.Airtime(e.o.MTU) + 2*e.o.Turnaround + burstSlack
}

// answerWait is how long the answer to it, which asked for one, may take.
func (e *Engine) answerWait(it *txItem) time.Duration {
	x := it.x
	if x == nil {
		// Our ACK with gaps: the answer is a resent fragment.
		return e.resendWait()
	}
	wait := e.ackWait()
	early := x.reply && !e.o.CarrierSense
	if early {
		wait += e.rackAllowance()
	}
	if x.state == xSending && x.kind == kindRequest {
		wait += e.replyAllowance()
	}
	return e.retryWait(wait, x.polls, early)
}

// retryWait is the wait after the polls-th ACK request in a row that went
// unanswered, whose base interval is base. The first fastPolls go at the
// base interval; then the interval doubles with each one, with jitter, up
// to pollCap: a fade of T seconds costs about fastPolls + log2(pollCap /
// base) + T / pollCap requests (README, "Retry budget"). early starts the
// jitter after two requests: a replier whose RPOLLs go unanswered backs off
// so that an empty address does not hold the channel in step with other
// stations' timers.
func (e *Engine) retryWait(base time.Duration, polls int, early bool) time.Duration {
	switch {
	case polls > fastPolls:
		d := min(e.pollCap(), base<<min(polls-fastPolls, 16))
		return d - time.Duration(e.rng.Int64N(int64(d)/4+1))
	case early && polls > 2:
		return min(e.pollCap(), base+time.Duration(e.rng.Int64N(int64(base)))<<min(polls-2, 3))
	}
	return base
}

// pollCap is the longest interval between two ACK requests about one
// message: pollCapFactor ACK waits, or the longest base interval (a
// request's, or a replier's without carrier sense) if that is longer.
func (e *Engine) pollCap() time.Duration {
	return max(pollCapFactor*e.ackWait(), e.ackWait()+e.replyAllowance()+e.rackAllowance())
}

// inactivity is the default Inactivity: the longest a sender with the
// same RetryBudget may be silent about its message and still come back.
// Its silence clock starts at its first unanswered ACK request, which may
// follow the last frame we heard by the rest of its burst (at most a
// largest message); it polls for RetryBudget, its requests at most pollCap
// apart, and the last may be answered by a resent fragment.
func (e *Engine) inactivity() time.Duration {
	frags := (e.maxSealed() + e.maxPayload() - 1) / e.maxPayload()
	return time.Duration(frags)*e.burstGap() + e.o.RetryBudget + e.pollCap() + e.resendWait()
}

// budgetSpent reports whether x, whose answer is overdue at now, has sat
// out its peer's silence for long enough: until the deadline its sender
// set, or else for RetryBudget since its first unanswered ACK request.
func (e *Engine) budgetSpent(x *xfer, deadline, now time.Time) bool {
	if !deadline.IsZero() {
		return !now.Before(deadline)
	}
	return x.polls > 0 && now.Sub(x.silent) >= e.o.RetryBudget
}

// askAgainWithin is how long a peer whose retry timer is wait may take to
// ask again for a final acknowledgement of ours that it lost: the timer,
// the question's airtime and our turnaround, twice, since the first
// question may be lost too.
func (e *Engine) askAgainWithin(wait time.Duration) time.Duration {
	return 2 * (wait + e.o.Airtime(hdrLen+pollExt+e.tagLen) + e.o.Turnaround)
}

// rackSettles is askAgainWithin for our final RACK: the replier sends an
// RPOLL after ackWait, plus the RACK allowance if it cannot sense the
// channel, which we cannot tell from here.
func (e *Engine) rackSettles() time.Duration {
	return e.askAgainWithin(e.ackWait() + e.rackAllowance())
}

// ackSettles is askAgainWithin for the complete ACK of a message of kind
// k: its sender POLLs after the wait it set on its last fragment.
func (e *Engine) ackSettles(k fragKind) time.Duration {
	wait := e.ackWait()
	if k == kindRequest {
		wait += e.replyAllowance()
	}
	return e.askAgainWithin(wait)
}

// Backoff returns a random wait before retrying a transmission on a busy
// channel: one to eight short-frame airtimes.
func (e *Engine) Backoff() time.Duration {
	return e.o.Turnaround + time.Duration(1+e.rng.IntN(8))*e.o.Airtime(hdrLen+e.tagLen)
}

// replyCheck is when a requester whose request was acknowledged at now
// asks whether the silent peer still has it; zero: never.
func (e *Engine) replyCheck(now time.Time) time.Time {
	if e.o.ReplyCheck <= 0 {
		return time.Time{}
	}
	return now.Add(e.o.ReplyCheck)
}

// budgetLoss is the frame loss Budget allows for, both ways: the worst the
// link is measured to carry without failures (README, "Measured").
const budgetLoss = 0.3

// Budget is how long an exchange of a request of request bytes and a reply
// of reply bytes (0: a one-way message) may take on this link: both
// messages' fragments at budgetLoss, the ACK rounds, and one fade as long as
// RetryBudget. Callers size their deadlines with it, and refuse at once
// what cannot make it within theirs.
func (e *Engine) Budget(request, reply int) time.Duration {
	air := func(n int) time.Duration {
		data := n + crcLen
		p := e.chooseFrag(data)
		frags := (data + p - 1) / p
		frames := time.Duration(frags-1)*e.o.Airtime(p+hdrLen+e.tagLen) + e.o.Airtime(data-(frags-1)*p+hdrLen+e.tagLen)
		// A burst of frags frames at loss q needs about log(frags)/-log(q)
		// + 1 ACK rounds; allow one round per 8 fragments, at least two.
		rounds := time.Duration(max(2, frags/8))
		return time.Duration(float64(frames)/(1-budgetLoss)) + rounds*(e.ackWait()+e.o.Airtime(hdrLen+pollExt+e.tagLen))
	}
	t := air(request) + e.replyAllowance() + e.o.RetryBudget
	if reply > 0 {
		t += air(reply) + e.rackAllowance()
	}
	return t
}
