package nexapi

import (
	"strings"
)

// Subject builders. nodeID is the node's public server nkey, agentID and
// workloadID are NUIDs, nexus is the nexus name, ns a namespace.

// RemoteRegisterSubject is RREGISTER, keyed by nexus (queue group = nexus).
func RemoteRegisterSubject(nexus string) string { return "$NEX.SVC." + nexus + ".agent.RREGISTER" }

// RegisterSubject is REGISTER.<agentId> of one node.
func RegisterSubject(nodeID, agentID string) string {
	return "$NEX.SVC." + nodeID + ".agent.REGISTER." + agentID
}

// AgentHeartbeatSubject is where an agent publishes its heartbeat.
func AgentHeartbeatSubject(nodeID, agentID string) string {
	return "$NEX.SVC." + nodeID + ".agent.HEARTBEAT." + agentID
}

// NodeHeartbeatSubject is where a node publishes its own heartbeat.
func NodeHeartbeatSubject(nodeID string) string {
	return "$NEX.SVC.system.control.HEARTBEAT." + nodeID
}

// StartWorkloadSubject is STARTWORKLOAD of one agent for one workload id
// (use "*" for the endpoint).
func StartWorkloadSubject(nodeID, agentID, workloadID string) string {
	return "$NEX.SVC." + nodeID + ".agent." + agentID + ".STARTWORKLOAD." + workloadID
}

// StopWorkloadSubject is STOPWORKLOAD, shared by every agent of the node.
func StopWorkloadSubject(nodeID, workloadID string) string {
	return "$NEX.SVC." + nodeID + ".agent.STOPWORKLOAD." + workloadID
}

// GetWorkloadSubject is GETWORKLOAD, shared by every agent of the node.
func GetWorkloadSubject(nodeID, workloadID string) string {
	return "$NEX.SVC." + nodeID + ".agent.GETWORKLOAD." + workloadID
}

// QueryWorkloadsSubject is QUERYWORKLOADS, shared by every agent of the node.
func QueryWorkloadsSubject(nodeID string) string {
	return "$NEX.SVC." + nodeID + ".agent.QUERYWORKLOADS"
}

// PingAgentSubject pings one agent.
func PingAgentSubject(nodeID, agentID string) string {
	return "$NEX.SVC." + nodeID + ".agent." + agentID + ".PING"
}

// PingAllAgentsSubject pings every agent of the node.
func PingAllAgentsSubject(nodeID string) string { return "$NEX.SVC." + nodeID + ".agent.PING" }

// SetLameduckSubject puts every agent of the node in lameduck.
func SetLameduckSubject(nodeID string) string { return "$NEX.SVC." + nodeID + ".agent.SETLAMEDUCK" }

// PingWorkloadSubject is PINGWORKLOAD, keyed by nexus: every agent of every
// node that runs the workload answers (use "*" for the endpoint).
func PingWorkloadSubject(nexus, workloadID string) string {
	return "$NEX.SVC." + nexus + ".agent.PINGWORKLOAD." + workloadID
}

// LogSubject is where a workload's stdout or stderr goes.
func LogSubject(ns, workloadID, stream string) string {
	return "$NEX.FEED." + ns + ".logs." + workloadID + "." + stream
}

// MetricsSubject is where a workload's metrics go.
func MetricsSubject(ns, workloadID string) string {
	return "$NEX.FEED." + ns + ".metrics." + workloadID
}

// EventSubject is $NEX.FEED.<from>.events.<name>; from is a namespace for
// workload events and a node id for node and agent events.
func EventSubject(from, name string) string { return "$NEX.FEED." + from + ".events." + name }

// LastToken returns the last dot-separated token of subject (the workload id
// of STARTWORKLOAD/STOPWORKLOAD/GETWORKLOAD subjects).
func LastToken(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[i+1:]
	}
	return subject
}

// ParseRegistrations splits a NodeHeartbeat.Registrations string into agent
// id → register type. Malformed entries are skipped.
func ParseRegistrations(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, typ, _ := strings.Cut(part, " ")
		typ = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(typ), "["), "]")
		if id != "" {
			out[id] = typ
		}
	}
	return out
}

// FormatRegistrations is the inverse of ParseRegistrations for ids in order.
func FormatRegistrations(ids []string, types map[string]string) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, id+" ["+types[id]+"]")
	}
	return strings.Join(parts, ", ")
}

// ValidToken reports whether s can be used as one subject token (a node id,
// agent id, workload id, nexus or namespace coming from the network).
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}
