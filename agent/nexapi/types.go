package nexapi

import "encoding/json"

// Lifecycles a workload can have.
const (
	LifecycleService  = "service"
	LifecycleJob      = "job"
	LifecycleFunction = "function"
)

// Agent states reported in AgentSummary.State. The node maps running to
// healthy, starting/error to degraded, lameduck/stopping to shutting down.
const (
	AgentStarting = "starting"
	AgentRunning  = "running"
	AgentLameduck = "lameduck"
	AgentStopping = "stopping"
	AgentError    = "error"
)

// Workload states reported in WorkloadSummary.WorkloadState.
const (
	WorkloadStarting = "starting"
	WorkloadRunning  = "running"
	WorkloadWarm     = "warm"
	WorkloadStopping = "stopping"
	WorkloadStopped  = "stopped"
	WorkloadError    = "error"
)

// Wire error codes and texts of the agent side (docs/nex-protocol.md §1.5, §4.2).
const (
	// AgentErrorCode is the only Nats-Service-Error-Code agents use.
	AgentErrorCode = "100"
	// ErrTextWorkloadNotFound is the generic text the node and CLI expect.
	ErrTextWorkloadNotFound = "workload not found"
	// ErrTextNamespaceNotFound is the other generic text of the schemas.
	ErrTextNamespaceNotFound = "namespace not found"
)

// Node error descriptions (Nats-Service-Error) that callers branch on. For
// 5xx codes the node replaces the body's text with ErrTextInternal but keeps
// these descriptions (handlerError in the node's handlers.go).
const (
	// ErrTextInternal is the body text of every 5xx node error.
	ErrTextInternal = "internal server error"
	// ErrTextRegistrationExists answers REGISTER of an agent id the node
	// already holds (code 500).
	ErrTextRegistrationExists = "failed to update registration"
	// ErrTextStartNotDelivered answers ADEPLOY when the chosen agent did not
	// answer STARTWORKLOAD (code 500): no responders, or its 1 min timeout.
	ErrTextStartNotDelivered = "failed to publish start workload request"
)

// Headers set on agent replies and function trigger replies.
const (
	HeaderAgentID    = "agentId"
	HeaderWorkloadID = "workload_id"
	HeaderNamespace  = "namespace"
	HeaderError      = "error"
)

// NatsConnectionData tells a consumer how to connect to NATS. All 11 keys
// are required on the wire. TLS fields are file paths, not PEM text.
type NatsConnectionData struct {
	ConnName         string   `json:"conn_name"`
	NatsServers      []string `json:"nats_servers"`
	NatsUserJWT      string   `json:"nats_user_jwt"`
	NatsUserName     string   `json:"nats_user_name"`
	NatsUserNkey     string   `json:"nats_user_nkey"`
	NatsUserPassword string   `json:"nats_user_password"`
	NatsUserSeed     string   `json:"nats_user_seed"`
	TLSCA            string   `json:"tls_ca"`
	TLSCert          string   `json:"tls_cert"`
	TLSFirst         bool     `json:"tls_first"`
	TLSKey           string   `json:"tls_key"`
}

// MarshalJSON emits nats_servers as [] rather than null when empty, as the
// node does.
func (c NatsConnectionData) MarshalJSON() ([]byte, error) {
	type plain NatsConnectionData
	p := plain(c)
	if p.NatsServers == nil {
		p.NatsServers = []string{}
	}
	return json.Marshal(p)
}

// Empty reports whether c names neither servers nor credentials.
func (c NatsConnectionData) Empty() bool {
	return len(c.NatsServers) == 0 && c.NatsUserJWT == "" && c.NatsUserSeed == "" &&
		c.NatsUserNkey == "" && c.NatsUserName == "" && c.NatsUserPassword == "" &&
		c.TLSCA == "" && c.TLSCert == "" && c.TLSKey == ""
}

// RegisterRemoteAgentRequest is the body of RREGISTER; the SDK sends {}.
type RegisterRemoteAgentRequest struct{}

// RegisterRemoteAgentResponse is the node's answer to RREGISTER.
type RegisterRemoteAgentResponse struct {
	AssignedAgentID   string              `json:"assigned_agent_id"`
	RegistrationCreds *NatsConnectionData `json:"registration_creds,omitempty"`
	RespondTo         string              `json:"respond_to"`
}

// RegisterAgentRequest is the body of REGISTER. Every key but
// supported_lifecycles is required by the node's decoder.
type RegisterAgentRequest struct {
	Description         string   `json:"description"`
	MaxWorkloads        float64  `json:"max_workloads"`
	Name                string   `json:"name"`
	PublicXkey          string   `json:"public_xkey"`
	RegisterType        string   `json:"register_type"`
	StartRequestSchema  string   `json:"start_request_schema"`
	SupportedLifecycles []string `json:"supported_lifecycles,omitempty"`
	Version             string   `json:"version"`
}

// RegisterAgentResponse is the node's answer to REGISTER.
type RegisterAgentResponse struct {
	ConnectionData NatsConnectionData                   `json:"connection_data"`
	ExistingState  map[string]AgentStartWorkloadRequest `json:"existing_state"`
	Message        string                               `json:"message"`
	NodeID         string                               `json:"node_id"`
	Success        bool                                 `json:"success"`
}

// MarshalJSON emits existing_state as {} rather than null when empty.
func (r RegisterAgentResponse) MarshalJSON() ([]byte, error) {
	type plain RegisterAgentResponse
	p := plain(r)
	if p.ExistingState == nil {
		p.ExistingState = map[string]AgentStartWorkloadRequest{}
	}
	return json.Marshal(p)
}

// AgentSummary describes an agent in heartbeats and ping replies.
// SupportedLifecycles is comma-joined ("service,job,function").
type AgentSummary struct {
	Name                string `json:"name"`
	StartTime           string `json:"start_time"`
	State               string `json:"state"`
	SupportedLifecycles string `json:"supported_lifecycles"`
	Type                string `json:"type"`
	Version             string `json:"version"`
	WorkloadCount       int    `json:"workload_count"`
}

// AgentHeartbeat is published on HEARTBEAT.<agentId>; Data is free text.
type AgentHeartbeat struct {
	Data    string       `json:"data"`
	Summary AgentSummary `json:"summary"`
}

// NodeHeartbeat is the node's own heartbeat on
// $NEX.SVC.system.control.HEARTBEAT.<nodeId>. Registrations reads
// "<agentId> [<type>], <agentId> [<type>]".
type NodeHeartbeat struct {
	Registrations string `json:"registrations"`
}

// StartWorkloadRequest is what a client deploys. RunRequest is the
// agent-specific start request serialized as a JSON string.
type StartWorkloadRequest struct {
	Description       string            `json:"description"`
	Metadata          map[string]any    `json:"metadata,omitempty"`
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	Reference         string            `json:"reference,omitempty"`
	RunRequest        string            `json:"run_request"`
	Tags              map[string]string `json:"tags"`
	WorkloadLifecycle string            `json:"workload_lifecycle"`
	WorkloadType      string            `json:"workload_type"`
}

// MarshalJSON emits tags as {} rather than null when empty, as the client does.
func (r StartWorkloadRequest) MarshalJSON() ([]byte, error) {
	type plain StartWorkloadRequest
	p := plain(r)
	if p.Tags == nil {
		p.Tags = map[string]string{}
	}
	return json.Marshal(p)
}

// AgentStartWorkloadRequest is the body of STARTWORKLOAD and one entry of
// RegisterAgentResponse.ExistingState.
type AgentStartWorkloadRequest struct {
	Request       StartWorkloadRequest `json:"request"`
	WorkloadCreds NatsConnectionData   `json:"workload_creds"`
}

// StartWorkloadResponse answers STARTWORKLOAD (also as the body of an error).
type StartWorkloadResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// StopWorkloadRequest is the body of STOPWORKLOAD and UNDEPLOY.
type StopWorkloadRequest struct {
	Namespace string `json:"namespace"`
}

// StopWorkloadResponse answers STOPWORKLOAD and UNDEPLOY.
type StopWorkloadResponse struct {
	ID           string `json:"id"`
	Message      string `json:"message"`
	Stopped      bool   `json:"stopped"`
	WorkloadType string `json:"workload_type"`
}

// CloneWorkloadRequest is the body of CLONE and of GETWORKLOAD.
type CloneWorkloadRequest struct {
	Namespace     string `json:"namespace"`
	NewTargetXkey string `json:"new_target_xkey"`
}

// AgentListWorkloadsRequest is the body of QUERYWORKLOADS and WPING.
// A nil Filter (null on the wire) lists everything.
type AgentListWorkloadsRequest struct {
	Filter    []string `json:"filter"`
	Namespace string   `json:"namespace"`
}

// WorkloadSummary is one entry of a QUERYWORKLOADS reply.
type WorkloadSummary struct {
	ID                string            `json:"id"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	Runtime           string            `json:"runtime"`
	StartTime         string            `json:"start_time"`
	Tags              map[string]string `json:"tags"`
	WorkloadLifecycle string            `json:"workload_lifecycle"`
	WorkloadState     string            `json:"workload_state"`
	WorkloadType      string            `json:"workload_type"`
}

// LameduckRequest is the body of SETLAMEDUCK and the control LAMEDUCK.
type LameduckRequest struct {
	Delay string            `json:"delay"`
	Tag   map[string]string `json:"tag,omitempty"`
}

// LameduckResponse answers SETLAMEDUCK and the control LAMEDUCK.
type LameduckResponse struct {
	Message string `json:"message"`
	Success bool   `json:"success"`
}

// AuctionRequest is scattered on $NEX.SVC.<ns>.control.AUCTION.
type AuctionRequest struct {
	AgentType string            `json:"agent_type"`
	AuctionID string            `json:"auction_id"`
	Tags      map[string]string `json:"tags"`
}

// AuctionResponse is one node's bid.
type AuctionResponse struct {
	BidderID            string   `json:"bidder_id"`
	StartRequestSchema  string   `json:"start_request_schema"`
	SupportedLifecycles []string `json:"supported_lifecycles"`
	Xkey                string   `json:"xkey"`
}

// NodePingRequest is the body of control PING; Filter may be null.
type NodePingRequest struct {
	Filter map[string]string `json:"filter"`
}

// NodePingResponse answers control PING.
type NodePingResponse struct {
	AgentCount int               `json:"agent_count"`
	NodeID     string            `json:"node_id"`
	StartTime  string            `json:"start_time"`
	State      string            `json:"state"`
	Tags       map[string]string `json:"tags"`
	Version    string            `json:"version"`
	Xkey       string            `json:"xkey"`
}

// NodeAgentSummary is the node's view of one registration.
type NodeAgentSummary struct {
	AgentHealth            string       `json:"agent_health"`
	AgentHealthStoplight   string       `json:"agent_health_stoplight"`
	AgentID                string       `json:"agent_id"`
	AgentLastHeartbeatTime string       `json:"agent_last_heartbeat_time"`
	AgentSummary           AgentSummary `json:"agent_summary"`
}

// NodeInfoResponse answers control INFO.<nodeId>.
type NodeInfoResponse struct {
	NodeAgentSummaries []NodeAgentSummary `json:"node_agent_summaries"`
	NodeID             string             `json:"node_id"`
	Tags               map[string]string  `json:"tags"`
	Uptime             string             `json:"uptime"`
	Version            string             `json:"version"`
	Xkey               string             `json:"xkey"`
}

// WorkloadDiscoveryResponse answers PINGWORKLOAD from the agent running it.
type WorkloadDiscoveryResponse struct {
	NodeID string `json:"node_id"`
}

// NodeError is the body of a node error reply (codes 400/403/404/500).
type NodeError struct {
	Error   string `json:"error"`
	ErrorID string `json:"error_id"`
}

// Event names, the last token of $NEX.FEED.<from>.events.<NAME>.
const (
	EventNodeStarted      = "NODESTARTED"
	EventNodeStopped      = "NODESTOPPED"
	EventNodeLameduckSet  = "NODELAMEDUCKSET"
	EventAgentStarted     = "AGENTSTARTED"
	EventAgentStopped     = "AGENTSTOPPED"
	EventAgentLameduckSet = "AGENTLAMEDUCKSET"
	EventWorkloadStarted  = "WORKLOADSTARTED"
	EventWorkloadStopped  = "WORKLOADSTOPPED"
	// EventIngress goes out on the agent's own feed ($NEX.FEED.<agentId>),
	// not a namespace's.
	EventIngress = "INGRESS"
)

// Ingress commands of AgentIngressMsg.
const (
	IngressAdd    = "add"
	IngressRemove = "remove"
)

// AgentIngressMsg tells an ingress proxy where a workload's first exposed
// port is reachable (add) or that it is gone (remove, upstream empty).
type AgentIngressMsg struct {
	Command    string `json:"command"`
	Upstream   string `json:"upstream"`
	WorkloadID string `json:"workload_id"`
}

// WorkloadStartedEvent is published by the agent on the workload's namespace.
type WorkloadStartedEvent struct {
	ID           string            `json:"id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Namespace    string            `json:"namespace"`
	WorkloadType string            `json:"workload_type"`
}

// WorkloadStoppedEvent is published by the agent when a workload ends. Error
// is nil for a clean stop; for a job, Code is its non-zero exit code.
type WorkloadStoppedEvent struct {
	Error        *EventError       `json:"error,omitempty"`
	ID           string            `json:"id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Namespace    string            `json:"namespace"`
	WorkloadType string            `json:"workload_type"`
}

// EventError is the error of a WorkloadStoppedEvent.
type EventError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NodeLameduckSetEvent is published by a node entering lameduck.
type NodeLameduckSetEvent struct {
	ID   string `json:"id"`
	Time string `json:"time"`
}

// NodeStartedEvent is published by a node at start.
type NodeStartedEvent struct {
	ID    string            `json:"id"`
	Name  string            `json:"name"`
	Nexus string            `json:"nexus"`
	Tags  map[string]string `json:"tags"`
	Type  string            `json:"type"`
}

// AgentStoppedEvent is published by the node for agents it stops.
type AgentStoppedEvent struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
	Timestamp string `json:"timestamp"`
}
