package workload_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/nexfield/nexfield/agent/workload"
)

// BenchmarkStart measures Start of a service whose binary is cached (spec
// check, secrets, cache lookup with hashing of the file:// source, record
// write with fsync, output pipes, spawn) until it returns with the process
// running, against a bare exec.Cmd.Start of the same binary in the same
// run. Stops are not timed.
func BenchmarkStart(b *testing.B) {
	r := newRig(b)
	if _, err := r.store.Fetch(context.Background(), nil, "file://"+wlBin, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var bare, sup time.Duration
	ctx := context.Background()
	for i := range b.N {
		t0 := time.Now()
		cmd := exec.Command(wlBin, "sleep", "10s")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(t0)
		cmd.Process.Kill()
		cmd.Wait()

		id := fmt.Sprintf("b%d", i)
		t0 = time.Now()
		if _, err := r.sup.Start(ctx, r.spec(id, workload.Service, "sleep", "10s")); err != nil {
			b.Fatal(err)
		}
		sup += time.Since(t0)
		b.StopTimer()
		r.sup.Stop(ctx, id)
		b.StartTimer()
	}
	b.ReportMetric(float64(sup.Microseconds())/float64(b.N), "start_us/op")
	b.ReportMetric(float64(bare.Microseconds())/float64(b.N), "exec_us/op")
	b.ReportMetric(sup.Seconds()/bare.Seconds(), "ratio_to_exec")
}
