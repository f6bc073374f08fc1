package relay

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/radio/sim"
)

// testPSK is the link key of the tests.
var testPSK = []byte("0123456789abcdef0123456789abcdef")

// airLink puts a radio named name on air and a link at addr over it; both
// close when the test ends. opts may be nil.
func airLink(tb testing.TB, air *sim.Air, name string, addr chunking.Addr, opts ...*chunking.Opts) *chunking.Link {
	tb.Helper()
	r, err := air.NewRadio(&sim.RadioOpts{Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	var o *chunking.Opts
	if len(opts) > 0 {
		o = opts[0]
	}
	l, err := chunking.New(r, addr, testPSK, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close(); r.Close() })
	return l
}

// waitInstances polls service discovery until n instances of the relay
// service answer.
func waitInstances(tb testing.TB, nc *nats.Conn, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			tb.Fatal(err)
		}
		if err := nc.PublishRequest("$SRV.PING.nexfield-relay", inbox, nil); err != nil {
			tb.Fatal(err)
		}
		got := 0
		for got < n {
			if _, err := sub.NextMsg(200 * time.Millisecond); err != nil {
				break
			}
			got++
		}
		sub.Unsubscribe()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d relay instances answer, want %d", got, n)
		}
	}
}
