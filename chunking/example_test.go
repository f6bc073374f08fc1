package chunking_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio/lora"
)

// Example drives two engines by hand over a perfect, virtual channel: the
// loop every I/O layer (Link, chunkbench) implements.
func Example() {
	psk := []byte("example pre-shared key, 32 bytes")
	toa := lora.Params{}.TimeOnAir // SF7/BW125
	gw, _ := chunking.NewEngine(1, psk, &chunking.EngineOpts{Peers: []chunking.Addr{2}, Airtime: toa})
	peer, _ := chunking.NewEngine(2, psk, &chunking.EngineOpts{Peers: []chunking.Addr{1}, Airtime: toa})

	now := time.Unix(0, 0)
	id, _ := gw.Send(now, 2, []byte(strings.Repeat("long request ", 100)), false)
	var air time.Duration
	frames := 0
	for step := 0; step < 1000; step++ {
		progressed := false
		for _, x := range []struct{ me, other *chunking.Engine }{{gw, peer}, {peer, gw}} {
			for ev, ok := x.me.Event(); ok; ev, ok = x.me.Event() {
				switch ev.Kind {
				case chunking.EventRequest:
					x.me.Reply(now, ev.ID, []byte(fmt.Sprintf("got %d bytes", len(ev.Data))), false)
				case chunking.EventReply:
					fmt.Printf("reply to ours: %v, %q\n", ev.ID == id, ev.Data)
				}
			}
			if f := x.me.NextFrame(now); f != nil {
				now = now.Add(toa(len(f))) // the frame is on the air
				air += toa(len(f))
				frames++
				x.me.TxDone(now, nil)
				x.other.Receive(now, f, -80, 9)
				progressed = true
			}
		}
		if !progressed {
			// Nothing to send: jump to the earliest timer.
			next := time.Time{}
			for _, e := range []*chunking.Engine{gw, peer} {
				if d, ok := e.Deadline(); ok && (next.IsZero() || d.Before(next)) {
					next = d
				}
			}
			if next.IsZero() {
				break
			}
			if next.After(now) {
				now = next
			}
			gw.Tick(now)
			peer.Tick(now)
		}
	}
	fmt.Printf("%d frames, %v on air\n", frames, air.Round(time.Millisecond))
	// Output:
	// reply to ours: true, "got 1300 bytes"
	// 8 frames, 2.27s on air
}
