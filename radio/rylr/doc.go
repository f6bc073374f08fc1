// Package rylr drives REYAX RYLR998 and RYLR896 LoRa modules, which a host
// talks to over a UART with AT commands, as a radio.Radio.
//
// One goroutine reads the serial line with a short timeout and splits it
// into responses; +RCV lines are framed by their length field, so payloads
// may contain commas, CR, LF or NUL. Commands are serialised, every call
// honours its context, and the driver re-applies its settings when the
// module reboots (+READY) and resets it (reset pin or AT+RESET) when it stops
// answering.
//
// The module adds 8 bytes of its own to every frame on air; Send waits out
// the frame's time on air after the module accepts it, refuses frames that
// break the region's dwell or duty-cycle rules before they reach the module,
// and MTU accounts for both.
//
// # Datasheets
//
//   - REYAX "RYLR998/RYLR498 AT command guide" (RYLR998 settings and +ERR codes).
//   - REYAX "LoRa AT command RYLR40x/RYLR89x" 2018/2022 (RYLR896).
//
// Errata and undocumented behaviour the driver works around: the guides do
// not say whether CR, LF or NUL survive inside AT+SEND data, so Opts.Encoding
// can base64-encode payloads (180 raw bytes per frame instead of 240); each
// AT+ setting is written to the module's flash, so the driver queries first
// and writes only what differs.
package rylr
