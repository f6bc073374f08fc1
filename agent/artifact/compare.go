package artifact

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PullReport compares pulling an object into the cache with reading it
// from the object store into io.Discard, in the same process and run.
type PullReport struct {
	Size int64 // object size in bytes
	Runs int

	Get, Pull time.Duration // mean time of one read / one pull
	// Ratio is pull throughput over bare-read throughput (1 = the cache
	// costs nothing; the goal is ≥ 0.9).
	Ratio float64
	// Peak HeapInuse growth over the level before each operation, the
	// maximum over the runs, sampled every 2 ms. In-process servers (tests,
	// `nexfield bench pull`) count in both.
	GetHeapPeak, PullHeapPeak uint64
	// Peak growth of the live heap (as of the last GC mark): what was
	// retained, without the collector's slack.
	GetLivePeak, PullLivePeak uint64
}

// MBps is the mean pull and read throughput in MB/s (10^6 bytes).
func (r PullReport) MBps() (pull, get float64) {
	return float64(r.Size) / r.Pull.Seconds() / 1e6, float64(r.Size) / r.Get.Seconds() / 1e6
}

// ComparePull reads nats://bucket/name (object name_latest) runs times
// both ways, alternating: ObjectStore.Get into io.Discard, and Fetch into a
// fresh cache under dir (removed after each run) made with opts. The object
// must pass the executable check (a #! script of any size does).
func ComparePull(ctx context.Context, nc *nats.Conn, bucket, name, dir string, runs int, opts *Opts) (PullReport, error) {
	if runs <= 0 {
		runs = 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return PullReport{}, fmt.Errorf("artifact: compare: %w", err)
	}
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return PullReport{}, fmt.Errorf("artifact: compare: %w", err)
	}
	get := func() (int64, error) {
		res, err := obs.Get(ctx, name+"_latest")
		if err != nil {
			return 0, err
		}
		defer res.Close()
		return io.Copy(io.Discard, res)
	}
	// Warm the server's block cache and the connection once, untimed.
	size, err := get()
	if err != nil {
		return PullReport{}, fmt.Errorf("artifact: compare: %w", err)
	}
	rep := PullReport{Size: size, Runs: runs}
	var getTotal, pullTotal time.Duration
	for i := range runs {
		d, peak, live, err := measure(func() error { _, err := get(); return err })
		if err != nil {
			return rep, fmt.Errorf("artifact: compare: get: %w", err)
		}
		getTotal += d
		rep.GetHeapPeak, rep.GetLivePeak = max(rep.GetHeapPeak, peak), max(rep.GetLivePeak, live)

		cache := filepath.Join(dir, fmt.Sprintf("compare-%d", i))
		s, err := New(cache, opts)
		if err != nil {
			return rep, err
		}
		d, peak, live, err = measure(func() error {
			_, err := s.Fetch(ctx, nc, "nats://"+bucket+"/"+name, "")
			return err
		})
		os.RemoveAll(cache)
		if err != nil {
			return rep, fmt.Errorf("artifact: compare: pull: %w", err)
		}
		pullTotal += d
		rep.PullHeapPeak, rep.PullLivePeak = max(rep.PullHeapPeak, peak), max(rep.PullLivePeak, live)
	}
	rep.Get, rep.Pull = getTotal/time.Duration(runs), pullTotal/time.Duration(runs)
	rep.Ratio = rep.Get.Seconds() / rep.Pull.Seconds()
	return rep, nil
}

// measure times f and samples HeapInuse and the live heap every 2 ms
// while it runs, returning their peak growth over the levels after a GC
// before f.
func measure(f func() error) (d time.Duration, heapPeak, livePeak uint64, err error) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	metrics.Read(sample)
	base, liveBase := ms.HeapInuse, sample[0].Value.Uint64()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			runtime.ReadMemStats(&ms)
			metrics.Read(s)
			if ms.HeapInuse > base {
				heapPeak = max(heapPeak, ms.HeapInuse-base)
			}
			if v := s[0].Value.Uint64(); v > liveBase {
				livePeak = max(livePeak, v-liveBase)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	err = f()
	d = time.Since(start)
	close(stop)
	wg.Wait()
	return d, heapPeak, livePeak, err
}
