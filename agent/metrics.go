package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/workload"
)

// WorkloadMetrics is what the agent publishes every Opts.MetricsInterval on
// $NEX.FEED.<namespace>.metrics.<workloadId> for each workload it runs
// (the protocol leaves the payload free-form). Process figures cover the
// workload's whole process group; a warm function has no process between
// runs and reports its runs instead.
type WorkloadMetrics struct {
	WorkloadID string    `json:"workload_id"`
	Name       string    `json:"name"`
	Namespace  string    `json:"namespace"`
	Lifecycle  string    `json:"workload_lifecycle"`
	State      string    `json:"workload_state"`
	Time       time.Time `json:"time"`
	// UptimeSeconds is the time since the workload's current process (or,
	// for a function, its subscription) started.
	UptimeSeconds float64 `json:"uptime_seconds"`
	Restarts      int     `json:"restarts"`

	PID       int `json:"pid,omitempty"`
	Processes int `json:"processes"`
	Threads   int `json:"threads"`
	// CPUSeconds is cumulative user+system time; CPUPercent the share of
	// one core used since the previous sample (since start for the first).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   uint64  `json:"rss_bytes"`

	Triggers       int64   `json:"triggers,omitempty"`
	TriggerErrors  int64   `json:"trigger_errors,omitempty"`
	TriggerSeconds float64 `json:"trigger_seconds,omitempty"` // wall-clock time of the runs

	// LogLinesDropped counts output lines dropped since the agent started
	// because NATS was unreachable for longer than the agent's buffer lasts.
	LogLinesDropped int64 `json:"log_lines_dropped,omitempty"`
}

// cpuSample is the previous reading of one workload, for CPUPercent.
type cpuSample struct {
	pid int
	cpu time.Duration
	at  time.Time
}

// publishMetrics samples and publishes until ctx ends. It runs on the
// bootstrap connection, so metrics flow between registrations too.
func (a *Agent) publishMetrics(ctx context.Context) {
	prev := map[string]cpuSample{}
	t := a.clk.NewTimer(a.opts.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		var running []workload.Status
		var groups []int
		for _, st := range a.sup.List() {
			if active(st) && a.visible(st) {
				running = append(running, st)
				groups = append(groups, st.PID)
			}
		}
		usage, err := workload.GroupsUsage(groups...)
		if err != nil {
			a.log.Debug("workload usage", "err", err)
		}
		// While the connection is down, samples would queue in the
		// reconnect buffer beside the logs and events that matter, and
		// arrive later in a stale burst: skip them (the CPU baselines
		// still move on).
		connected := a.boot.Status() == nats.CONNECTED
		seen := map[string]bool{}
		for _, st := range running {
			m, ok := a.metricsOf(st, usage, prev)
			if !ok {
				continue
			}
			seen[st.Spec.ID] = true
			if !connected {
				continue
			}
			b, _ := json.Marshal(m)
			if err := a.boot.Publish(nexapi.MetricsSubject(st.Spec.Namespace, st.Spec.ID), b); err != nil {
				a.log.Debug("metrics publish", "workload_id", st.Spec.ID, "err", err)
			}
		}
		for id := range prev {
			if !seen[id] {
				delete(prev, id)
			}
		}
		t.Reset(a.opts.MetricsInterval)
	}
}

// metricsOf reads one workload's figures; false when its process went away
// between the listing and the reading (the supervisor will notice).
func (a *Agent) metricsOf(st workload.Status, usage map[int]workload.Usage, prev map[string]cpuSample) (WorkloadMetrics, bool) {
	now := a.clk.Now()
	m := WorkloadMetrics{
		WorkloadID:     st.Spec.ID,
		Name:           st.Spec.Name,
		Namespace:      st.Spec.Namespace,
		Lifecycle:      string(st.Spec.Lifecycle),
		State:          wireState(st.State),
		Time:           now.UTC(),
		Restarts:       st.Restarts,
		Triggers:       st.Triggers,
		TriggerErrors:  st.TriggerErrors,
		TriggerSeconds: st.TriggerTime.Seconds(),

		LogLinesDropped: a.logs.droppedTotal(st.Spec.ID),
	}
	if !st.StartedAt.IsZero() {
		m.UptimeSeconds = now.Sub(st.StartedAt).Seconds()
	}
	if st.Spec.Lifecycle == workload.Function {
		m.CPUSeconds = st.TriggerCPU.Seconds()
		m.CPUPercent = cpuPercent(prev, st.Spec.ID, 0, st.TriggerCPU, now, st.StartedAt)
		return m, true
	}
	if st.PID <= 0 {
		// A service between restarts: nothing runs, which is worth saying.
		return m, true
	}
	u, ok := usage[st.PID]
	if !ok {
		return m, false
	}
	m.PID, m.Processes, m.Threads, m.RSSBytes = st.PID, u.Processes, u.Threads, u.RSS
	m.CPUSeconds = u.CPU.Seconds()
	m.CPUPercent = cpuPercent(prev, st.Spec.ID, st.PID, u.CPU, now, st.StartedAt)
	return m, true
}

// cpuPercent is the CPU share since the previous sample of the same
// process, or since start; it records this sample in prev.
func cpuPercent(prev map[string]cpuSample, id string, pid int, cpu time.Duration, now, started time.Time) float64 {
	p, ok := prev[id]
	prev[id] = cpuSample{pid: pid, cpu: cpu, at: now}
	if !ok || p.pid != pid || cpu < p.cpu {
		p = cpuSample{at: started}
	}
	wall := now.Sub(p.at)
	if p.at.IsZero() || wall <= 0 {
		return 0
	}
	return 100 * (cpu - p.cpu).Seconds() / wall.Seconds()
}
