package nodesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/clock"
)

// Errors callers branch on.
var (
	// ErrNoAgent: no healthy registration of the requested type.
	ErrNoAgent = errors.New("nodesim: no healthy agent of that type")
	// ErrAgent wraps an error reply (code 100) from an agent.
	ErrAgent = errors.New("nodesim: agent error")
	// ErrNotRunning: the node is stopped.
	ErrNotRunning = errors.New("nodesim: node not running")
	// ErrNode wraps an error reply of the node itself (*NodeError).
	ErrNode = errors.New("nodesim: node error")
)

// Health of a registration, as the node reports it in node info.
const (
	HealthUnknown      = "unknown"
	HealthHealthy      = "healthy"
	HealthDegraded     = "degraded"
	HealthShuttingDown = "shutting down"
	HealthOffline      = "offline"
)

// Opts configures a Node. The zero value is a working node of nexus "nexus"
// with a fresh identity, no persistence and the real clock.
type Opts struct {
	// Nexus is the nexus name (RREGISTER subject and queue group). Zero: "nexus".
	Nexus string
	// Seed is the node's server nkey seed, for a stable identity across
	// restarts. Zero: a fresh key.
	Seed []byte
	// Servers go into nats_servers of every minted NatsConnectionData.
	// Zero: the URL the node's connection is connected to.
	Servers []string
	// Mint returns the NatsConnectionData handed out for purpose
	// "registration" (RREGISTER), "agent" (REGISTER) or "workload"
	// (STARTWORKLOAD), like the node's credential minters. Nil: only
	// Servers, like the node's default full-access minter.
	Mint func(purpose, id string) nexapi.NatsConnectionData
	// Tags are the node's placement tags. Zero: none.
	Tags map[string]string
	// HeartbeatInterval is the node heartbeat period. Zero: 10s, as the node.
	HeartbeatInterval time.Duration
	// State keeps deploys in a JetStream KV bucket "nex-<nodeId>" like
	// `nex node up --state kv`, so they come back in existing_state.
	State bool
	// RequestTimeout bounds the node's scatter requests (stop, query,
	// lameduck). Zero: 2s, the node connection's default.
	RequestTimeout time.Duration
	// Logger receives debug logs. Nil: discard.
	Logger *slog.Logger
	// Clock is used for health ageing. Nil: real time.
	Clock clock.Clock
}

// Agent is the node's view of one registration.
type Agent struct {
	ID            string
	Register      nexapi.RegisterAgentRequest
	Summary       nexapi.AgentSummary
	Health        string
	LastHeartbeat time.Time
	Heartbeats    int
}

type registration struct {
	Agent
	schema *nexapi.StartRequestSchema
}

// Node plays the node side of the Nex agent protocol on one NATS connection.
type Node struct {
	nc    *nats.Conn
	opts  Opts
	clk   clock.Clock
	log   *slog.Logger
	kp    nkeys.KeyPair
	id    string
	xkey  string
	start time.Time

	mu      sync.Mutex
	running bool
	svc     micro.Service
	hbStop  chan struct{}
	hbDone  chan struct{}
	regs    map[string]*registration
	order   []string
	changed chan struct{}
	kv      jetstream.KeyValue
	// lameduck is set once SetLameduck was sent.
	lameduck bool
	// bids are the auction bidder ids this node handed out, with expiry.
	bids map[string]time.Time
}

// New makes a node on nc; Start brings it up.
func New(nc *nats.Conn, opts *Opts) (*Node, error) {
	o := Opts{}
	if opts != nil {
		o = *opts
	}
	if nc == nil {
		return nil, errors.New("nodesim: nil connection")
	}
	if o.Nexus == "" {
		o.Nexus = "nexus"
	}
	if !nexapi.ValidToken(o.Nexus) {
		return nil, fmt.Errorf("nodesim: invalid nexus name %q", o.Nexus)
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 2 * time.Second
	}
	var kp nkeys.KeyPair
	var err error
	if len(o.Seed) > 0 {
		kp, err = nkeys.FromSeed(o.Seed)
	} else {
		kp, err = nkeys.CreateServer()
	}
	if err != nil {
		return nil, fmt.Errorf("nodesim: node key: %w", err)
	}
	id, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicServerKey(id) {
		return nil, fmt.Errorf("nodesim: node key is not a server key: %v", err)
	}
	xkp, err := nkeys.CreateCurveKeys()
	if err != nil {
		return nil, fmt.Errorf("nodesim: xkey: %w", err)
	}
	xpub, _ := xkp.PublicKey()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{nc: nc, opts: o, clk: clock.Or(o.Clock), log: log, kp: kp, id: id, xkey: xpub,
		regs: map[string]*registration{}, changed: make(chan struct{})}, nil
}

// ID is the node id (public server nkey).
func (n *Node) ID() string { return n.id }

func (n *Node) String() string { return "nodesim{" + n.opts.Nexus + "/" + n.id[:8] + "}" }

// Start subscribes to RREGISTER, REGISTER and HEARTBEAT and starts the node
// heartbeat. Registrations start empty, as in a freshly started node.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return nil
	}
	if n.opts.State && n.kv == nil {
		js, err := jetstream.New(n.nc)
		if err != nil {
			return fmt.Errorf("nodesim: jetstream: %w", err)
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nex-" + n.id, MaxValueSize: 10 * 1024})
		if err != nil {
			return fmt.Errorf("nodesim: state bucket: %w", err)
		}
		n.kv = kv
	}
	svc, err := micro.AddService(n.nc, micro.Config{Name: "nexnode", Version: "0.0.0",
		Description: "nexfield node stand-in", QueueGroup: n.id})
	if err != nil {
		return fmt.Errorf("nodesim: service: %w", err)
	}
	adds := []struct {
		name, subject, queue string
		h                    micro.HandlerFunc
	}{
		{"RemoteRegister", nexapi.RemoteRegisterSubject(n.opts.Nexus), n.opts.Nexus, n.handleRemoteRegister},
		{"Register", nexapi.RegisterSubject(n.id, "*"), n.id, n.handleRegister},
		{"Heartbeat", nexapi.AgentHeartbeatSubject(n.id, "*"), n.id, n.handleHeartbeat},
	}
	for _, a := range adds {
		if err := svc.AddEndpoint(a.name, a.h, micro.WithEndpointSubject(a.subject), micro.WithEndpointQueueGroup(a.queue)); err != nil {
			svc.Stop()
			return fmt.Errorf("nodesim: endpoint %s: %w", a.name, err)
		}
	}
	if err := n.addControl(svc); err != nil {
		svc.Stop()
		return err
	}
	// The subscriptions must be on the server before anyone is told the
	// node is up.
	if err := n.nc.FlushTimeout(5 * time.Second); err != nil {
		svc.Stop()
		return fmt.Errorf("nodesim: flush: %w", err)
	}
	n.svc = svc
	n.running = true
	n.start = n.clk.Now()
	n.regs = map[string]*registration{}
	n.order = nil
	n.lameduck = false
	n.hbStop, n.hbDone = make(chan struct{}), make(chan struct{})
	go n.heartbeatLoop(n.hbStop, n.hbDone)
	n.log.Debug("node started", "node_id", n.id, "nexus", n.opts.Nexus)
	return nil
}

// Stop unsubscribes and stops the heartbeat; registrations are forgotten at
// the next Start. Idempotent.
func (n *Node) Stop() error {
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return nil
	}
	n.running = false
	svc, stop, done := n.svc, n.hbStop, n.hbDone
	n.mu.Unlock()
	close(stop)
	<-done
	err := svc.Stop()
	n.notify()
	return err
}

// Restart is Stop then Start: the node keeps its id (as with --node-seed)
// but forgets every registration, like a restarted Nex node.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.Start(ctx)
}

func (n *Node) heartbeatLoop(stop, done chan struct{}) {
	defer close(done)
	for {
		n.publishHeartbeat()
		t := n.clk.NewTimer(n.opts.HeartbeatInterval)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C():
		}
	}
}

func (n *Node) publishHeartbeat() {
	n.mu.Lock()
	ids := slices.Clone(n.order)
	types := map[string]string{}
	for id, r := range n.regs {
		types[id] = r.Register.RegisterType
	}
	n.mu.Unlock()
	b, _ := json.Marshal(nexapi.NodeHeartbeat{Registrations: nexapi.FormatRegistrations(ids, types)})
	if err := n.nc.Publish(nexapi.NodeHeartbeatSubject(n.id), b); err != nil {
		n.log.Debug("node heartbeat", "err", err)
	}
}

// PublishHeartbeat sends one node heartbeat now (tests use it instead of
// waiting for the period).
func (n *Node) PublishHeartbeat() { n.publishHeartbeat() }

func (n *Node) mint(purpose, id string) nexapi.NatsConnectionData {
	if n.opts.Mint != nil {
		return n.opts.Mint(purpose, id)
	}
	servers := n.opts.Servers
	if len(servers) == 0 {
		servers = []string{n.nc.ConnectedUrl()}
	}
	return nexapi.NatsConnectionData{NatsServers: slices.Clone(servers)}
}

// NodeError is an error reply of the node itself: Code (HTTP-like),
// Description (the Nats-Service-Error header) and Body. For 5xx codes the
// body says only nexapi.ErrTextInternal, as the node's, which logs the
// cause (Err) under the error id.
type NodeError struct {
	Code        int
	Description string
	Body        nexapi.NodeError
	Err         error
}

func newNodeError(code int, text string, cause error) *NodeError {
	body := nexapi.NodeError{ErrorID: nuid.Next(), Error: text}
	if code >= 500 {
		body.Error = nexapi.ErrTextInternal
	}
	return &NodeError{Code: code, Description: text, Body: body, Err: cause}
}

func (e *NodeError) Error() string {
	s := fmt.Sprintf("nodesim: node error %d: %s", e.Code, e.Description)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrNode) true.
func (e *NodeError) Is(target error) bool { return target == ErrNode }

func (e *NodeError) Unwrap() error { return e.Err }

func (e *NodeError) reply(req micro.Request) {
	body, _ := json.Marshal(e.Body)
	_ = req.Error(fmt.Sprint(e.Code), e.Description, body)
}

func nodeError(req micro.Request, code int, text string) { newNodeError(code, text, nil).reply(req) }

func (n *Node) handleRemoteRegister(req micro.Request) {
	var body map[string]any
	if err := json.Unmarshal(req.Data(), &body); err != nil {
		nodeError(req, 400, "failed to unmarshal remote register request")
		return
	}
	id := nuid.Next()
	creds := n.mint("registration", id)
	_ = req.RespondJSON(nexapi.RegisterRemoteAgentResponse{AssignedAgentID: id, RegistrationCreds: &creds, RespondTo: n.id})
}

func (n *Node) handleRegister(req micro.Request) {
	agentID := nexapi.LastToken(req.Subject())
	var r nexapi.RegisterAgentRequest
	if err := json.Unmarshal(req.Data(), &r); err != nil {
		nodeError(req, 400, "failed to unmarshal register request")
		return
	}
	if r.RegisterType == "" {
		nodeError(req, 400, "register_type is required")
		return
	}
	schema, err := nexapi.CompileStartRequestSchema(r.StartRequestSchema)
	if err != nil {
		nodeError(req, 400, "invalid start request schema: "+err.Error())
		return
	}
	n.mu.Lock()
	if _, dup := n.regs[agentID]; dup {
		n.mu.Unlock()
		nodeError(req, 500, nexapi.ErrTextRegistrationExists)
		return
	}
	n.regs[agentID] = &registration{Agent: Agent{ID: agentID, Register: r, Health: HealthUnknown}, schema: schema}
	n.order = append(n.order, agentID)
	kv := n.kv
	n.mu.Unlock()
	existing := map[string]nexapi.AgentStartWorkloadRequest{}
	if kv != nil {
		existing = n.existingState(context.Background(), kv, r.RegisterType)
	}
	n.log.Debug("agent registered", "agent_id", agentID, "type", r.RegisterType, "existing", len(existing))
	_ = req.RespondJSON(nexapi.RegisterAgentResponse{ConnectionData: n.mint("agent", agentID), ExistingState: existing, NodeID: n.id, Success: true})
	n.notify()
}

// existingState selects stored deploys whose key starts with the register
// type: a plain prefix match, as the real node does (docs/nex-protocol.md §12).
func (n *Node) existingState(ctx context.Context, kv jetstream.KeyValue, registerType string) map[string]nexapi.AgentStartWorkloadRequest {
	out := map[string]nexapi.AgentStartWorkloadRequest{}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return out
	}
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, registerType) {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var sw nexapi.StartWorkloadRequest
		if json.Unmarshal(e.Value(), &sw) != nil {
			continue
		}
		id := strings.TrimPrefix(k, registerType+"_")
		out[id] = nexapi.AgentStartWorkloadRequest{Request: sw, WorkloadCreds: n.mint("workload", id)}
	}
	return out
}

func (n *Node) handleHeartbeat(req micro.Request) {
	agentID := nexapi.LastToken(req.Subject())
	var hb nexapi.AgentHeartbeat
	if err := json.Unmarshal(req.Data(), &hb); err != nil {
		n.log.Debug("bad heartbeat", "agent_id", agentID, "err", err)
		return
	}
	n.mu.Lock()
	r, ok := n.regs[agentID]
	if ok {
		r.Summary = hb.Summary
		r.LastHeartbeat = n.clk.Now()
		r.Heartbeats++
	}
	n.mu.Unlock()
	if ok {
		n.notify()
	}
}

func healthOf(state string) string {
	switch state {
	case nexapi.AgentRunning:
		return HealthHealthy
	case nexapi.AgentStarting, nexapi.AgentError:
		return HealthDegraded
	case nexapi.AgentLameduck, nexapi.AgentStopping:
		return HealthShuttingDown
	}
	return HealthUnknown
}

// healthTick is the period of the node's health monitor.
const healthTick = 5 * time.Second

// health applies the node's ageing as the node does it
// (internal/agent_registration.go at e828c58): a heartbeat sets the health
// from its state at once, and only a monitor that ticks every 5 s from the
// node's start marks a registration degraded (last heartbeat > 10 s old)
// or offline (> 30 s). A registration whose agent died therefore stays
// healthy for 10-15 s after its last heartbeat, and deploys go to it.
func (n *Node) health(r *registration, now time.Time) string {
	if r.Heartbeats == 0 {
		return HealthUnknown
	}
	tick := n.start.Add(now.Sub(n.start).Truncate(healthTick))
	age := tick.Sub(r.LastHeartbeat)
	switch {
	case age > 30*time.Second:
		return HealthOffline
	case age > 10*time.Second:
		return HealthDegraded
	}
	return healthOf(r.Summary.State)
}

func (n *Node) notify() {
	n.mu.Lock()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// Agents lists the registrations in registration order (dead ones included:
// the node never removes them).
func (n *Node) Agents() []Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.clk.Now()
	out := make([]Agent, 0, len(n.order))
	for _, id := range n.order {
		r := n.regs[id]
		a := r.Agent
		a.Health = n.health(r, now)
		out = append(out, a)
	}
	return out
}

// WaitAgent waits until a registration of registerType is healthy (it has
// sent a "running" heartbeat) and returns it. An empty registerType matches
// any. Registrations whose id is in skip are ignored.
func (n *Node) WaitAgent(ctx context.Context, registerType string, skip ...string) (Agent, error) {
	for {
		n.mu.Lock()
		ch := n.changed
		n.mu.Unlock()
		for _, a := range n.Agents() {
			if (registerType == "" || a.Register.RegisterType == registerType) && a.Health == HealthHealthy && !slices.Contains(skip, a.ID) {
				return a, nil
			}
		}
		select {
		case <-ctx.Done():
			return Agent{}, fmt.Errorf("nodesim: wait for agent %q: %w", registerType, ctx.Err())
		case <-ch:
		}
	}
}

// WaitHealthy waits until the registration agentID is healthy.
func (n *Node) WaitHealthy(ctx context.Context, agentID string) (Agent, error) {
	for {
		n.mu.Lock()
		ch := n.changed
		n.mu.Unlock()
		for _, a := range n.Agents() {
			if a.ID == agentID && a.Health == HealthHealthy {
				return a, nil
			}
		}
		select {
		case <-ctx.Done():
			return Agent{}, fmt.Errorf("nodesim: wait for agent %s: %w", agentID, ctx.Err())
		case <-ch:
		}
	}
}

// Changed returns a channel closed at the next registration or heartbeat.
func (n *Node) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// pick chooses the registration a deploy goes to: a healthy one of the
// type. The node ranges over a map (GetByRegisterType in
// internal/agent_registration.go), so any healthy one may win; the stand-in
// takes the oldest, which after an agent restart is the dead registration
// that still looks healthy: the worst case, every time.
func (n *Node) pick(registerType string) (*registration, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil, ErrNotRunning
	}
	now := n.clk.Now()
	for _, id := range n.order {
		r := n.regs[id]
		if r.Register.RegisterType == registerType && n.health(r, now) == HealthHealthy {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoAgent, registerType)
}

// AgentError is the error reply of an agent: Code is its
// Nats-Service-Error-Code, Description the text, Body the reply body.
type AgentError struct {
	Code, Description string
	Body              []byte
}

func (e *AgentError) Error() string {
	return "nodesim: agent error " + e.Code + ": " + e.Description
}

// Is makes errors.Is(err, ErrAgent) true.
func (e *AgentError) Is(target error) bool { return target == ErrAgent }

func replyError(m *nats.Msg) error {
	if m.Header == nil {
		return nil
	}
	code := m.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	return &AgentError{Code: code, Description: m.Header.Get(micro.ErrorHeader), Body: m.Data}
}

// Deploy does what the node does for ADEPLOY: picks a healthy agent of
// registerType, validates run_request against its schema, generates the
// workload id, mints workload creds and sends STARTWORKLOAD (1 minute
// timeout). It returns the workload id. With State, the request is stored
// even when the agent refused it, as the node does.
func (n *Node) Deploy(ctx context.Context, registerType string, req nexapi.StartWorkloadRequest) (string, error) {
	r, err := n.pick(registerType)
	if err != nil {
		return "", err
	}
	if req.WorkloadType == "" {
		req.WorkloadType = registerType
	}
	if req.Namespace == "" {
		req.Namespace = "default"
	}
	if err := r.schema.Validate([]byte(req.RunRequest)); err != nil {
		return "", fmt.Errorf("nodesim: failed to validate run request: %w", err)
	}
	id := nuid.Next()
	m, err := n.requestStart(ctx, r.ID, id, req)
	if err != nil {
		// Nobody answered (a dead registration that still looks healthy):
		// the node answers 500 and stores nothing
		// (handleAuctionDeployWorkload returns before StoreWorkload).
		return id, newNodeError(500, nexapi.ErrTextStartNotDelivered, err)
	}
	_, err = decodeStartReply(m)
	if perr := n.store(ctx, req, id); perr != nil && err == nil {
		err = perr
	}
	return id, err
}

// store keeps a deploy like `--state kv`: key <workload_type>_<id>, written
// even when the agent refused it, as the node does.
func (n *Node) store(ctx context.Context, req nexapi.StartWorkloadRequest, id string) error {
	n.mu.Lock()
	kv := n.kv
	n.mu.Unlock()
	if kv == nil {
		return nil
	}
	b, _ := json.Marshal(req)
	if _, err := kv.Put(ctx, req.WorkloadType+"_"+id, b); err != nil {
		return fmt.Errorf("nodesim: store deploy: %w", err)
	}
	return nil
}

// StartWorkload sends one STARTWORKLOAD to agentID and decodes the reply.
func (n *Node) StartWorkload(ctx context.Context, agentID, workloadID string, req nexapi.StartWorkloadRequest) (nexapi.StartWorkloadResponse, error) {
	m, err := n.requestStart(ctx, agentID, workloadID, req)
	if err != nil {
		return nexapi.StartWorkloadResponse{}, err
	}
	return decodeStartReply(m)
}

// requestStart sends STARTWORKLOAD with freshly minted workload creds and
// the node's 1 minute timeout.
func (n *Node) requestStart(ctx context.Context, agentID, workloadID string, req nexapi.StartWorkloadRequest) (*nats.Msg, error) {
	body, err := json.Marshal(nexapi.AgentStartWorkloadRequest{Request: req, WorkloadCreds: n.mint("workload", workloadID)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := n.nc.RequestWithContext(ctx, nexapi.StartWorkloadSubject(n.id, agentID, workloadID), body)
	if err != nil {
		return nil, fmt.Errorf("nodesim: start workload: %w", err)
	}
	return m, nil
}

func decodeStartReply(m *nats.Msg) (nexapi.StartWorkloadResponse, error) {
	var resp nexapi.StartWorkloadResponse
	if err := replyError(m); err != nil {
		_ = json.Unmarshal(m.Data, &resp)
		return resp, err
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return resp, fmt.Errorf("nodesim: start workload reply: %w", err)
	}
	return resp, nil
}

// scatter sends one request to a subject every agent of the node listens on
// and collects up to want replies (every registration, dead ones included)
// within the request timeout, as the node does.
func (n *Node) scatter(ctx context.Context, subject string, body []byte, stopEarly func(*nats.Msg) bool) ([]*nats.Msg, error) {
	n.mu.Lock()
	want := len(n.order)
	n.mu.Unlock()
	if want == 0 {
		return nil, nil
	}
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(subject, inbox, body); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	var out []*nats.Msg
	for len(out) < want {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			break // no responders
		}
		out = append(out, m)
		if stopEarly != nil && stopEarly(m) {
			break
		}
	}
	return out, nil
}

// Undeploy stops a workload the way the node does for UNDEPLOY: STOPWORKLOAD
// to every agent, first reply with stopped=true wins, stored state removed.
func (n *Node) Undeploy(ctx context.Context, namespace, workloadID string) (nexapi.StopWorkloadResponse, error) {
	body, _ := json.Marshal(nexapi.StopWorkloadRequest{Namespace: namespace})
	var won *nexapi.StopWorkloadResponse
	_, err := n.scatter(ctx, nexapi.StopWorkloadSubject(n.id, workloadID), body, func(m *nats.Msg) bool {
		var r nexapi.StopWorkloadResponse
		if json.Unmarshal(m.Data, &r) == nil && r.Stopped {
			won = &r
			return true
		}
		return false
	})
	if err != nil {
		return nexapi.StopWorkloadResponse{}, fmt.Errorf("nodesim: stop workload: %w", err)
	}
	if won == nil {
		return nexapi.StopWorkloadResponse{ID: workloadID, Message: nexapi.ErrTextWorkloadNotFound}, nil
	}
	n.mu.Lock()
	kv := n.kv
	n.mu.Unlock()
	if kv != nil {
		_ = kv.Delete(ctx, won.WorkloadType+"_"+workloadID)
	}
	return *won, nil
}

// Query lists workloads like WPING: QUERYWORKLOADS to every agent, replies
// concatenated and sorted by id.
func (n *Node) Query(ctx context.Context, namespace string, filter []string) ([]nexapi.WorkloadSummary, error) {
	body, _ := json.Marshal(nexapi.AgentListWorkloadsRequest{Namespace: namespace, Filter: filter})
	msgs, err := n.scatter(ctx, nexapi.QueryWorkloadsSubject(n.id), body, nil)
	if err != nil {
		return nil, fmt.Errorf("nodesim: query workloads: %w", err)
	}
	var out []nexapi.WorkloadSummary
	for _, m := range msgs {
		var part []nexapi.WorkloadSummary
		if err := json.Unmarshal(m.Data, &part); err != nil {
			return nil, fmt.Errorf("nodesim: query reply %q: %w", m.Data, err)
		}
		out = append(out, part...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetWorkload asks GETWORKLOAD (used by clone); the first reply wins within
// 3 s. Agents stay silent for ids they do not own.
func (n *Node) GetWorkload(ctx context.Context, namespace, workloadID string) (nexapi.StartWorkloadRequest, error) {
	body, _ := json.Marshal(nexapi.CloneWorkloadRequest{Namespace: namespace})
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := n.nc.RequestWithContext(ctx, nexapi.GetWorkloadSubject(n.id, workloadID), body)
	if err != nil {
		return nexapi.StartWorkloadRequest{}, fmt.Errorf("nodesim: get workload: %w", err)
	}
	if err := replyError(m); err != nil {
		return nexapi.StartWorkloadRequest{}, err
	}
	var r nexapi.StartWorkloadRequest
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, fmt.Errorf("nodesim: get workload reply: %w", err)
	}
	return r, nil
}

// Ping pings one agent and returns its summary and the agentId header.
func (n *Node) Ping(ctx context.Context, agentID string) (nexapi.AgentSummary, string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	m, err := n.nc.RequestWithContext(ctx, nexapi.PingAgentSubject(n.id, agentID), nil)
	if err != nil {
		return nexapi.AgentSummary{}, "", fmt.Errorf("nodesim: ping: %w", err)
	}
	var s nexapi.AgentSummary
	if err := json.Unmarshal(m.Data, &s); err != nil {
		return s, "", fmt.Errorf("nodesim: ping reply: %w", err)
	}
	return s, m.Header.Get(nexapi.HeaderAgentID), nil
}

// PingAll pings every agent of the node and returns the summaries by the
// agentId header.
func (n *Node) PingAll(ctx context.Context) (map[string]nexapi.AgentSummary, error) {
	msgs, err := n.scatter(ctx, nexapi.PingAllAgentsSubject(n.id), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("nodesim: ping all: %w", err)
	}
	out := map[string]nexapi.AgentSummary{}
	for _, m := range msgs {
		var s nexapi.AgentSummary
		if json.Unmarshal(m.Data, &s) == nil {
			out[m.Header.Get(nexapi.HeaderAgentID)] = s
		}
	}
	return out, nil
}

// SetLameduck sends SETLAMEDUCK to every agent and returns their replies.
func (n *Node) SetLameduck(ctx context.Context, delay time.Duration) ([]nexapi.LameduckResponse, error) {
	body, _ := json.Marshal(nexapi.LameduckRequest{Delay: delay.String()})
	n.mu.Lock()
	n.lameduck = true
	n.mu.Unlock()
	msgs, err := n.scatter(ctx, nexapi.SetLameduckSubject(n.id), body, nil)
	if err != nil {
		return nil, fmt.Errorf("nodesim: lameduck: %w", err)
	}
	var out []nexapi.LameduckResponse
	for _, m := range msgs {
		var r nexapi.LameduckResponse
		if json.Unmarshal(m.Data, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
