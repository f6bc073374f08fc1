package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/workload"
	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/internal/atomicfile"
)

// Errors.
var (
	// ErrInvalidOpts wraps every Opts validation failure of New.
	ErrInvalidOpts = errors.New("agent: invalid options")
	// ErrNotRegistered is what Healthy returns before the first registration.
	ErrNotRegistered = errors.New("agent: not registered")
	// ErrDisconnected is returned by Healthy while the NATS connection is
	// down and being retried.
	ErrDisconnected = errors.New("agent: NATS connection lost")
	// ErrLameduck refuses new work after SETLAMEDUCK.
	ErrLameduck = errors.New("agent is in lameduck mode and accepts no new workloads")
)

// Defaults of Opts.
const (
	DefaultNexus     = "nexus"
	DefaultType      = "nexfield"
	DefaultStateDir  = "/var/lib/nexfield"
	DefaultHeartbeat = 5 * time.Second
	// DefaultNodeSilence is how long the node heartbeat may be missing before
	// the agent registers again; the node itself calls an agent offline
	// after 30 s.
	DefaultNodeSilence = 30 * time.Second
	// DefaultMetricsInterval: often enough for a dashboard, rare enough to
	// cost nothing on a Pi Zero and on a metered uplink.
	DefaultMetricsInterval = 15 * time.Second
)

// Opts configures an Agent. The zero value registers as type "nexfield"
// with nexus "nexus" on nats://127.0.0.1:4222, state in /var/lib/nexfield.
type Opts struct {
	// Servers are the bootstrap NATS URLs. Zero: nats://127.0.0.1:4222.
	Servers []string
	// CredsFile is a NATS .creds file for the bootstrap connection. Zero: none.
	CredsFile string
	// NATSOptions are added to every connection the agent makes (tests, TLS).
	NATSOptions []nats.Option
	// Nexus is the nexus name the node was started with. Zero: "nexus".
	Nexus string
	// Type is the register type (auction "agent_type"). It must not be a
	// prefix of another agent type on the same node (docs/nex-protocol.md §12).
	// Zero: "nexfield".
	Type string
	// Name is the agent name and micro service name ([A-Za-z0-9_-]).
	// Zero: "nexfield-<hostname>".
	Name string
	// Description is free text shown by the node. Zero: a generic line.
	Description string
	// Version is the agent version; must be SemVer for the micro service.
	// Zero or not SemVer: "0.0.0".
	Version string
	// Tags are reported in the heartbeat data (the node's placement uses
	// only its own tags). Zero: none.
	Tags map[string]string
	// StateDir holds the artifact cache and workload records. Zero:
	// /var/lib/nexfield.
	StateDir string
	// Heartbeat is the heartbeat period. Zero: 5s (the node's threshold for
	// degraded is 10 s).
	Heartbeat time.Duration
	// NodeSilence re-registers when the node heartbeat is missing this long.
	// Zero: 30s.
	NodeSilence time.Duration
	// RetryBackoff is the first wait between failed registration attempts,
	// doubled up to 30 s. Zero: 1s.
	RetryBackoff time.Duration
	// ReconnectWait and PingInterval tune how fast a lost connection is
	// noticed and retried. Zero: 1s and 20s.
	ReconnectWait, PingInterval time.Duration
	// AdoptUnknown starts services and functions from the node's
	// existing_state that this agent has no local record of. The node gives
	// every agent of a type all of that type's stored deploys, so with
	// several agents of one type this would duplicate workloads; it is meant
	// for a single agent per type whose state dir was lost. Zero: off.
	AdoptUnknown bool
	// MetricsInterval is how often each running workload's resource use is
	// published on $NEX.FEED.<namespace>.metrics.<workloadId>. Zero: 15s;
	// negative: never.
	MetricsInterval time.Duration
	// IngressHost, when set, is the address at which this machine's
	// workloads are reachable: on start, a workload's first expose_ports
	// entry is announced as "<IngressHost>:<port>" on
	// $NEX.FEED.<agentId>.events.INGRESS, and withdrawn on stop (as the
	// native nexlet does for an ingress proxy). Zero: no announcements.
	IngressHost string
	// SecretsFile is the local secret store for secret:// values. Zero: none.
	SecretsFile string
	// StopGrace is the SIGTERM → SIGKILL delay. Zero: the runtime's 5s.
	StopGrace time.Duration
	// Logger receives the agent's logs. Nil: discard.
	Logger *slog.Logger
	// Clock drives heartbeats and timeouts. Nil: real time.
	Clock clock.Clock
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	hostRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
)

// Agent is the remote Nexlet: it registers with a Nex node, serves the agent
// endpoints, runs workloads through a workload.Supervisor and re-registers
// when the node forgets it.
type Agent struct {
	opts   Opts
	log    *slog.Logger
	clk    clock.Clock
	schema *nexapi.StartRequestSchema
	xkp    nkeys.KeyPair // curve key: opens EncEnv environments
	xkey   string
	start  time.Time

	store *artifact.Store
	sup   *workload.Supervisor

	ready     chan struct{}
	readyOnce sync.Once

	// boot is the bootstrap connection, alive for the whole Run; logs and
	// events go out on it so they flow between registrations too.
	boot *nats.Conn
	logs *logQueue // workload output on its way out on boot

	lameduck atomic.Bool
	// sawNodeHB is set by the first node heartbeat received: only then is
	// silence meaningful (bootstrap credentials may not allow subscribing
	// to the node heartbeat, and then the agent must not re-register every
	// NodeSilence).
	sawNodeHB atomic.Bool
	lastHBOK  atomic.Int64 // unix nanos of the last successful heartbeat publish
	reregs    atomic.Int64
	mu        sync.Mutex
	sess      *session        // current registration, nil between registrations
	dismissed map[string]bool // finished workloads an operator stopped
	lastError string
	// savedReg is registrationFile as last read or written (Run's
	// goroutine only).
	savedReg []byte
	running  atomic.Bool
	handlers sync.WaitGroup
}

// New validates opts and prepares the artifact cache and the workload
// supervisor under StateDir. It does no network I/O; Run does.
func New(opts *Opts) (*Agent, error) {
	o := Opts{}
	if opts != nil {
		o = *opts
	}
	if len(o.Servers) == 0 {
		o.Servers = []string{nats.DefaultURL}
	}
	if o.Nexus == "" {
		o.Nexus = DefaultNexus
	}
	if o.Type == "" {
		o.Type = DefaultType
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = "nexfield-" + sanitizeName(h)
	}
	if o.Description == "" {
		o.Description = "nexfield remote Nexlet: runs native binaries pulled from the object store"
	}
	if !semverRE.MatchString(o.Version) {
		o.Version = "0.0.0"
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.NodeSilence <= 0 {
		o.NodeSilence = DefaultNodeSilence
	}
	if o.MetricsInterval == 0 {
		o.MetricsInterval = DefaultMetricsInterval
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = time.Second
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 20 * time.Second
	}
	switch {
	case !nexapi.ValidToken(o.Nexus):
		return nil, fmt.Errorf("%w: nexus %q is not a subject token", ErrInvalidOpts, o.Nexus)
	case !nexapi.ValidToken(o.Type) || strings.ContainsAny(o.Type, "_"):
		// "_" separates type and workload id in the node's state keys.
		return nil, fmt.Errorf("%w: type %q must be one subject token without '_'", ErrInvalidOpts, o.Type)
	case !nameRE.MatchString(o.Name):
		return nil, fmt.Errorf("%w: name %q must match [A-Za-z0-9_-]+", ErrInvalidOpts, o.Name)
	case o.IngressHost != "" && net.ParseIP(o.IngressHost) == nil && !hostRE.MatchString(o.IngressHost):
		return nil, fmt.Errorf("%w: ingress host %q is neither an IP address nor a host name", ErrInvalidOpts, o.IngressHost)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	schema, err := nexapi.CompileStartRequestSchema(StartRequestSchema)
	if err != nil {
		return nil, fmt.Errorf("agent: own schema: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: state dir: %w", err)
	}
	xkp, err := loadXkey(filepath.Join(o.StateDir, xkeyFile))
	if err != nil {
		return nil, err
	}
	xpub, err := xkp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("agent: xkey: %w", err)
	}
	a := &Agent{opts: o, log: log, clk: clock.Or(o.Clock), schema: schema, xkp: xkp, xkey: xpub, ready: make(chan struct{}), logs: newLogQueue()}
	a.start = a.clk.Now()
	a.store, err = artifact.New(filepath.Join(o.StateDir, "artifacts"), &artifact.Opts{Logger: log.With("component", "artifact")})
	if err != nil {
		return nil, fmt.Errorf("agent: artifact cache: %w", err)
	}
	a.dismissed = readDismissed(filepath.Join(o.StateDir, dismissedFile))
	a.sup, err = workload.New(&workload.Opts{
		StateDir:    filepath.Join(o.StateDir, "workloads"),
		Artifacts:   a.store,
		Events:      (*events)(a),
		Logger:      log.With("component", "workload"),
		StopGrace:   o.StopGrace,
		SecretsFile: o.SecretsFile,
		Clock:       o.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: supervisor: %w", err)
	}
	return a, nil
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "host"
	}
	return string(b)
}

func (a *Agent) String() string { return "agent{" + a.opts.Type + "/" + a.opts.Name + "}" }

// Ready is closed once the agent is registered and serving its endpoints.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// AgentID is the id of the current registration ("" between registrations).
func (a *Agent) AgentID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == nil {
		return ""
	}
	return a.sess.agentID
}

// NodeID is the node of the current registration ("" between registrations).
func (a *Agent) NodeID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == nil {
		return ""
	}
	return a.sess.nodeID
}

// Registrations counts successful registrations since Run started.
func (a *Agent) Registrations() int64 { return a.reregs.Load() }

// Healthy returns nil while the agent is registered, NATS is connected and
// the last heartbeat publish succeeded within three periods.
func (a *Agent) Healthy() error {
	a.mu.Lock()
	s, last := a.sess, a.lastError
	a.mu.Unlock()
	if s == nil {
		if last != "" {
			return fmt.Errorf("%w: %s", ErrNotRegistered, last)
		}
		return ErrNotRegistered
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("%w (%s)", ErrDisconnected, s.nc.Status())
	}
	ok := time.Unix(0, a.lastHBOK.Load())
	if age := a.clk.Now().Sub(ok); age > 3*a.opts.Heartbeat {
		return fmt.Errorf("agent: no heartbeat published for %s", age.Round(time.Second))
	}
	return nil
}

// Status is one human line for systemd's STATUS=.
func (a *Agent) Status() string {
	a.mu.Lock()
	s, last := a.sess, a.lastError
	a.mu.Unlock()
	n := a.activeCount()
	if s == nil {
		if last != "" {
			return fmt.Sprintf("registering with nexus %s (%s); %d workloads", a.opts.Nexus, last, n)
		}
		return fmt.Sprintf("registering with nexus %s; %d workloads", a.opts.Nexus, n)
	}
	state := "registered"
	if a.lameduck.Load() {
		state = "lameduck"
	}
	return fmt.Sprintf("%s as %s (type %s) with node %.8s…; %d workloads", state, s.agentID, a.opts.Type, s.nodeID, n)
}

// Run restores the workloads recorded in the state dir, connects, registers
// and serves until ctx is cancelled, registering again whenever the node
// forgets the agent or the registration is lost. Workloads keep running
// through re-registrations and after Run returns (a restarted agent adopts
// them); only SETLAMEDUCK stops them. It returns nil when ctx is cancelled.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: already running")
	}
	// The bootstrap connection comes first (it does not wait for the
	// network): restored workloads log and emit events on it.
	var err error
	a.boot, err = a.dialBootstrap()
	if err != nil {
		return err
	}
	logsQuit, logsDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(logsDone)
		a.runLogs(logsQuit)
	}()
	restored, err := a.sup.Restore(ctx)
	if err != nil {
		a.log.Warn("restore workloads", "err", err)
	}
	for _, st := range restored {
		a.log.Info("workload restored", "workload_id", st.Spec.ID, "state", string(st.State), "pid", st.PID)
	}
	if a.opts.MetricsInterval > 0 {
		a.handlers.Add(1)
		go func() {
			defer a.handlers.Done()
			a.publishMetrics(ctx)
		}()
	}
	defer func() {
		a.handlers.Wait()
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.sup.Close(closeCtx); err != nil {
			a.log.Warn("close supervisor", "err", err)
		}
		cancel()
		close(logsQuit)
		<-logsDone
		// Flush, not Drain: Drain closes in the background and the process
		// may exit first, losing the last events.
		_ = a.boot.FlushTimeout(time.Second)
		a.boot.Close()
		a.log.Info("agent stopped; workloads keep running", "workloads", a.activeCount())
	}()
	backoff := a.opts.RetryBackoff
	// The registration of the previous run, if any, is taken over rather
	// than replaced: the node still sends deploys to it for 10-15 s.
	prev, resumable := a.loadRegistration()
	for ctx.Err() == nil {
		var s *session
		var err error
		if resumable {
			s, err = a.resume(ctx, prev)
			if errors.Is(err, errNotResumable) {
				a.log.Info("previous registration not taken over; registering afresh", "agent_id", prev.AgentID, "node_id", prev.NodeID, "reason", err)
				resumable = false
				s, err = a.register(ctx)
			}
		} else {
			s, err = a.register(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.setLastError(err)
			a.log.Warn("registration failed", "err", err, "retry_in", backoff.String())
			if !a.sleep(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		// A registration lost later was lost for a reason (the node forgot
		// it): the next one is fresh.
		resumable = false
		backoff = a.opts.RetryBackoff
		reason := a.serve(ctx, s)
		a.endSession(s)
		if ctx.Err() != nil {
			break
		}
		a.log.Warn("registration lost, registering again", "reason", reason, "agent_id", s.agentID)
		a.setLastError(errors.New(reason))
	}
	return nil
}

func (a *Agent) setLastError(err error) {
	a.mu.Lock()
	a.lastError = err.Error()
	a.mu.Unlock()
}

func (a *Agent) sleep(ctx context.Context, d time.Duration) bool {
	t := a.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// session is one registration with one node.
type session struct {
	agentID, nodeID string
	nc              *nats.Conn // endpoints and heartbeats
	shared          bool       // nc is the bootstrap connection
	svc             micro.Service
	lost            chan string // why the registration is gone
	lostOnce        sync.Once
	nodeSub         *nats.Subscription
	existing        map[string]nexapi.AgentStartWorkloadRequest
}

func (s *session) lose(reason string) {
	s.lostOnce.Do(func() { s.lost <- reason })
}

// register runs RREGISTER then REGISTER and brings up the endpoints.
func (a *Agent) register(ctx context.Context) (*session, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	body, _ := json.Marshal(nexapi.RegisterRemoteAgentRequest{})
	m, err := a.boot.RequestWithContext(rctx, nexapi.RemoteRegisterSubject(a.opts.Nexus), body)
	cancel()
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("agent: no node of nexus %q allows remote agents (nex node up --allow-remote-agent-registration)", a.opts.Nexus)
		}
		return nil, fmt.Errorf("agent: remote register: %w", err)
	}
	if err := replyErr(m); err != nil {
		return nil, fmt.Errorf("agent: remote register refused: %w", err)
	}
	var rr nexapi.RegisterRemoteAgentResponse
	if err := json.Unmarshal(m.Data, &rr); err != nil {
		return nil, fmt.Errorf("agent: remote register reply: %w", err)
	}
	if !nexapi.ValidToken(rr.AssignedAgentID) || !nexapi.ValidToken(rr.RespondTo) {
		return nil, fmt.Errorf("agent: remote register reply has invalid ids %q/%q", rr.AssignedAgentID, rr.RespondTo)
	}
	var regCreds nexapi.NatsConnectionData
	if rr.RegistrationCreds != nil {
		regCreds = *rr.RegistrationCreds
	}
	return a.registerAs(ctx, rr.RespondTo, rr.AssignedAgentID, regCreds, nil)
}

// registerAs sends REGISTER for agentID to nodeID and brings up the
// endpoints. held is the connection data of a registration this agent
// already had under agentID (nil for a new one): a node that still holds
// the id refuses the duplicate with 500 "failed to update registration"
// (docs/nex-protocol.md §2.2), which confirms that it is still ours, and
// the session goes on with held and no existing_state.
func (a *Agent) registerAs(ctx context.Context, nodeID, agentID string, regCreds nexapi.NatsConnectionData, held *nexapi.NatsConnectionData) (*session, error) {
	regNC, shared, err := a.dialWith(ctx, regCreds, "nexfield register "+agentID, false)
	if err != nil {
		return nil, err
	}
	req := a.registerRequest()
	body, _ := json.Marshal(req)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	m, err := regNC.RequestWithContext(rctx, nexapi.RegisterSubject(nodeID, agentID), body)
	cancel()
	if !shared {
		regNC.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("agent: register: %w", err)
	}
	var resp nexapi.RegisterAgentResponse
	if held != nil && m.Header.Get(micro.ErrorCodeHeader) == "500" && m.Header.Get(micro.ErrorHeader) == nexapi.ErrTextRegistrationExists {
		resp = nexapi.RegisterAgentResponse{ConnectionData: *held, NodeID: nodeID, Success: true}
	} else {
		if err := replyErr(m); err != nil {
			return nil, fmt.Errorf("agent: register refused: %w", err)
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return nil, fmt.Errorf("agent: register reply: %w", err)
		}
		if !resp.Success {
			return nil, fmt.Errorf("agent: register refused: %s", resp.Message)
		}
	}
	if resp.NodeID != "" && resp.NodeID != nodeID {
		a.log.Warn("node id of register reply differs", "respond_to", nodeID, "node_id", resp.NodeID)
	}
	nc, shared, err := a.dialWith(ctx, resp.ConnectionData, "nexfield agent "+agentID, true)
	if err != nil {
		return nil, err
	}
	s := &session{agentID: agentID, nodeID: nodeID, nc: nc, shared: shared, lost: make(chan string, 1), existing: resp.ExistingState}
	if err := a.addService(s); err != nil {
		if !shared {
			nc.Close()
		}
		return nil, err
	}
	a.saveRegistration(savedRegistration{Nexus: a.opts.Nexus, NodeID: nodeID, AgentID: agentID, Request: req,
		RegistrationCreds: regCreds, ConnectionData: resp.ConnectionData})
	return s, nil
}

func (a *Agent) registerRequest() nexapi.RegisterAgentRequest {
	return nexapi.RegisterAgentRequest{
		Description:         a.opts.Description,
		MaxWorkloads:        0,
		Name:                a.opts.Name,
		PublicXkey:          a.xkey,
		RegisterType:        a.opts.Type,
		StartRequestSchema:  StartRequestSchema,
		SupportedLifecycles: []string{nexapi.LifecycleService, nexapi.LifecycleJob, nexapi.LifecycleFunction},
		Version:             a.opts.Version,
	}
}

func replyErr(m *nats.Msg) error {
	if m.Header == nil {
		return nil
	}
	code := m.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	desc := m.Header.Get(micro.ErrorHeader)
	var ne nexapi.NodeError
	if json.Unmarshal(m.Data, &ne) == nil && ne.Error != "" && ne.Error != desc {
		desc += ": " + ne.Error
	}
	return fmt.Errorf("%s %s", code, desc)
}

// serve heartbeats, watches the node and replays existing_state until the
// registration is lost or ctx ends; it returns why.
func (a *Agent) serve(ctx context.Context, s *session) string {
	a.mu.Lock()
	a.sess = s
	a.lastError = ""
	a.mu.Unlock()
	a.lameduck.Store(false)
	a.reregs.Add(1)
	a.heartbeat(s)
	a.log.Info("registered", "agent_id", s.agentID, "node_id", s.nodeID, "type", a.opts.Type, "existing", len(s.existing))
	a.readyOnce.Do(func() { close(a.ready) })
	a.reconcile(ctx, s)
	a.reannounceIngress()
	watch := a.watchNode(s)
	defer watch()

	t := a.clk.NewTimer(a.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "shutdown"
		case r := <-s.lost:
			return r
		case <-t.C():
			a.heartbeat(s)
			t.Reset(a.opts.Heartbeat)
		}
	}
}

func (a *Agent) endSession(s *session) {
	a.mu.Lock()
	if a.sess == s {
		a.sess = nil
	}
	a.mu.Unlock()
	if s.nodeSub != nil {
		_ = s.nodeSub.Unsubscribe()
	}
	if err := s.svc.Stop(); err != nil {
		a.log.Debug("stop service", "err", err)
	}
	if !s.shared {
		s.nc.Close()
	}
}

func (a *Agent) summary() nexapi.AgentSummary {
	state := nexapi.AgentRunning
	if a.lameduck.Load() {
		state = nexapi.AgentLameduck
	}
	return nexapi.AgentSummary{
		Name:                a.opts.Name,
		StartTime:           a.start.UTC().Format(time.RFC3339Nano),
		State:               state,
		SupportedLifecycles: "service,job,function",
		Type:                a.opts.Type,
		Version:             a.opts.Version,
		WorkloadCount:       a.activeCount(),
	}
}

// heartbeatData is the free-form "data" of the heartbeat: what a node
// operator wants to know about a Pi that the node's own tags cannot say.
type heartbeatData struct {
	RegisterType   string `json:"register_type"`
	NamespaceCount int    `json:"namespace_count"`
	// Platform is what binaries this agent runs: "linux-arm64",
	// "linux-armv7", ... (the suffix of per-architecture objects).
	Platform string            `json:"platform"`
	Tags     map[string]string `json:"tags,omitempty"`
}

func (a *Agent) heartbeat(s *session) {
	list := a.sup.List()
	ns := map[string]bool{}
	for _, st := range list {
		if active(st) {
			ns[st.Spec.Namespace] = true
		}
	}
	data, _ := json.Marshal(heartbeatData{RegisterType: a.opts.Type, NamespaceCount: len(ns), Platform: a.store.Platform().String(), Tags: a.opts.Tags})
	b, _ := json.Marshal(nexapi.AgentHeartbeat{Data: string(data), Summary: a.summary()})
	if err := s.nc.Publish(nexapi.AgentHeartbeatSubject(s.nodeID, s.agentID), b); err != nil {
		a.log.Warn("heartbeat", "err", err)
		return
	}
	if s.nc.IsConnected() {
		a.lastHBOK.Store(a.clk.Now().UnixNano())
	}
}

// watchNode follows the node heartbeat: our id missing from two heartbeats
// in a row (one may have been produced just before we registered) or no
// heartbeat for NodeSilence means the node restarted or forgot us. Silence
// counts only once this agent has ever received a node heartbeat.
func (a *Agent) watchNode(s *session) (stop func()) {
	var mu sync.Mutex
	misses := 0
	last := a.clk.Now()
	sub, err := a.boot.Subscribe(nexapi.NodeHeartbeatSubject(s.nodeID), func(m *nats.Msg) {
		var hb nexapi.NodeHeartbeat
		if json.Unmarshal(m.Data, &hb) != nil {
			return
		}
		a.sawNodeHB.Store(true)
		mu.Lock()
		defer mu.Unlock()
		last = a.clk.Now()
		if _, ok := nexapi.ParseRegistrations(hb.Registrations)[s.agentID]; ok {
			misses = 0
			return
		}
		misses++
		if misses >= 2 {
			s.lose("node heartbeat no longer lists this agent (node restarted)")
		}
	})
	if err != nil {
		a.log.Warn("cannot watch node heartbeat; relying on the connection only", "err", err)
	}
	s.nodeSub = sub
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		period := min(a.opts.NodeSilence/4, a.opts.Heartbeat)
		for {
			t := a.clk.NewTimer(period)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C():
			}
			mu.Lock()
			silent := a.clk.Now().Sub(last)
			mu.Unlock()
			if !a.boot.IsConnected() {
				// Our own link is down: the silence says nothing about the
				// node. Count from the reconnect instead.
				mu.Lock()
				last = a.clk.Now()
				mu.Unlock()
				continue
			}
			if sub != nil && a.sawNodeHB.Load() && silent > a.opts.NodeSilence {
				s.lose(fmt.Sprintf("no node heartbeat for %s", silent.Round(time.Second)))
			}
		}
	}()
	return func() { close(done); <-exited }
}

// reconcile replays existing_state. Workloads the supervisor already has
// (re-adopted after an agent restart, or kept through a re-registration)
// are left alone. The node hands every agent of a type all stored deploys
// of that type, so an id this agent has no record of is usually another
// agent's: it is started only with AdoptUnknown (one agent per type whose
// state dir was lost), and never when it is a job. Entries of other types
// (the node selects by plain prefix) are skipped.
func (a *Agent) reconcile(ctx context.Context, s *session) {
	for id, req := range s.existing {
		if req.Request.WorkloadType != "" && req.Request.WorkloadType != a.opts.Type {
			a.log.Debug("existing state of another type skipped", "workload_id", id, "type", req.Request.WorkloadType)
			continue
		}
		if _, ok := a.sup.Get(id); ok {
			continue
		}
		if !a.opts.AdoptUnknown {
			a.log.Info("existing workload without a local record not started (another agent's, or use AdoptUnknown)", "workload_id", id, "name", req.Request.Name)
			continue
		}
		body, _ := json.Marshal(req)
		spec, _, err := a.specFor(id, body)
		if err != nil {
			a.log.Warn("existing workload not restarted", "workload_id", id, "err", err)
			continue
		}
		if spec.Lifecycle == lifecycleJob {
			// A job the node remembers but we have no record of has run (or
			// failed) before; the node keeps such entries forever.
			a.log.Info("existing job not re-run", "workload_id", id)
			continue
		}
		a.handlers.Add(1)
		go func() {
			defer a.handlers.Done()
			if _, err := a.sup.Start(ctx, spec); err != nil {
				a.log.Warn("existing workload failed to start", "workload_id", id, "err", err)
			}
		}()
	}
}

func active(st workload.Status) bool {
	switch st.State {
	case workload.Stopped, workload.Exited, workload.Failed:
		return false
	}
	return true
}

func (a *Agent) activeCount() int {
	n := 0
	for _, st := range a.sup.List() {
		if active(st) {
			n++
		}
	}
	return n
}

// dismissedFile lists the finished workloads an operator stopped, so that
// they stay out of queries after an agent restart.
const dismissedFile = "dismissed.json"

func readDismissed(path string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	var ids []string
	if json.Unmarshal(b, &ids) != nil {
		return out
	}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// xkeyFile holds the seed of the agent's curve key, so that public_xkey
// (and what was sealed to it) survives agent restarts.
const xkeyFile = "xkey.seed"

func loadXkey(path string) (nkeys.KeyPair, error) {
	if b, err := os.ReadFile(path); err == nil {
		kp, err := nkeys.FromCurveSeed(bytes.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("agent: xkey seed %s: %w", path, err)
		}
		return kp, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("agent: xkey seed: %w", err)
	}
	kp, err := nkeys.CreateCurveKeys()
	if err != nil {
		return nil, fmt.Errorf("agent: xkey: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("agent: xkey: %w", err)
	}
	if err := atomicfile.WriteFile(path, seed, 0o600); err != nil {
		return nil, fmt.Errorf("agent: xkey: %w", err)
	}
	return kp, nil
}
