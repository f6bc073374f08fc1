// Package rylrsim emulates a REYAX RYLR998 LoRa module behind a
// pseudo-terminal, so the real rylr driver (and a technician's terminal
// program) can talk to it through a real tty: the AT command set, its +ERR
// codes, the UART's byte time at the configured baud, the module's time on
// air, +RESET/+READY on reset, and either binary-safe or text-only handling
// of AT+SEND data.
//
// Frames go out over a pluggable air, any radio.Radio: the in-process Ether
// here, or a radio/sim radio for the simulated channel. On air each frame
// carries 8 bytes of the emulator's own before the data, as the real module
// adds 8 hidden bytes: network id, source and destination address, length
// and a digest of the radio settings, so modules on another network id,
// frequency, SF or bandwidth do not hear each other.
//
// Where the AT guides are silent the emulator picks one behaviour and says
// so: values out of range answer +ERR=4; in text-only mode AT+SEND data ends
// at the first CR, LF or NUL, so binary data yields +ERR=5.
package rylrsim
