package sim_test

import (
	"fmt"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/sim"
)

// A discrete-event medium: two nodes, 10 % loss, virtual time.
func ExampleMedium() {
	m, _ := sim.NewMedium(&sim.Opts{Channel: sim.Channel{Loss: 0.1}, Seed: 1})
	got := 0
	a := m.AddNode("a", nil)
	m.AddNode("b", func(radio.Frame) { got++ })
	start := m.Now()
	for range 100 {
		a.Transmit(make([]byte, 255))
	}
	m.Run(start.Add(time.Hour))
	fmt.Printf("%d of 100 frames arrived in %v of virtual time\n", got, m.Now().Sub(start))
	// Output: 88 of 100 frames arrived in 39.9616s of virtual time
}
