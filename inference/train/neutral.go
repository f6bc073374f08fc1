package train

import "math"

// neutralRule is the 3-way decision the exported logits encode: neutral
// when |z| < band + scale·u, plus gate without sentiment evidence.
func neutralRule(z, u float64, noEvidence bool, band, gate, scale float64) int {
	t := band + float64(scale*u)
	if noEvidence {
		t += gate
	}
	switch {
	case math.Abs(z) < t:
		return 1
	case z > 0:
		return 2
	}
	return 0
}

// oofPoint is a rated sentence's out-of-fold log-odds: z positive vs
// negative, u neutral vs polar.
type oofPoint struct {
	z, u  float64
	noEv  bool
	truth int // output column
}

// searchNeutralRule returns the scale (0..2 in steps of 0.25), band (-2..5
// in steps of 0.05) and gate (0..5 in steps of 0.1) that maximise the
// macro-averaged 3-way recall of out-of-fold predictions; ties keep the
// smaller scale, then band, then gate.
func searchNeutralRule(pts []oofPoint) (band, gate, scale float64, best ThreeWay) {
	best.Macro = -1
	for si := 0; si <= 8; si++ {
		s := float64(si) * 0.25
		for i := -40; i <= 100; i++ {
			c := float64(i) * 0.05
			for j := 0; j <= 50; j++ {
				g := float64(j) * 0.1
				var cf confusion
				for _, p := range pts {
					cf[p.truth][neutralRule(p.z, p.u, p.noEv, c, g, s)]++
				}
				if t := cf.summary(); t.Macro > best.Macro {
					band, gate, scale, best = c, g, s, t
				}
			}
		}
	}
	return band, gate, scale, best
}
