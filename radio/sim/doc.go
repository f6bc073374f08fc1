// Package sim is the simulated air: a shared LoRa channel on which every
// node hears every other, with airtime from radio/lora, half-duplex radios,
// collisions, and a configurable channel model (i.i.d. and Gilbert–Elliott
// burst loss, bit corruption that the PHY CRC mostly catches, duplication,
// delay and reordering).
//
// The same channel logic runs in three settings:
//
//   - Medium: a deterministic discrete-event core on a virtual clock. No
//     goroutines, no wall time; for a given seed and sequence of calls the
//     results are identical. Link protocols and benchmarks run here, where a
//     16 KiB transfer over minutes of airtime takes milliseconds.
//   - Air: the channel for goroutine-based code on the time package, whose
//     radios implement radio.Radio, radio.Airtimer and radio.CarrierSenser.
//     Inside a testing/synctest bubble its time is virtual too.
//   - Hub and DialUDP: the channel shared by processes on one machine over
//     loopback UDP, for demos: each process's radio sends its frames to the
//     hub, which applies the channel model and forwards them.
//
// # Channel model
//
// A frame occupies the channel for its time on air. A node that is
// transmitting hears nothing, and a node that starts transmitting loses the
// frame it was receiving. Two transmissions that overlap in time at a
// receiver destroy each other there (no capture effect: with everyone in
// range at similar power, capture would need an SNR margin the model has no
// geometry for, and assuming none is the conservative choice). Frames that
// survive are then subject, independently per receiver, to loss (i.i.d. or
// Gilbert–Elliott per directed link), corruption (dropped as a CRC failure
// unless a configured fraction escapes the CRC and is delivered with
// flipped bits), duplication and extra delay, which reorders frames.
package sim
