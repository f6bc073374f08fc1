// Package linkbench measures how efficiently a link protocol moves messages
// over a lossy LoRa channel, on the deterministic discrete-event medium of
// radio/sim in virtual time.
//
// A link scheme is written sans-IO: its Endpoint reacts to a message to
// send, a received frame or a timer, and acts through an Env (transmit a
// frame, set a timer, deliver a message). The harness runs one transfer (or
// one request/answer exchange) per seed and measures the application bytes
// delivered intact, the airtime spent in both directions and failures.
//
// The figure of merit is the goodput ratio: delivered application bytes ÷
// total airtime in both directions ÷ the PHY limit, the rate of 255-byte
// frames sent back to back at the same SF/BW/CR with an 8-symbol preamble.
//
// The baselines are built in: Meshtastic-style stop-and-wait (200-byte
// chunks, 3 tries per chunk) and SCHC ACK-on-Error as profiled for LoRaWAN
// by RFC 9011, without security, with per-window ACKs (RFC 8724) or with
// compound ACKs (RFC 9441). The nexfield link (package chunking) is adapted
// to the same harness by chunking/chunkbench.
package linkbench
