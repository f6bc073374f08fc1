package rylr_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/rylr/rylrsim"
)

// Two emulated RYLR998 modules on one air, each driven through its
// pseudo-terminal exactly as a real module on /dev/serial0 would be.
func Example() {
	ether := rylrsim.NewEther()
	var devs []*rylr.Dev
	for addr := uint16(1); addr <= 2; addr++ {
		m, err := rylrsim.New(&rylrsim.Opts{Air: ether.Radio(), BinarySafe: true})
		if err != nil {
			log.Fatal(err)
		}
		defer m.Close()
		d, err := rylr.Open(context.Background(), m.Path(), &rylr.Opts{
			Address: addr,
			Params:  lora.Params{SpreadingFactor: 7, BandwidthHz: 500000},
		})
		if err != nil {
			log.Fatal(err)
		}
		defer d.Close()
		devs = append(devs, d)
	}
	a, b := devs[0], devs[1]
	fmt.Println(a.Model(), a.MTU(), a.Airtime(5))
	if err := a.Send(context.Background(), []byte("hello")); err != nil {
		log.Fatal(err)
	}
	f, err := b.Receive(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %gdBm %gdB\n", f.Payload, f.RSSI, f.SNR)
	// Output:
	// RYLR998 240 12.608ms
	// hello -42dBm 9dB
}
