package linkbench

import (
	"math/rand/v2"
	"time"
)

// Summary aggregates the runs of one cell: scheme × size × channel.
type Summary struct {
	Scheme  string
	Size    int
	Channel string
	Runs    int
	// Failures counts runs whose message did not arrive once, intact.
	Failures int
	// Delivered is the application bytes delivered intact over all runs.
	Delivered int64
	// Airtime is the total airtime of all runs, both directions.
	Airtime time.Duration
	// Frames is the total frames sent.
	Frames int
	// GoodputRatio is Delivered ÷ Airtime ÷ PHYLimit.
	GoodputRatio float64
	// Elapsed is the mean virtual duration of a run.
	Elapsed time.Duration
}

// runSeed spreads run i of a cell over the seed space.
func runSeed(seed uint64, i int) uint64 {
	x := seed + uint64(i)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	return x ^ x>>29
}

// Summarize runs runs transfers of a size-byte message with seeds derived
// from cfg.Seed and aggregates them.
func Summarize(s Scheme, cfg Config, size, runs int) Summary {
	return summarize(s, cfg, size, runs, func(c Config, i int) Result {
		return Transfer(s, c, message(size, c.Seed))
	})
}

func summarize(s Scheme, cfg Config, size, runs int, run func(Config, int) Result) Summary {
	sum := Summary{Scheme: s.Name(), Size: size, Channel: cfg.Channel.String(), Runs: runs}
	var elapsed time.Duration
	for i := range runs {
		c := cfg
		c.Seed = runSeed(cfg.Seed, i)
		r := run(c, i)
		if !r.OK {
			sum.Failures++
		}
		sum.Delivered += int64(r.Delivered)
		sum.Airtime += r.Airtime
		sum.Frames += r.Frames
		elapsed += r.Elapsed
	}
	if sum.Airtime > 0 {
		sum.GoodputRatio = float64(sum.Delivered) / sum.Airtime.Seconds() / PHYLimit(cfg.Params)
	}
	if runs > 0 {
		sum.Elapsed = elapsed / time.Duration(runs)
	}
	return sum
}

// message is n incompressible bytes, fixed by seed.
func message(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Schemes returns the baseline schemes. The nexfield link lives in package
// chunking (adapted by chunking/chunkbench, which imports this package), so
// callers add it: append(linkbench.Schemes(), chunkbench.Scheme{}).
func Schemes() []Scheme {
	return []Scheme{Meshtastic{}, SCHC{}, SCHC{Compound: true}}
}
