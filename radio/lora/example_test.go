package lora_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

func Example() {
	p := lora.Params{SpreadingFactor: 9} // BW125, CR4/5, 8-symbol preamble, CRC on
	fmt.Println(p, p.TimeOnAir(50))
	fmt.Println("largest frame within 400 ms:", p.MaxPayload(lora.USDwell))

	us, _ := lora.NewRegulator(lora.US915, nil)
	err := us.Check(time.Now(), p, 100)
	fmt.Println(errors.Is(err, radio.ErrDwellTime))
	// Output:
	// SF9/BW125/CR4/5 328.704ms
	// largest frame within 400 ms: 66
	// true
}
