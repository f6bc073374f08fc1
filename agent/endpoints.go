package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/workload"
	"github.com/nexfield/nexfield/internal/atomicfile"
)

// Timeouts of endpoint work, inside the node's own request timeouts.
const (
	// startTimeout bounds fetch + spawn; the node waits 1 minute.
	startTimeout = 50 * time.Second
	// stopReplyAfter: the node collects STOP replies for about 2 s, so the
	// reply goes out when the stop is done or after this long, whichever is
	// first; the SIGTERM → SIGKILL sequence continues in the background.
	stopReplyAfter = 1500 * time.Millisecond
)

// addService registers the seven agent endpoints, and the optional workload
// discovery one, as one micro service with queue group = agent id, so each
// agent of a node gets its own copy of the shared subjects (STOPWORKLOAD.*,
// QUERYWORKLOADS, PING, SETLAMEDUCK, and PINGWORKLOAD.* across the nexus).
func (a *Agent) addService(s *session) error {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        a.opts.Name,
		Version:     a.opts.Version,
		Description: a.opts.Description,
		QueueGroup:  s.agentID,
		Metadata:    map[string]string{"register_type": a.opts.Type, "agent_id": s.agentID},
	})
	if err != nil {
		return fmt.Errorf("agent: micro service: %w", err)
	}
	eps := []struct {
		name, subject string
		h             func(*session, micro.Request)
	}{
		{"StartWorkload", nexapi.StartWorkloadSubject(s.nodeID, s.agentID, "*"), a.handleStart},
		{"StopWorkload", nexapi.StopWorkloadSubject(s.nodeID, "*"), a.handleStop},
		{"GetWorkload", nexapi.GetWorkloadSubject(s.nodeID, "*"), a.handleGet},
		{"QueryWorkloads", nexapi.QueryWorkloadsSubject(s.nodeID), a.handleQuery},
		{"PingAgent", nexapi.PingAgentSubject(s.nodeID, s.agentID), a.handlePing},
		{"PingAllAgents", nexapi.PingAllAgentsSubject(s.nodeID), a.handlePing},
		{"SetLameduck", nexapi.SetLameduckSubject(s.nodeID), a.handleLameduck},
		{"WorkloadDiscovery", nexapi.PingWorkloadSubject(a.opts.Nexus, "*"), a.handleDiscover},
	}
	for _, ep := range eps {
		h := ep.h
		err := svc.AddEndpoint(ep.name, micro.HandlerFunc(func(r micro.Request) { h(s, r) }),
			micro.WithEndpointSubject(ep.subject), micro.WithEndpointQueueGroup(s.agentID))
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("agent: endpoint %s: %w", ep.name, err)
		}
	}
	s.svc = svc
	// Endpoints must be on the server before the first heartbeat makes the
	// node consider this agent for work.
	if err := s.nc.Flush(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("agent: flush: %w", err)
	}
	return nil
}

func (a *Agent) replyError(r micro.Request, desc string, body any) {
	b, _ := json.Marshal(body)
	if err := r.Error(nexapi.AgentErrorCode, desc, b); err != nil {
		a.log.Debug("error reply", "err", err)
	}
}

func (a *Agent) respond(r micro.Request, body any) {
	if err := r.RespondJSON(body); err != nil {
		a.log.Debug("reply", "err", err)
	}
}

// handleStart validates before anything else and then starts the workload
// on its own goroutine, so a slow pull does not hold up other starts.
func (a *Agent) handleStart(s *session, r micro.Request) {
	id := nexapi.LastToken(r.Subject())
	spec, in, err := a.specFor(id, r.Data())
	resp := nexapi.StartWorkloadResponse{ID: id, Name: in.Request.Name}
	if err == nil && a.lameduck.Load() {
		err = ErrLameduck
	}
	if err != nil {
		a.log.Info("start refused", "workload_id", id, "err", err)
		a.replyError(r, fmt.Sprintf("failed to run workload %s: %v", id, err), resp)
		return
	}
	resp.Name = spec.Name
	reply := r.Reply()
	a.handlers.Add(1)
	go func() {
		defer a.handlers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		st, err := a.sup.Start(ctx, spec)
		if err != nil {
			a.log.Info("start failed", "workload_id", id, "err", err)
			a.publishReply(s, reply, resp, fmt.Sprintf("failed to run workload %s: %v", id, err))
			return
		}
		a.log.Info("workload started", "workload_id", id, "name", spec.Name, "lifecycle", string(spec.Lifecycle), "pid", st.PID)
		a.publishReply(s, reply, resp, "")
	}()
}

// publishReply answers a request after its handler has returned. micro's
// Request must not be used then (it records the outcome for its stats when
// the handler returns), so the reply, with the same error headers, is
// published directly.
func (a *Agent) publishReply(s *session, reply string, body any, errDesc string) {
	if reply == "" {
		return
	}
	m := nats.NewMsg(reply)
	m.Data, _ = json.Marshal(body)
	if errDesc != "" {
		m.Header.Set(micro.ErrorCodeHeader, nexapi.AgentErrorCode)
		m.Header.Set(micro.ErrorHeader, errDesc)
	}
	if err := s.nc.PublishMsg(m); err != nil {
		a.log.Debug("reply", "err", err)
	}
}

// handleStop always answers: stopped=true from the owner, code 100 "workload
// not found" from everyone else, so the node does not wait out its timeout.
func (a *Agent) handleStop(s *session, r micro.Request) {
	id := nexapi.LastToken(r.Subject())
	notFound := nexapi.StopWorkloadResponse{ID: id, Message: nexapi.ErrTextWorkloadNotFound, WorkloadType: a.opts.Type}
	var req nexapi.StopWorkloadRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		a.replyError(r, "invalid stop workload request: "+err.Error(), notFound)
		return
	}
	// A finished job is stopped too: the node deletes its stored deploy
	// only on stopped=true, so this is how an operator clears it (it then
	// disappears from queries).
	st, ok := a.lookup(id)
	if !ok || !inNamespace(req.Namespace, st.Spec.Namespace) {
		a.replyError(r, nexapi.ErrTextWorkloadNotFound, notFound)
		return
	}
	done := make(chan error, 1)
	a.handlers.Add(1)
	go func() {
		defer a.handlers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := a.sup.Stop(ctx, id)
		done <- err
	}()
	t := a.clk.NewTimer(stopReplyAfter)
	defer t.Stop()
	select {
	case err := <-done:
		if errors.Is(err, workload.ErrNotFound) {
			a.replyError(r, nexapi.ErrTextWorkloadNotFound, notFound)
			return
		}
		if err != nil {
			a.replyError(r, err.Error(), notFound)
			return
		}
	case <-t.C():
	}
	a.dismiss(id)
	a.log.Info("workload stopped", "workload_id", id)
	a.respond(r, nexapi.StopWorkloadResponse{ID: id, Stopped: true, WorkloadType: a.opts.Type})
}

// lookup finds a workload the node may still ask about: not stopped on
// request and not dismissed by a STOP of a finished one. The supervisor
// keeps records of finished workloads (so that a restart does not run a
// finished job again); the protocol's view ends at the stop.
func (a *Agent) lookup(id string) (workload.Status, bool) {
	st, ok := a.sup.Get(id)
	if !ok || !a.visible(st) {
		return workload.Status{}, false
	}
	return st, true
}

func (a *Agent) visible(st workload.Status) bool {
	if st.State == workload.Stopped {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.dismissed[st.Spec.ID]
}

func (a *Agent) dismiss(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dismissed == nil {
		a.dismissed = map[string]bool{}
	}
	if a.dismissed[id] {
		return
	}
	a.dismissed[id] = true
	// Only ids the supervisor still has a record of are worth keeping.
	ids := make([]string, 0, len(a.dismissed))
	for _, st := range a.sup.List() {
		if a.dismissed[st.Spec.ID] {
			ids = append(ids, st.Spec.ID)
		}
	}
	slices.Sort(ids)
	b, err := json.Marshal(ids)
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(a.opts.StateDir, dismissedFile), b, 0o644)
	}
	if err != nil {
		a.log.Warn("record dismissed workloads", "err", err)
	}
}
func inNamespace(asked, ns string) bool { return asked == "system" || asked == ns }

// handleGet returns the stored StartWorkloadRequest; it stays silent for
// ids this agent does not run (another agent of the node may).
func (a *Agent) handleGet(s *session, r micro.Request) {
	id := nexapi.LastToken(r.Subject())
	st, ok := a.lookup(id)
	if !ok {
		return
	}
	var in nexapi.AgentStartWorkloadRequest
	if err := json.Unmarshal(st.Spec.Request, &in); err != nil {
		a.replyError(r, "stored request of workload "+id+" is unreadable: "+err.Error(), nexapi.StartWorkloadRequest{Name: st.Spec.Name, Namespace: st.Spec.Namespace})
		return
	}
	a.respond(r, in.Request)
}

// handleQuery always answers, with [] when nothing matches.
func (a *Agent) handleQuery(s *session, r micro.Request) {
	var req nexapi.AgentListWorkloadsRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		a.replyError(r, "invalid query workloads request: "+err.Error(), []nexapi.WorkloadSummary{})
		return
	}
	a.respond(r, a.summaries(req))
}

func (a *Agent) summaries(req nexapi.AgentListWorkloadsRequest) []nexapi.WorkloadSummary {
	out := []nexapi.WorkloadSummary{}
	now := a.clk.Now()
	list := a.sup.List()
	slices.SortFunc(list, func(x, y workload.Status) int { return x.StartedAt.Compare(y.StartedAt) })
	for _, st := range list {
		if !a.visible(st) || !inNamespace(req.Namespace, st.Spec.Namespace) {
			continue
		}
		if len(req.Filter) > 0 && !slices.Contains(req.Filter, st.Spec.ID) && !slices.Contains(req.Filter, st.Spec.Name) {
			continue
		}
		out = append(out, a.summaryOf(st, now))
	}
	return out
}

func (a *Agent) summaryOf(st workload.Status, now time.Time) nexapi.WorkloadSummary {
	var in nexapi.AgentStartWorkloadRequest
	_ = json.Unmarshal(st.Spec.Request, &in)
	md := map[string]string{"state": string(st.State)}
	if st.PID > 0 {
		md["pid"] = strconv.Itoa(st.PID)
	}
	if st.Restarts > 0 {
		md["restarts"] = strconv.Itoa(st.Restarts)
	}
	if !active(st) {
		md["exit_code"] = strconv.Itoa(st.ExitCode)
	}
	if st.Err != "" {
		md["error"] = st.Err
	}
	if st.Spec.TriggerSubject != "" {
		md["trigger_subject"] = st.Spec.TriggerSubject
	}
	runtime := "--"
	start := ""
	if !st.StartedAt.IsZero() {
		start = st.StartedAt.UTC().Format(time.RFC3339)
		if active(st) {
			runtime = now.Sub(st.StartedAt).Round(time.Second).String()
		}
	}
	if st.Spec.Lifecycle == workload.Function {
		// The CLI shows runtime only for functions, as "Execution Time":
		// the time spent running, not the time spent warm.
		runtime = st.TriggerTime.Round(time.Millisecond).String()
	}
	return nexapi.WorkloadSummary{
		ID:                st.Spec.ID,
		Metadata:          md,
		Name:              st.Spec.Name,
		Namespace:         st.Spec.Namespace,
		Runtime:           runtime,
		StartTime:         start,
		Tags:              in.Request.Tags,
		WorkloadLifecycle: string(st.Spec.Lifecycle),
		WorkloadState:     wireState(st.State),
		WorkloadType:      a.opts.Type,
	}
}

// wireState maps runtime states onto the protocol's enum; a service waiting
// out its back-off is "starting" (the detail is in metadata "state").
func wireState(s workload.State) string {
	switch s {
	case workload.Starting, workload.Backoff:
		return nexapi.WorkloadStarting
	case workload.Running:
		return nexapi.WorkloadRunning
	case workload.Warm:
		return nexapi.WorkloadWarm
	case workload.Stopping:
		return nexapi.WorkloadStopping
	case workload.Stopped, workload.Exited:
		return nexapi.WorkloadStopped
	case workload.Failed:
		return nexapi.WorkloadError
	}
	return nexapi.WorkloadError
}

// handleDiscover answers "who runs this workload?" across the nexus (an
// ingress proxy asks): the node id from the agent that runs it, silence
// from every other.
func (a *Agent) handleDiscover(s *session, r micro.Request) {
	st, ok := a.lookup(nexapi.LastToken(r.Subject()))
	if !ok || !active(st) {
		return
	}
	a.respond(r, nexapi.WorkloadDiscoveryResponse{NodeID: s.nodeID})
}

// announceIngress tells an ingress proxy about a workload's first exposed
// port (the native nexlet announces only the first, too). It goes out on
// the current registration's connection, under its agent id; between
// registrations there is nobody to tell, and the next registration
// announces every running workload again (reannounceIngress).
func (a *Agent) announceIngress(spec workload.Spec, add bool) {
	if a.opts.IngressHost == "" {
		return
	}
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s == nil {
		return
	}
	msg := nexapi.AgentIngressMsg{WorkloadID: spec.ID, Command: nexapi.IngressRemove}
	if add {
		port, ok := exposedPort(spec)
		if !ok {
			return
		}
		msg.Command, msg.Upstream = nexapi.IngressAdd, net.JoinHostPort(a.opts.IngressHost, strconv.Itoa(port))
	} else if _, ok := exposedPort(spec); !ok {
		return
	}
	b, _ := json.Marshal(msg)
	if err := s.nc.Publish(nexapi.EventSubject(s.agentID, nexapi.EventIngress), b); err != nil {
		a.log.Debug("ingress publish", "workload_id", spec.ID, "err", err)
	}
}

// reannounceIngress announces every running workload under a new agent id:
// restored ones, and those that ran through a re-registration.
func (a *Agent) reannounceIngress() {
	for _, st := range a.sup.List() {
		if active(st) && a.visible(st) {
			a.announceIngress(st.Spec, true)
		}
	}
}

// exposedPort is the first expose_ports entry of the stored start request.
func exposedPort(spec workload.Spec) (int, bool) {
	var in nexapi.AgentStartWorkloadRequest
	var run StartRequest
	if json.Unmarshal(spec.Request, &in) != nil || json.Unmarshal([]byte(in.Request.RunRequest), &run) != nil || len(run.ExposePorts) == 0 {
		return 0, false
	}
	return run.ExposePorts[0], true
}

func (a *Agent) handlePing(s *session, r micro.Request) {
	b, _ := json.Marshal(a.summary())
	if err := r.Respond(b, micro.WithHeaders(micro.Headers{nexapi.HeaderAgentID: {s.agentID}})); err != nil {
		a.log.Debug("ping reply", "err", err)
	}
}

// handleLameduck refuses new work from now on and stops every workload
// within the requested delay. It answers at once: the node only listens for
// about 2 s.
func (a *Agent) handleLameduck(s *session, r micro.Request) {
	var req nexapi.LameduckRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		a.replyError(r, "invalid lameduck request: "+err.Error(), nexapi.LameduckResponse{Message: err.Error()})
		return
	}
	delay, err := time.ParseDuration(req.Delay)
	if err != nil || delay < 0 {
		a.replyError(r, fmt.Sprintf("invalid lameduck delay %q", req.Delay), nexapi.LameduckResponse{Message: "invalid delay"})
		return
	}
	first := a.lameduck.CompareAndSwap(false, true)
	// The node looks for the agentId header on these replies (the SDK does
	// not set it, and the node logs an error for each agent).
	b, _ := json.Marshal(nexapi.LameduckResponse{Success: true})
	if err := r.Respond(b, micro.WithHeaders(micro.Headers{nexapi.HeaderAgentID: {s.agentID}})); err != nil {
		a.log.Debug("lameduck reply", "err", err)
	}
	if !first {
		return
	}
	a.log.Info("entering lameduck", "delay", delay.String())
	a.heartbeat(s)
	a.handlers.Add(1)
	go func() {
		defer a.handlers.Done()
		// StopAll sends SIGTERM now; the delay bounds the whole stop, so
		// stragglers are killed by then.
		ctx, cancel := context.WithTimeout(context.Background(), max(delay, time.Second))
		defer cancel()
		if err := a.sup.StopAll(ctx); err != nil {
			a.log.Warn("lameduck stop", "err", err)
		}
		a.heartbeat(s)
	}()
}
