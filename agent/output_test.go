package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/internal/natstest"
)

// syncBuffer is a log sink the test reads while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// counter reads what a chatty workload says it has written.
func counter(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// TestOutputWhileNATSDown: the NATS server goes away while a workload
// logs without pause. The workload keeps writing; its output waits in the
// agent's bounded queue, not in the connection's reconnect buffer, so an
// event of the outage (another workload ending) is still delivered when
// the server is back; what did not fit is dropped, reported and counted;
// output flows again afterwards.
func TestOutputWhileNATSDown(t *testing.T) {
	so := natstest.Options(t)
	so.Port = freePort(t)
	logs := &syncBuffer{}
	r := newRig(t, rigOpts{srvOpts: so, agentOpts: func(o *agent.Opts) {
		// Output written during the outage is many times this.
		o.NATSOptions = []nats.Option{nats.ReconnectBufSize(64 << 10)}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}})
	ctx := context.Background()
	js, err := jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STOPPED", Subjects: []string{"$NEX.FEED.default.events.WORKLOADSTOPPED"}})
	if err != nil {
		t.Fatal(err)
	}
	out := r.subscribe("$NEX.FEED.default.logs.>")
	count := filepath.Join(t.TempDir(), "count")
	r.deploy(t, deployReq("chatty", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"chatty", count, "1024", "100us"}}))
	victim := r.deploy(t, deployReq("victim", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	s, _ := r.summary(victim)
	pid, _ := strconv.Atoi(s.Metadata["pid"])
	eventually(t, 10*time.Second, "chatty writing", func() bool { return counter(count) > 100 })

	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	down := counter(count)
	// 2 MiB: twice the agent's queue, 32 times the reconnect buffer.
	eventually(t, 30*time.Second, "writing on while NATS is down", func() bool { return counter(count) > down+2048 })
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
	record := filepath.Join(r.opts.StateDir, "workloads", victim+".json")
	eventually(t, 10*time.Second, "the job's end recorded", func() bool {
		var rec struct{ State string }
		b, _ := os.ReadFile(record)
		return json.Unmarshal(b, &rec) == nil && rec.State == "exited"
	})

	so2 := *so
	natstest.RunServerWithOptions(t, &so2)
	eventually(t, 15*time.Second, "the stop event of the outage delivered", func() bool {
		m, err := stream.GetLastMsgForSubject(ctx, "$NEX.FEED.default.events.WORKLOADSTOPPED")
		return err == nil && strings.Contains(string(m.Data), victim)
	})
	nextMatching(t, out, "line ", 15*time.Second)
	eventually(t, 10*time.Second, "dropped output reported", func() bool {
		return strings.Contains(logs.String(), "workload output dropped while NATS was unreachable")
	})
}
