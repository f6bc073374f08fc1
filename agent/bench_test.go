package agent_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/internal/natstest"
)

// BenchmarkRegister measures a cold agent from Run to the node receiving its
// first heartbeat (RREGISTER, REGISTER, endpoints, heartbeat). The baseline
// is one plain NATS request/reply on the same server, so the ratio says how
// many round trips registration costs.
func BenchmarkRegister(b *testing.B) {
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv)
	node, err := nodesim.New(natstest.Connect(b, srv), &nodesim.Opts{HeartbeatInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := node.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer node.Stop()
	echo, _ := nc.Subscribe("bench.echo", func(m *nats.Msg) { m.Respond(m.Data) })
	defer echo.Unsubscribe()
	rtt := measure(b, 200, func() {
		if _, err := nc.Request("bench.echo", []byte("x"), time.Second); err != nil {
			b.Fatal(err)
		}
	})
	dir := b.TempDir()
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		a, err := agent.New(&agent.Opts{Servers: []string{srv.ClientURL()}, Name: "bench", StateDir: dir, Heartbeat: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		t0 := time.Now()
		go func() { a.Run(ctx); close(done) }()
		<-a.Ready()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := node.WaitHealthy(wctx, a.AgentID()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		wcancel()
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "first_heartbeat_ms")
	b.ReportMetric(float64(per)/float64(rtt), "x_nats_rtt")
}

// BenchmarkStartWorkload measures STARTWORKLOAD to reply for a service whose
// binary is already in the cache; the reply is sent once the process has
// been spawned. The baseline is exec.Command(...).Start() of the same
// binary in the same run.
func BenchmarkStartWorkload(b *testing.B) {
	for _, scheme := range []string{"nats", "file"} {
		b.Run("uri="+scheme, func(b *testing.B) { benchmarkStart(b, scheme) })
	}
}

func benchmarkStart(b *testing.B, scheme string) {
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv)
	node, err := nodesim.New(natstest.Connect(b, srv), &nodesim.Opts{HeartbeatInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := node.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer node.Stop()
	a, err := agent.New(&agent.Opts{Servers: []string{srv.ClientURL()}, Name: "bench", StateDir: b.TempDir(), Heartbeat: 100 * time.Millisecond, StopGrace: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-a.Ready()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := node.WaitAgent(wctx, "nexfield"); err != nil {
		b.Fatal(err)
	}
	baseline := measure(b, 20, func() {
		cmd := exec.Command(workloadBin, "serve")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	uri := "file://" + workloadBin
	if scheme == "nats" {
		putObject(b, nc, "artifacts", "wl_latest", workloadBin)
		uri = "nats://artifacts/wl"
	}
	run, _ := json.Marshal(agent.StartRequest{URI: uri, Argv: []string{"serve"}})
	start := func(id string) {
		body, _ := json.Marshal(nexapi.AgentStartWorkloadRequest{Request: nexapi.StartWorkloadRequest{
			Name: "bench", Namespace: "default", RunRequest: string(run), WorkloadLifecycle: "service", WorkloadType: "nexfield"}})
		m, err := nc.Request(nexapi.StartWorkloadSubject(node.ID(), a.AgentID(), id), body, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if code, desc := errCode(m); code != "" {
			b.Fatalf("start: %s %s", code, desc)
		}
	}
	stop := func(id string) {
		if _, err := node.Undeploy(context.Background(), "default", id); err != nil {
			b.Fatal(err)
		}
	}
	// The first start fills the cache; it keeps running so that the cache
	// entry stays in use (the runtime collects unused entries on stop).
	start("WARMUP")
	defer stop("WARMUP")
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		id := "B" + strconv.Itoa(i)
		t0 := time.Now()
		start(id)
		total += time.Since(t0)
		b.StopTimer()
		stop(id)
		b.StartTimer()
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "start_ms")
	b.ReportMetric(float64(per)/float64(baseline), "x_exec_start")
}

func measure(b *testing.B, n int, f func()) time.Duration {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		f()
	}
	return time.Since(t0) / time.Duration(n)
}
