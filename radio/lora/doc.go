// Package lora is the physics and regulatory arithmetic of a LoRa link: time
// on air of a frame, the largest frame that fits a dwell limit, and the
// region rules (US915 dwell time, EU868 duty-cycle budgets) that drivers and
// the simulated medium enforce before they transmit.
//
// The package is pure: no I/O, no goroutines, no clock of its own. Time on
// air uses Semtech's exact integer quarter-symbol form (the one in
// LoRaMac-node's SX1276GetLoRaTimeOnAirNumerator / SX126x equivalents), so
// results are exact to the nanosecond instead of being rounded to whole
// symbols as some public implementations do.
//
// # Sources
//
//   - Semtech AN1200.13 "LoRa Modem Designer's Guide" and SX1276 datasheet
//     §4.1.1.6 (time-on-air formula).
//   - Lora-net/LoRaMac-node src/radio/sx1276/sx1276.c (integer form, LDRO
//     rule, SF5/SF6 preamble and symbol rules).
//   - LoRaWAN Regional Parameters (US902-928 dwell, EU863-870 sub-bands).
package lora
