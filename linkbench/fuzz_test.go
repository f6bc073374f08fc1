package linkbench

import (
	"testing"
)

// FuzzEndpointFrames feeds arbitrary frames to both baselines' endpoints,
// idle and in the middle of a transfer: no panic, no runaway work, and the
// transfer under way may fail, and a forged delivery is judged a failure.
func FuzzEndpointFrames(f *testing.F) {
	f.Add([]byte("F\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00hello"))
	f.Add([]byte("1\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x12\x34\x56\x78tile"))
	f.Add([]byte("K\x00\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x1f"))
	f.Add([]byte("Q\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("0\x00\x00\x00\x01\x7f\xff\xff\xff\x00\x00\x00\x00\x00"))
	f.Add([]byte("D\x00\x00\x00\x01\x00\x02\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00chunk"))
	f.Add([]byte("A\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 255 {
			return
		}
		for _, s := range Schemes() {
			p, err := newPair(s, Config{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			msg := message(700, 3)
			p.a.ep.Send(p.a, msg)
			// Inject the frame both ways, mid-transfer.
			p.m.AfterFunc(500_000_000, func() {
				p.b.ep.OnFrame(p.b, append([]byte(nil), frame...))
				p.a.ep.OnFrame(p.a, append([]byte(nil), frame...))
			})
			p.run(Config{})
			// Neither baseline authenticates anything, so a forged frame
			// may well be delivered: the harness must then call the run
			// failed, never successful.
			for _, got := range p.b.got {
				if string(got) != string(msg) && check(p.b.got, msg) == nil {
					t.Fatalf("%s: wrong bytes judged a success", s.Name())
				}
			}
		}
	})
}
