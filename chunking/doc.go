// Package chunking is nexfield's link protocol: it moves messages far
// larger than one LoRa frame across a lossy, half-duplex, open-air channel
// whole, once, authentic and fast, between several radios sharing one
// channel.
//
// The protocol core, Engine, is sans-I/O and deterministic: it is fed
// received frames and the current time, it is asked for the next frame to
// transmit and for its next deadline, and it yields Events (requests and
// replies delivered, one-way messages acknowledged, failures, progress). It
// starts no goroutine and reads no clock, so the same code runs on a real
// radio (Link), in testing/synctest, and on the discrete-event simulator
// of linkbench (package chunkbench), where a 16 KiB transfer takes
// microseconds of wall time.
//
// Link wraps an Engine around a radio.Radio with goroutines and a
// clock.Clock, and offers Request and Serve.
//
// # Protocol in one paragraph
//
// A message (request, one-way message or reply) gets a CRC-32, is cut into
// fragments sized to the radio's MTU (frame lengths that end on a LoRa
// symbol-block boundary are preferred), and is sent as one burst; the last
// fragment asks for an ACK. The receiver answers with a compressed bitmap
// of what it has, the sender resends only what is missing (selective
// repeat), and so on until everything has arrived; a lost ACK is recovered
// by a POLL, spaced out as the silence grows, and once the sender's
// deadline (or RetryBudget of silence) has passed the message is aborted. A request is acknowledged by its reply, and the reply by one
// short RACK, or by the requester's next message to that peer when it
// follows within RackDelay. Every frame, ACKs included, is sealed with AES-128-CCM (8-byte
// tag) under per-direction keys derived with HKDF from a pre-shared key;
// the nonce (32-bit message counter, fragment index, frame type) is never
// sent: a frame carries a 4-byte header. Counters are reserved ahead of use
// in a CounterStore, so a power cut never reuses a nonce. See README.md for
// the frame format, the security design and measured figures.
//
// # Driving an Engine
//
// The I/O layer owns the radio and the timer; this is the whole loop:
//
//	e, _ := chunking.NewEngine(1, psk, &chunking.EngineOpts{Peers: []chunking.Addr{2}, MTU: r.MTU()})
//	id, _ := e.Send(now, 2, request, false)    // or e.Reply(now, ev.ID, answer, false)
//	for {
//		for ev, ok := e.Event(); ok; ev, ok = e.Event() {
//			// EventRequest: run the handler, then e.Reply(now, ev.ID, answer, false).
//			// EventReply with ev.ID == id: done (ev.Err: the peer's handler failed).
//			// EventFailed: ev.Err; EventProgress: ev.Sent, ev.Acked, ev.Total.
//		}
//		if !transmitting && e.Ready(now) {
//			if channelBusy { wait(e.Backoff()); continue }   // listen before talk
//			transmit(e.NextFrame(now))                          // then, when it has left the antenna:
//			e.TxDone(now, err)
//		}
//		deadline, ok := e.Deadline()                      // sleep until then (or the back-off's end), or until a frame:
//		e.Receive(now, frame, rssi, snr)                  // or, when the deadline passes:
//		e.Tick(now)
//	}
//	// Before stopping: keep the loop going until e.Settled(now).
//
// Package chunkbench is a complete adapter of this loop to linkbench.
package chunking
