package nodesim

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// The control plane: enough of the node's client-facing API for the stock
// `nex` CLI to auction, deploy, list, clone and stop workloads through the
// stand-in, and to list and inspect it (nex node ls / info).

const auctionTTL = 10 * time.Second

func (n *Node) addControl(svc micro.Service) error {
	eps := []struct {
		name, subject string
		h             micro.HandlerFunc
	}{
		{"Auction", "$NEX.SVC.*.control.AUCTION", n.handleAuction},
		{"AuctionDeploy", "$NEX.SVC.*.control.ADEPLOY.*", n.handleAuctionDeploy},
		{"Undeploy", "$NEX.SVC.*.control.UNDEPLOY.*", n.handleUndeploy},
		{"NamespacePing", "$NEX.SVC.*.control.WPING", n.handleWPing},
		{"CloneWorkload", "$NEX.SVC.*.control.CLONE.*", n.handleClone},
		{"PingNexus", "$NEX.SVC.system.control.PING", n.handleNodePing},
		{"PingNode", "$NEX.SVC.system.control.PING." + n.id, n.handleNodePing},
		{"NodeInfo", "$NEX.SVC.system.control.INFO." + n.id, n.handleNodeInfo},
		{"LameduckNode", "$NEX.SVC.system.control.LAMEDUCK." + n.id, n.handleLameduck},
	}
	for _, ep := range eps {
		if err := svc.AddEndpoint(ep.name, ep.h, micro.WithEndpointSubject(ep.subject), micro.WithEndpointQueueGroup(n.id)); err != nil {
			return fmt.Errorf("nodesim: endpoint %s: %w", ep.name, err)
		}
	}
	return nil
}

// subjectNamespace is the <ns> token of $NEX.SVC.<ns>.control.…
func subjectNamespace(subject string) string {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

func (n *Node) tags() map[string]string {
	t := map[string]string{
		"nex.os": runtime.GOOS, "nex.arch": runtime.GOARCH, "nex.cpucount": fmt.Sprint(runtime.NumCPU()),
		"nex.nexus": n.opts.Nexus, "nex.node": "nodesim", "nex.lameduck": "false",
	}
	n.mu.Lock()
	if n.lameduck {
		t["nex.lameduck"] = "true"
	}
	n.mu.Unlock()
	for k, v := range n.opts.Tags {
		t[k] = v
	}
	return t
}

// handleAuction bids when a healthy agent of the type is registered and
// every requested tag matches the node's tags; otherwise it stays silent.
func (n *Node) handleAuction(r micro.Request) {
	var req nexapi.AuctionRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal auction request")
		return
	}
	reg, err := n.pick(req.AgentType)
	if err != nil {
		return
	}
	tags := n.tags()
	for k, v := range req.Tags {
		if tags[k] != v {
			return
		}
	}
	bid := nuid.Next()
	n.mu.Lock()
	if n.bids == nil {
		n.bids = map[string]time.Time{}
	}
	now := n.clk.Now()
	for b, exp := range n.bids {
		if now.After(exp) {
			delete(n.bids, b)
		}
	}
	n.bids[bid] = now.Add(auctionTTL)
	n.mu.Unlock()
	_ = r.RespondJSON(nexapi.AuctionResponse{BidderID: bid, StartRequestSchema: reg.Register.StartRequestSchema,
		SupportedLifecycles: reg.Register.SupportedLifecycles, Xkey: reg.Register.PublicXkey})
}

// handleAuctionDeploy acts only for its own bidder ids, checks the
// namespace and the run request, and relays the agent's reply bytes and
// headers unchanged, as the node does.
func (n *Node) handleAuctionDeploy(r micro.Request) {
	bid := nexapi.LastToken(r.Subject())
	n.mu.Lock()
	exp, ok := n.bids[bid]
	n.mu.Unlock()
	if !ok || n.clk.Now().After(exp) {
		return
	}
	var req nexapi.StartWorkloadRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal auction deploy workload request")
		return
	}
	ns := subjectNamespace(r.Subject())
	if ns != req.Namespace && ns != "system" {
		nodeError(r, 403, fmt.Sprintf("namespace mismatch: %s != %s", ns, req.Namespace))
		return
	}
	reg, err := n.pick(req.WorkloadType)
	if err != nil {
		nodeError(r, 404, "workload type not found")
		return
	}
	if err := reg.schema.Validate([]byte(req.RunRequest)); err != nil {
		nodeError(r, 400, "failed to validate run request: "+err.Error())
		return
	}
	id := nuid.Next()
	m, err := n.requestStart(context.Background(), reg.ID, id, req)
	if err != nil {
		newNodeError(500, nexapi.ErrTextStartNotDelivered, err).reply(r)
		return
	}
	_ = r.Respond(m.Data, micro.WithHeaders(micro.Headers(m.Header)))
	n.store(context.Background(), req, id)
}

func (n *Node) handleUndeploy(r micro.Request) {
	var req nexapi.StopWorkloadRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal stop workload request")
		return
	}
	ns := subjectNamespace(r.Subject())
	if ns != req.Namespace && ns != "system" {
		nodeError(r, 403, fmt.Sprintf("namespace mismatch: %s != %s", ns, req.Namespace))
		return
	}
	resp, err := n.Undeploy(context.Background(), req.Namespace, nexapi.LastToken(r.Subject()))
	if err != nil {
		resp = nexapi.StopWorkloadResponse{ID: nexapi.LastToken(r.Subject()), Message: nexapi.ErrTextWorkloadNotFound}
	}
	_ = r.RespondJSON(resp)
}

func (n *Node) handleWPing(r micro.Request) {
	var req nexapi.AgentListWorkloadsRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal ping request")
		return
	}
	ns := subjectNamespace(r.Subject())
	if ns != req.Namespace && ns != "system" {
		nodeError(r, 403, fmt.Sprintf("namespace mismatch: %s != %s", ns, req.Namespace))
		return
	}
	list, err := n.Query(context.Background(), req.Namespace, req.Filter)
	if err != nil {
		nodeError(r, 500, "failed to publish query workloads request")
		return
	}
	if list == nil {
		list = []nexapi.WorkloadSummary{}
	}
	_ = r.RespondJSON(list)
}

// handleClone asks the agents for the workload's request and stays silent
// when nobody has it or it lives in another namespace.
func (n *Node) handleClone(r micro.Request) {
	var req nexapi.CloneWorkloadRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal clone workload request")
		return
	}
	ns := subjectNamespace(r.Subject())
	if ns != req.Namespace && ns != "system" {
		nodeError(r, 403, fmt.Sprintf("namespace mismatch: %s != %s", ns, req.Namespace))
		return
	}
	sw, err := n.GetWorkload(context.Background(), req.Namespace, nexapi.LastToken(r.Subject()))
	if err != nil || (sw.Namespace != ns && ns != "system") {
		return
	}
	_ = r.RespondJSON(sw)
}

func (n *Node) handleNodePing(r micro.Request) {
	var req nexapi.NodePingRequest
	_ = json.Unmarshal(r.Data(), &req)
	tags := n.tags()
	for k, v := range req.Filter {
		if tags[k] != v {
			return
		}
	}
	state := "running"
	n.mu.Lock()
	if n.lameduck {
		state = "lameduck"
	}
	count := len(n.order)
	start := n.start
	n.mu.Unlock()
	_ = r.RespondJSON(nexapi.NodePingResponse{AgentCount: count, NodeID: n.id, StartTime: start.UTC().Format(time.RFC3339Nano),
		State: state, Tags: tags, Version: "0.0.0", Xkey: n.xkey})
}

var stoplight = map[string]string{HealthHealthy: "🟢", HealthDegraded: "🟠", HealthShuttingDown: "🟠", HealthOffline: "🔴", HealthUnknown: "⚪"}

func (n *Node) handleNodeInfo(r micro.Request) {
	agents := n.Agents()
	sums := make([]nexapi.NodeAgentSummary, 0, len(agents))
	for _, a := range agents {
		sums = append(sums, nexapi.NodeAgentSummary{AgentHealth: a.Health, AgentHealthStoplight: stoplight[a.Health], AgentID: a.ID,
			AgentLastHeartbeatTime: a.LastHeartbeat.UTC().Format(time.RFC3339Nano), AgentSummary: a.Summary})
	}
	n.mu.Lock()
	start := n.start
	n.mu.Unlock()
	_ = r.RespondJSON(nexapi.NodeInfoResponse{NodeAgentSummaries: sums, NodeID: n.id, Tags: n.tags(),
		Uptime: n.clk.Now().Sub(start).String(), Version: "0.0.0", Xkey: n.xkey})
}

// handleLameduck does what `nex node lameduck` asks of the node: tell the
// agents (SETLAMEDUCK), emit NODELAMEDUCKSET, answer, and stop the node
// after the delay. A tag the node lacks makes it stay silent.
func (n *Node) handleLameduck(r micro.Request) {
	var req nexapi.LameduckRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		nodeError(r, 400, "failed to unmarshal lameduck request")
		return
	}
	tags := n.tags()
	for k, v := range req.Tag {
		if tags[k] != v {
			return
		}
	}
	delay, err := time.ParseDuration(req.Delay)
	if err != nil || delay < 0 {
		nodeError(r, 400, "invalid delay")
		return
	}
	if _, err := n.SetLameduck(context.Background(), delay); err != nil {
		n.log.Debug("lameduck agents", "err", err)
	}
	at := n.clk.Now().Add(delay)
	ev, _ := json.Marshal(nexapi.NodeLameduckSetEvent{ID: n.id, Time: at.UTC().Format(time.RFC3339Nano)})
	_ = n.nc.Publish(nexapi.EventSubject(n.id, nexapi.EventNodeLameduckSet), ev)
	_ = r.RespondJSON(nexapi.LameduckResponse{Success: true, Message: "node entering lameduck mode, will shutdown at " + at.UTC().Format(time.DateTime)})
	go func() {
		t := n.clk.NewTimer(delay)
		defer t.Stop()
		n.mu.Lock()
		stop := n.hbStop
		n.mu.Unlock()
		select {
		case <-t.C():
			n.log.Debug("lameduck delay over, node stopping")
			_ = n.Stop()
		case <-stop:
		}
	}()
}
