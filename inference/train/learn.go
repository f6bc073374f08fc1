package train

import (
	"math"
	"slices"
	"sort"

	"github.com/nexfield/nexfield/inference/internal/features"
)

// fitCandidate fits one candidate of the grid.
func fitCandidate(d dataset, dim, nh int, h hyper, epochs int) *linear {
	if !h.Avg {
		return fit(d, dim, nh, h, epochs)
	}
	a := fit(d, dim, nh, hyper{NB: false, L2: h.L2}, epochs)
	b := fit(d, dim, nh, hyper{NB: true, L2: h.L2}, epochs)
	for i := range a.w {
		a.w[i] = (a.w[i] + b.w[i]) / 2
	}
	a.b = (a.b + b.b) / 2
	return a
}

// prune keeps the max hashed weights of largest magnitude (ties: lower
// bucket first) and returns their buckets, sorted. The model's width, and so
// its size and onnx-go time, is bounded by max, whatever the data.
func prune(l *linear, nh, max int) []uint32 {
	var nz []uint32
	for k := range nh {
		if l.w[k] != 0 {
			nz = append(nz, uint32(k))
		}
	}
	if len(nz) > max {
		sort.SliceStable(nz, func(a, b int) bool { return math.Abs(l.w[nz[a]]) > math.Abs(l.w[nz[b]]) })
		for _, k := range nz[max:] {
			l.w[k] = 0
		}
		nz = nz[:max]
		slices.Sort(nz)
	}
	return nz
}

// linear is a binary model: z = w·x + b, positive when z > 0.
type linear struct {
	w []float64
	b float64
}

func (l *linear) z(fs features.Vector) float64 {
	s := l.b
	for i, k := range fs.Idx {
		s += float64(l.w[k] * float64(fs.Val[i]))
	}
	return s
}

// fit trains a weighted logistic regression (d.ys: 1 positive, 0 negative)
// with AdaGrad in a fixed order, so the result is the same on every run.
func fit(d dataset, dim, nHashed int, h hyper, epochs int) *linear {
	r := inputScale(d, dim, nHashed, h.NB)
	w := make([]float64, dim)
	g2 := make([]float64, dim)
	var b, gb float64
	const eta = 0.5
	order := make([]int, len(d.xs))
	for i := range order {
		order[i] = i
	}
	rng := splitmix64(0x9e3779b97f4a7c15)
	for range epochs {
		rng.shuffle(order)
		for _, n := range order {
			fs := d.xs[n]
			s := b
			for i, k := range fs.Idx {
				s += float64(w[k] * float64(fs.Val[i]) * r[k])
			}
			g := float64(d.ws[n] * (1/(1+math.Exp(-s)) - float64(d.ys[n])))
			for i, k := range fs.Idx {
				gk := float64(g*float64(fs.Val[i])*r[k]) + float64(h.L2*w[k])
				g2[k] += float64(gk * gk)
				w[k] -= float64(eta*gk) / math.Sqrt(g2[k]+1e-8)
			}
			gb += float64(g * g)
			b -= eta * g / math.Sqrt(gb+1e-8)
		}
	}
	for i := range w {
		w[i] *= r[i]
	}
	return &linear{w: w, b: b}
}

// inputScale is the factor of each input during training: 1, or with nb
// the naive-Bayes log-count ratio of each hashed bucket (add-one smoothed,
// weighted counts; the dense features keep 1).
func inputScale(d dataset, dim, nHashed int, nb bool) []float64 {
	r := make([]float64, dim)
	for i := range r {
		r[i] = 1
	}
	if !nb {
		return r
	}
	p := make([]float64, nHashed)
	q := make([]float64, nHashed)
	for i := range p {
		p[i], q[i] = 1, 1
	}
	var sp, sq float64 = float64(nHashed), float64(nHashed)
	for n, fs := range d.xs {
		for _, k := range fs.Idx {
			if int(k) >= nHashed {
				continue
			}
			if d.ys[n] == 1 {
				p[k] += d.ws[n]
				sp += d.ws[n]
			} else {
				q[k] += d.ws[n]
				sq += d.ws[n]
			}
		}
	}
	for i := range nHashed {
		r[i] = math.Log((p[i] / sp) / (q[i] / sq))
	}
	return r
}

// splitmix64 is the trainer's random source: a fixed sequence, so every run
// and every architecture visits the sentences in the same order.
type splitmix64 uint64

// shuffle permutes s in place (Fisher-Yates).
func (x *splitmix64) shuffle(s []int) {
	for i := len(s) - 1; i > 0; i-- {
		*x += 0x9e3779b97f4a7c15
		z := uint64(*x)
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		j := int(z % uint64(i+1))
		s[i], s[j] = s[j], s[i]
	}
}
