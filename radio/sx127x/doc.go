// Package sx127x drives a Semtech SX1276 (or a HopeRF RFM95W, the same chip
// in a module) in LoRa mode over a periph.io SPI port, with its RESET and
// DIO0 pins, as a radio.Radio.
//
// The radio listens in continuous receive whenever it is not sending. One
// goroutine waits for DIO0 edges in short slices, reads and clears the IRQ
// flags, and posts received frames (frames that fail the payload CRC are
// counted and dropped). Send loads the FIFO, maps DIO0 to TxDone and waits
// at most 1.5 times the frame's time on air plus a margin; a transmitter
// that never finishes gets the chip reset and reconfigured.
//
// # Datasheet
//
//   - Semtech SX1276/77/78/79 datasheet rev. 7 (registers §6.4, DIO mapping
//     table 18, RSSI §5.5.5).
//   - Lora-net/LoRaMac-node src/radio/sx1276 (init order, RSSI formula).
//
// Errata and board quirks handled: a DIO0 line that is not wired or does not
// raise edges (seen with wrong pin numbers and on some kernels) is detected
// at the first transmission: TxDone is found in the flags although no edge
// came, and the driver falls back to polling RegIrqFlags. LongRangeMode can
// only be set in sleep mode, so initialisation passes through sleep.
package sx127x
