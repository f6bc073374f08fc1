package chunking

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkReassemble moves one message of the given number of full frames
// from one engine to another over the virtual-time air and reports the
// goodput against the PHY limit (255-byte frames back to back) computed in
// the same run.
func BenchmarkReassemble(b *testing.B) {
	for _, frames := range []int{8, 64} {
		for _, loss := range []float64{0, 0.1, 0.3} {
			b.Run(fmt.Sprintf("frames=%d/loss=%.2f", frames, loss), func(b *testing.B) {
				b.ReportAllocs()
				size := frames*(255-12) - 4
				msg := payload(size, 1)
				var air time.Duration
				seed := uint64(0)
				for b.Loop() {
					n := newVnet(b, loss, seed)
					seed++
					a, r := n.add(1, nil), n.add(2, nil)
					r.onRequest = func(Event) ([]byte, bool) { return nil, false }
					a.e.Send(n.now, 2, msg, false)
					n.run(time.Hour)
					if len(r.find(EventRequest)) != 1 {
						b.Fatal("not delivered")
					}
					air += n.airTotal
				}
				phy := float64(size) / (255 / newVnet(b, 0, 0).airtime(255).Seconds())
				b.ReportMetric(phy*float64(b.N)/air.Seconds(), "goodput_ratio")
				b.ReportMetric(float64(air.Milliseconds())/float64(b.N), "airtime_ms/op")
			})
		}
	}
}

// BenchmarkSeal and BenchmarkOpen cost one full frame (241-byte fragment)
// with each cipher.
func BenchmarkSeal(b *testing.B) {
	for _, c := range []Cipher{CCM8, ChaCha20Poly1305} {
		b.Run("cipher="+c.String(), func(b *testing.B) {
			e, _ := NewEngine(1, testPSK, &EngineOpts{Cipher: c, Peers: []Addr{2}})
			p, _ := e.peer(2)
			body := make([]byte, 255-hdrLen-e.tagLen)
			h := header{link: p.txTag, hint: 1, ctl: fragCtl(kindRequest, 3, false, false)}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				p.sealFrame(h, 1, body)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, c := range []Cipher{CCM8, ChaCha20Poly1305} {
		b.Run("cipher="+c.String(), func(b *testing.B) {
			tx, _ := NewEngine(1, testPSK, &EngineOpts{Cipher: c, Peers: []Addr{2}})
			rx, _ := NewEngine(2, testPSK, &EngineOpts{Cipher: c, Peers: []Addr{1}})
			p, _ := tx.peer(2)
			q, _ := rx.peer(1)
			body := make([]byte, 255-hdrLen-tx.tagLen)
			h := header{link: p.txTag, hint: 1, ctl: fragCtl(kindRequest, 3, false, false)}
			f := p.sealFrame(h, 1, body)
			var n [nonceLen]byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.open.Open(nil, h.nonce(1, n[:q.open.NonceSize()]), f[hdrLen:], f[:hdrLen]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
