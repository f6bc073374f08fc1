// Package sx127xsim emulates an SX1276 LoRa transceiver at register level
// behind periph.io's spi.Port/spi.Conn, with its DIO0 and RESET pins as
// periph gpio pins, so the sx127x driver runs unmodified in tests.
//
// Modelled: the register file with its reset values, the 256-byte FIFO and
// its address pointer with burst access, sleep/standby/TX/RX-continuous
// modes (LongRangeMode writable in sleep only), TxDone after the exact time
// on air computed from the modem registers, RxDone with PayloadCrcError,
// packet SNR/RSSI encoded as the chip does, DIO0 mapping (RxDone/TxDone),
// and a hardware reset through the RESET pin. Faults for tests: another
// version register value, a DIO0 that never rises, a transmitter that never
// finishes.
package sx127xsim
