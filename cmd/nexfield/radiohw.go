package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// openHardware opens a radio driver on real hardware.
func openHardware(ctx context.Context, c *radioConfig, region lora.Region, log *slog.Logger) (radio.Radio, error) {
	return nil, usageError{fmt.Sprintf("unknown radio driver %q (want rylr, sx127x or sim)", c.driver)}
}
