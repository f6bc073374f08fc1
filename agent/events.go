package agent

import (
	"encoding/json"
	"strconv"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/workload"
)

// events implements workload.Events on the agent: logs and workload events
// go out on the bootstrap connection, which lives across registrations
// (the remote in-memory nexlet of the SDK does the same).
type events Agent

var _ workload.Events = (*events)(nil)

// Log queues one line of a workload's stdout or stderr for publishing as
// is; it never waits for NATS (see logQueue).
func (e *events) Log(namespace, workloadID, stream string, line []byte) {
	(*Agent)(e).logs.push(namespace, workloadID, stream, line)
}

// Started publishes WORKLOADSTARTED on the workload's namespace.
func (e *events) Started(st workload.Status) {
	a := (*Agent)(e)
	a.publishEvent(st.Spec.Namespace, nexapi.EventWorkloadStarted, nexapi.WorkloadStartedEvent{
		ID: st.Spec.ID, Namespace: st.Spec.Namespace, WorkloadType: a.opts.Type,
	})
	a.announceIngress(st.Spec, true)
}

// Stopped publishes WORKLOADSTOPPED; a non-zero exit code becomes
// error.code, as with the native nexlet.
func (e *events) Stopped(st workload.Status) {
	a := (*Agent)(e)
	ev := nexapi.WorkloadStoppedEvent{ID: st.Spec.ID, Namespace: st.Spec.Namespace, WorkloadType: a.opts.Type}
	if st.ExitCode != 0 || st.Err != "" {
		ev.Error = &nexapi.EventError{Code: strconv.Itoa(st.ExitCode), Message: st.Err}
	}
	a.publishEvent(st.Spec.Namespace, nexapi.EventWorkloadStopped, ev)
	// Every way to a final state (a stop, a job's exit, a service given up,
	// lameduck) withdraws the upstream; the supervisor reports Started and
	// Stopped of one workload in order, so a quick job's remove cannot
	// overtake its add.
	a.announceIngress(st.Spec, false)
}

func (a *Agent) publishEvent(ns, name string, v any) {
	if a.boot == nil {
		return
	}
	b, _ := json.Marshal(v)
	if err := a.boot.Publish(nexapi.EventSubject(ns, name), b); err != nil {
		a.log.Debug("event publish", "event", name, "err", err)
	}
}
