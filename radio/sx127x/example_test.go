package sx127x_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sx127x"
	"github.com/nexfield/nexfield/radio/sx127x/sx127xsim"
)

// The driver on the register-level emulator; on a Pi the port comes from
// spireg.Open("SPI0.0") and the pins from gpio.Open("GPIO25"), ... .
func Example() {
	chip := sx127xsim.New(&sx127xsim.Opts{
		OnTransmit: func(p []byte) { fmt.Printf("on air: %q\n", p) },
	})
	defer chip.Close()
	d, err := sx127x.New(chip, chip.Reset(), chip.DIO0(), &sx127x.Opts{
		Params: lora.Params{SpreadingFactor: 9},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Halt()
	fmt.Println(d, d.MTU(), d.Airtime(10))
	if err := d.Send(context.Background(), []byte("ping")); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sx127x{sx127xsim} 66 144.384ms
	// on air: "ping"
}
