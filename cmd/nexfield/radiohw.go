package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"

	"github.com/nexfield/nexfield/gpio"
	"github.com/nexfield/nexfield/internal/cliconf"
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

// hardwareSettings are the hardware flags parsed.
type hardwareSettings struct {
	model    rylr.Model
	encoding rylr.Encoding
	syncWord byte
}

// resolve parses and checks the flags driver uses (radioConfig.check).
func (h *hardwareConfig) resolve(driver string) (hardwareSettings, []cliconf.Problem) {
	var s hardwareSettings
	var problems []cliconf.Problem
	bad := func(key string, err error, fix string) {
		problems = append(problems, cliconf.Problem{Key: key, Msg: err.Error(), Fix: fix})
	}
	switch driver {
	case "rylr":
		var err error
		if s.model, err = rylr.ParseModel(h.module); err != nil {
			bad("module", err, "set module to auto, rylr998 or rylr896")
		}
		if s.encoding, err = rylr.ParseEncoding(h.encoding); err != nil {
			bad("encoding", err, "set encoding to raw, or base64 for firmware that is not binary-safe (both ends alike)")
		}
		for _, a := range []struct {
			key string
			v   int
		}{{"module-address", h.address}, {"module-destination", h.destination}} {
			if a.v < 0 || a.v > 65535 {
				bad(a.key, fmt.Errorf("%d is not a module address", a.v), "set "+a.key+" to 0..65535")
			}
		}
		if h.baud <= 0 {
			bad("baud", fmt.Errorf("%d is not a baud rate", h.baud), "set baud to the module's AT+IPR rate (115200 by default)")
		}
	case "sx127x":
		if h.dio0Pin == "" {
			bad("dio0-pin", errors.New("driver sx127x needs dio0-pin, the GPIO wired to the radio's DIO0"),
				"set dio0-pin, e.g. GPIO22 on Adafruit's RFM95W bonnet")
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(h.syncWord), "0x"), 16, 8)
		if err != nil || v == 0 {
			bad("sync-word", fmt.Errorf("%q is not a non-zero hex byte", h.syncWord), "set sync-word like 0x12 (private networks) or 0x34 (LoRaWAN), the same at both ends")
		}
		s.syncWord = byte(v)
	}
	return s, problems
}

// openHardware opens a radio driver on real hardware with the settings
// radioConfig.resolve found to work.
func openHardware(ctx context.Context, c *radioConfig, s radioSettings, log *slog.Logger) (radio.Radio, error) {
	h := c.hw
	reg, err := lora.NewRegulator(s.region, &lora.RegulatorOpts{FrequencyHz: c.frequency})
	if err != nil {
		return nil, err
	}
	switch c.driver {
	case "rylr":
		o := &rylr.Opts{Model: s.hw.model, Encoding: s.hw.encoding, Address: uint16(h.address), Destination: uint16(h.destination),
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
			SyncWord: s.hw.syncWord, PowerDBm: h.power, Regulator: reg, Logger: log})
		if err != nil {
			port.Close()
			return nil, err
		}
		return &spiRadio{Dev: d, port: port}, nil
	}
	return nil, fmt.Errorf("radio: driver %q has no hardware", c.driver) // resolve refuses it first
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
