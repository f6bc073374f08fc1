package sx127x

// reg is an SX1276 register address in LoRa mode (datasheet rev. 7 §6.4,
// table 41; LoRaMac-node sx1276Regs-LoRa.h).
type reg uint8

const (
	regFifo              reg = 0x00
	regOpMode            reg = 0x01
	regFrfMsb            reg = 0x06
	regFrfMid            reg = 0x07
	regFrfLsb            reg = 0x08
	regPaConfig          reg = 0x09
	regOcp               reg = 0x0B
	regLna               reg = 0x0C
	regFifoAddrPtr       reg = 0x0D
	regFifoTxBaseAddr    reg = 0x0E
	regFifoRxBaseAddr    reg = 0x0F
	regFifoRxCurrentAddr reg = 0x10
	regIrqFlagsMask      reg = 0x11
	regIrqFlags          reg = 0x12
	regRxNbBytes         reg = 0x13
	regPktSnrValue       reg = 0x19
	regPktRssiValue      reg = 0x1A
	regModemConfig1      reg = 0x1D
	regModemConfig2      reg = 0x1E
	regPreambleMsb       reg = 0x20
	regPreambleLsb       reg = 0x21
	regPayloadLength     reg = 0x22
	regMaxPayloadLength  reg = 0x23
	regModemConfig3      reg = 0x26
	regDetectOptimize    reg = 0x31
	regDetectionThresh   reg = 0x37
	regSyncWord          reg = 0x39
	regDioMapping1       reg = 0x40
	regVersion           reg = 0x42
	regPaDac             reg = 0x4D
)

// spiWrite is the address bit that makes an access a write.
const spiWrite = 0x80

// chipVersion is what RegVersion reads on an SX1276/77/78/79 and RFM95W.
const chipVersion = 0x12

// RegOpMode (0x01).
const (
	opLoRa     = 0x80 // 1-------  LongRangeMode, writable in sleep only
	opSleep    = 0x00 // -----000
	opStandby  = 0x01 // -----001
	opTx       = 0x03 // -----011
	opRxCont   = 0x05 // -----101
	opModeMask = 0x07
)

// RegIrqFlags (0x12); write 1 to clear.
const (
	irqRxTimeout       = 0x80
	irqRxDone          = 0x40
	irqPayloadCrcError = 0x20
	irqValidHeader     = 0x10
	irqTxDone          = 0x08
	irqAll             = 0xFF
)

// RegDioMapping1 (0x40), DIO0 in bits 7-6 (datasheet table 18).
const (
	dio0RxDone = 0x00 // 00------
	dio0TxDone = 0x40 // 01------
)

// RegPaConfig (0x09) and RegPaDac (0x4D).
const (
	paBoost    = 0x80 // 1-------  PA_BOOST pin instead of RFO
	paMaxPower = 0x70 // -111----  Pmax = 15 dBm (RFO only)
	paDacHigh  = 0x87 // +20 dBm mode on PA_BOOST
	paDacNorm  = 0x84
)

// RegOcp (0x0B): on, trim. Imax = 45+5*trim (trim <= 15) or -30+10*trim.
const (
	ocp100mA = 0x20 | 11
	ocp140mA = 0x20 | 17
)

const (
	lnaMaxGainBoost = 0x23 // G1, LnaBoostHf on
	agcAutoOn       = 0x04 // RegModemConfig3 -----1--
	ldroOn          = 0x08 // RegModemConfig3 ----1---
	crcOn           = 0x04 // RegModemConfig2 -----1--
	detectOptSF7_12 = 0xC3 // RegDetectOptimize for SF7..SF12
	detectThrSF7_12 = 0x0A
)

// rssiOffsetHF is the packet RSSI offset on the high-frequency port
// (LoRaMac-node RSSI_OFFSET_HF).
const rssiOffsetHF = -157
