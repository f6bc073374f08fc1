package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
)

// nextMetrics returns the next metrics sample of workload id that
// satisfies ok.
func nextMetrics(t *testing.T, sub *nats.Subscription, ok func(agent.WorkloadMetrics) bool) agent.WorkloadMetrics {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last agent.WorkloadMetrics
	for {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("metrics on %s: %v (last %+v)", sub.Subject, err, last)
		}
		if err := json.Unmarshal(msg.Data, &last); err != nil {
			t.Fatalf("metrics %q: %v", msg.Data, err)
		}
		if ok(last) {
			return last
		}
	}
}

// TestWorkloadMetrics: a running service's whole process group is
// measured (three processes here) on the namespace's metrics subject, and a
// CPU-bound one shows its CPU use.
func TestWorkloadMetrics(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.MetricsInterval = 100 * time.Millisecond }})
	family := r.deploy(t, deployReq("family", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"family", "2"}}))
	spin := r.deploy(t, deployReq("spin", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"spin"}}))

	m := nextMetrics(t, r.subscribe(nexapi.MetricsSubject("default", family)), func(m agent.WorkloadMetrics) bool { return m.Processes == 3 })
	s, _ := r.summary(family)
	if pid, _ := strconv.Atoi(s.Metadata["pid"]); m.PID != pid || pid == 0 {
		t.Errorf("metrics pid %d, summary pid %q", m.PID, s.Metadata["pid"])
	}
	if m.WorkloadID != family || m.Name != "family" || m.Namespace != "default" || m.Lifecycle != "service" || m.State != "running" {
		t.Errorf("metrics identity %+v", m)
	}
	// Three Go processes: each has several threads and a resident heap.
	if m.Threads < 3 || m.RSSBytes < 3<<20 || m.UptimeSeconds <= 0 || m.Time.IsZero() {
		t.Errorf("metrics figures %+v", m)
	}

	spinSub := r.subscribe(nexapi.MetricsSubject("default", spin))
	first := nextMetrics(t, spinSub, func(m agent.WorkloadMetrics) bool { return m.CPUSeconds > 0 })
	later := nextMetrics(t, spinSub, func(m agent.WorkloadMetrics) bool { return m.CPUSeconds > first.CPUSeconds+0.2 })
	// A busy loop on a shared 2-core machine (or under emulation) gets a
	// fair share of a core, not a precise one; over the whole span, not one
	// 100 ms sample, that share is well above idle.
	share := 100 * (later.CPUSeconds - first.CPUSeconds) / later.Time.Sub(first.Time).Seconds()
	if share < 10 || share > 220 || later.CPUPercent <= 0 {
		t.Errorf("spinning workload at %.1f%% CPU over %v (last sample %.1f%%)", share, later.Time.Sub(first.Time), later.CPUPercent)
	}

	if resp, err := r.node.Undeploy(context.Background(), "default", spin); err != nil || !resp.Stopped {
		t.Fatalf("undeploy %+v %v", resp, err)
	}
	// A stopped workload is not reported any more: after the stop has had
	// time to finish, no sample in a second's worth of intervals.
	stopped := time.Now().Add(2 * time.Second)
	for deadline := stopped.Add(time.Second); time.Now().Before(deadline); {
		msg, err := spinSub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m agent.WorkloadMetrics
		_ = json.Unmarshal(msg.Data, &m)
		if m.Time.After(stopped) {
			t.Fatalf("metrics after stop: %+v", m)
		}
	}
}

// TestFunctionMetrics: a warm function reports its runs and their failures.
func TestFunctionMetrics(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.MetricsInterval = 100 * time.Millisecond }})
	id := r.deploy(t, deployReq("fn", "function", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"upper"}, TriggerSubject: "field.upper"}))
	eventually(t, 10*time.Second, "function warm", func() bool {
		s, ok := r.summary(id)
		return ok && s.WorkloadState == "warm"
	})
	for _, in := range []string{"a", "b", "fail"} {
		if _, err := r.nc.Request("field.upper", []byte(in), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	m := nextMetrics(t, r.subscribe(nexapi.MetricsSubject("default", id)), func(m agent.WorkloadMetrics) bool { return m.Triggers == 3 })
	if m.TriggerErrors != 1 || m.State != "warm" || m.Lifecycle != "function" || m.Processes != 0 || m.CPUSeconds <= 0 || m.TriggerSeconds < m.CPUSeconds/2 {
		t.Errorf("function metrics %+v", m)
	}
	// `nex workload ls` shows a function's runtime as its execution time.
	s, _ := r.summary(id)
	if d, err := time.ParseDuration(s.Runtime); err != nil || d <= 0 || d.Seconds() > m.TriggerSeconds+0.001 {
		t.Errorf("function runtime %q, want the %.3fs its runs took", s.Runtime, m.TriggerSeconds)
	}
}

// TestWorkloadDiscovery: PINGWORKLOAD across the nexus is answered with the
// node id by the agent running the workload, and by nobody otherwise.
func TestWorkloadDiscovery(t *testing.T) {
	r := newRig(t, rigOpts{})
	id := r.deploy(t, deployReq("svc", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	eventually(t, 10*time.Second, "service running", func() bool {
		s, ok := r.summary(id)
		return ok && s.WorkloadState == "running"
	})
	m, err := r.nc.Request(nexapi.PingWorkloadSubject(agent.DefaultNexus, id), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp nexapi.WorkloadDiscoveryResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.NodeID != r.node.ID() {
		t.Errorf("discovery reply %q: %v, want node %s", m.Data, err, r.node.ID())
	}
	silent := func(what, subject string) {
		t.Helper()
		if m, err := r.nc.Request(subject, nil, 300*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("%s: %v, want silence (reply %v)", what, err, m)
		}
	}
	silent("unknown workload", nexapi.PingWorkloadSubject(agent.DefaultNexus, "nosuchworkload"))
	// Nobody listens on another nexus's subject at all.
	if _, err := r.nc.Request(nexapi.PingWorkloadSubject("elsewhere", id), nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("other nexus: %v, want no responders", err)
	}
	if resp, err := r.node.Undeploy(context.Background(), "default", id); err != nil || !resp.Stopped {
		t.Fatalf("undeploy %+v %v", resp, err)
	}
	silent("stopped workload", nexapi.PingWorkloadSubject(agent.DefaultNexus, id))
}

// TestIngressAnnouncements: with an ingress host, a workload's first
// exposed port is announced on start and withdrawn when it ends, by a stop
// or by itself; a workload without ports announces nothing.
func TestIngressAnnouncements(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.IngressHost = "10.20.0.7" }})
	sub := r.subscribe(nexapi.EventSubject(r.agent.AgentID(), nexapi.EventIngress))
	next := func() nexapi.AgentIngressMsg {
		t.Helper()
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var msg nexapi.AgentIngressMsg
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// A job that exits at once: added, then removed without an operator.
	job := r.deploy(t, deployReq("oneshot", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"echo", "hi"}, ExposePorts: []int{7000}}))
	if got, want := next(), (nexapi.AgentIngressMsg{Command: "add", Upstream: "10.20.0.7:7000", WorkloadID: job}); got != want {
		t.Errorf("job start: %+v, want %+v", got, want)
	}
	if got, want := next(), (nexapi.AgentIngressMsg{Command: "remove", WorkloadID: job}); got != want {
		t.Errorf("job exit: %+v, want %+v", got, want)
	}

	plain := r.deploy(t, deployReq("plain", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	web := r.deploy(t, deployReq("web", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}, ExposePorts: []int{8080, 9090}}))
	if got, want := next(), (nexapi.AgentIngressMsg{Command: "add", Upstream: "10.20.0.7:8080", WorkloadID: web}); got != want {
		t.Errorf("on start: %+v, want %+v", got, want)
	}
	for _, id := range []string{plain, web, job} {
		if resp, err := r.node.Undeploy(context.Background(), "default", id); err != nil || !resp.Stopped {
			t.Fatalf("undeploy %+v %v", resp, err)
		}
	}
	if got, want := next(), (nexapi.AgentIngressMsg{Command: "remove", WorkloadID: web}); got != want {
		t.Errorf("on stop: %+v, want %+v", got, want)
	}
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("unexpected announcement %q", m.Data)
	}
}
