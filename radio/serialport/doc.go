// Package serialport is the small serial-port seam the UART radio drivers
// use: a byte stream with a read timeout that a second goroutine can close.
//
// Drivers depend on the Port interface, never on a serial library, so the
// library can change and tests can substitute any stream. Open returns the
// production implementation, built on go.bug.st/serial: unlike
// github.com/tarm/serial it unblocks a blocked Read when the port is closed,
// reports a read timeout as "no data" instead of io.EOF, and accepts any read
// timeout rather than tenths of a second (see radio/README-drivers.md for the
// measurements).
package serialport
