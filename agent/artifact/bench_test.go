package artifact_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nexfield/nexfield/agent/artifact"
)

// benchObject is a #! script padded with random bytes to size (so it
// passes the executable check and does not compress).
func benchObject(size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	copy(b, "#!/bin/sh\nexit 0\n")
	return b
}

// BenchmarkPull pulls an object into the cache and, in the same
// iteration, reads it with ObjectStore.Get into io.Discard: ratio is pull
// throughput over read throughput, heap figures are peak HeapInuse growth.
func BenchmarkPull(b *testing.B) {
	for _, size := range []int{64 << 20} {
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) {
			nc, obs := remoteObjectStore(b, "bench")
			if _, err := obs.Put(context.Background(), jetstreamMeta("bench_latest"), bytes.NewReader(benchObject(size))); err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			b.ReportAllocs()
			b.ResetTimer()
			rep, err := artifact.ComparePull(context.Background(), nc, "bench", "bench", dir, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			pull, get := rep.MBps()
			b.ReportMetric(pull, "pull_MB/s")
			b.ReportMetric(get, "get_MB/s")
			b.ReportMetric(rep.Ratio, "ratio")
			b.ReportMetric(float64(rep.PullHeapPeak)/(1<<20), "pull_heap_peak_MiB")
			b.ReportMetric(float64(rep.GetHeapPeak)/(1<<20), "get_heap_peak_MiB")
			b.ReportMetric(float64(rep.PullLivePeak)/(1<<20), "pull_live_peak_MiB")
		})
	}
}
