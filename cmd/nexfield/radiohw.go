package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"

	"github.com/nexfield/nexfield/gpio"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/sx127x"
)

// hardwareConfig holds the flags of the hardware drivers.
type hardwareConfig struct {
	port        string
	baud        int
	module      string
	encoding    string
	address     int
	destination int
	networkID   int
	power       int
	resetPin    string
	dio0Pin     string
	spi         string
	syncWord    string
}

func addHardwareFlags(fs *flag.FlagSet) *hardwareConfig {
	h := &hardwareConfig{}
	fs.StringVar(&h.port, "port", "/dev/serial0", "rylr driver: serial port of the module")
	fs.IntVar(&h.baud, "baud", 115200, "rylr driver: serial baud rate (the module's AT+IPR)")
	fs.StringVar(&h.module, "module", "auto", "rylr driver: module model: auto (from AT+VER?), rylr998, rylr896")
	fs.StringVar(&h.encoding, "encoding", "raw", "rylr driver: payload encoding on the serial line: raw, or base64 for firmware that is not binary-safe (both ends alike)")
	fs.IntVar(&h.address, "module-address", 0, "rylr driver: this module's AT+ADDRESS (0-65535; the link layer does its own addressing)")
	fs.IntVar(&h.destination, "module-destination", 0, "rylr driver: AT+SEND target address (0 reaches every module)")
	fs.IntVar(&h.networkID, "network-id", 0, "rylr driver: AT+NETWORKID (0: the module's factory value, 18 on the RYLR998)")
	fs.IntVar(&h.power, "power", 0, "output power in dBm (0: driver default: RYLR998 22, RYLR896 15, SX1276 17 on PA_BOOST)")
	fs.StringVar(&h.resetPin, "reset-pin", "", "GPIO wired to the radio's reset line, e.g. GPIO25 (optional)")
	fs.StringVar(&h.dio0Pin, "dio0-pin", "", "sx127x driver: GPIO wired to DIO0, e.g. GPIO22 on Adafruit's RFM95W bonnet (required)")
	fs.StringVar(&h.spi, "spi", "", "sx127x driver: SPI port, e.g. SPI0.0 or /dev/spidev0.1 (default: the first one)")
	fs.StringVar(&h.syncWord, "sync-word", "0x12", "sx127x driver: LoRa sync word (0x12 private, 0x34 LoRaWAN)")
	return h
}

// openHardware opens a radio driver on real hardware.
func openHardware(ctx context.Context, c *radioConfig, region lora.Region, log *slog.Logger) (radio.Radio, error) {
	h := c.hw
	if h == nil {
		return nil, fmt.Errorf("radio: driver %s: no hardware flags registered", c.driver)
	}
	reg, err := lora.NewRegulator(region, &lora.RegulatorOpts{FrequencyHz: c.frequency})
	if err != nil {
		return nil, err
	}
	switch c.driver {
	case "rylr":
		model, err := rylr.ParseModel(h.module)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		enc, err := rylr.ParseEncoding(h.encoding)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		if h.address < 0 || h.address > 65535 || h.destination < 0 || h.destination > 65535 {
			return nil, usageError{"--module-address and --module-destination must be 0..65535"}
		}
		o := &rylr.Opts{Model: model, Encoding: enc, Address: uint16(h.address), Destination: uint16(h.destination),
			NetworkID: h.networkID, BandHz: c.frequency, Params: c.params(), PowerDBm: h.power, Regulator: reg,
			Baud: h.baud, Logger: log}
		if h.resetPin != "" {
			if err := gpio.InitHost(); err != nil {
				return nil, err
			}
			if o.Reset, err = gpio.Open(h.resetPin); err != nil {
				return nil, fmt.Errorf("--reset-pin: %w", err)
			}
		}
		return rylr.Open(ctx, h.port, o)
	case "sx127x":
		if h.dio0Pin == "" {
			return nil, usageError{"--driver sx127x needs --dio0-pin (the GPIO wired to the radio's DIO0)"}
		}
		sync, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(h.syncWord), "0x"), 16, 8)
		if err != nil || sync == 0 {
			return nil, usageError{fmt.Sprintf("--sync-word %q: want a non-zero hex byte like 0x12", h.syncWord)}
		}
		if err := gpio.InitHost(); err != nil {
			return nil, err
		}
		dio0, err := gpio.Open(h.dio0Pin)
		if err != nil {
			return nil, fmt.Errorf("--dio0-pin: %w", err)
		}
		reset, err := gpio.OpenOptional(h.resetPin)
		if err != nil {
			return nil, fmt.Errorf("--reset-pin: %w", err)
		}
		port, err := spireg.Open(h.spi)
		if err != nil {
			return nil, fmt.Errorf("--spi %q: %w", h.spi, err)
		}
		d, err := sx127x.New(port, reset, dio0, &sx127x.Opts{FrequencyHz: c.frequency, Params: c.params(),
			SyncWord: byte(sync), PowerDBm: h.power, Regulator: reg, Logger: log})
		if err != nil {
			port.Close()
			return nil, err
		}
		return &spiRadio{Dev: d, port: port}, nil
	}
	return nil, usageError{fmt.Sprintf("unknown radio driver %q (want rylr, sx127x or sim)", c.driver)}
}

// spiRadio is an SX1276 that also owns its SPI port.
type spiRadio struct {
	*sx127x.Dev
	port spi.PortCloser
}

func (r *spiRadio) Close() error {
	err := r.Dev.Close()
	if cerr := r.port.Close(); err == nil {
		err = cerr
	}
	return err
}
