package nodesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/internal/natstest"
)

func request(t *testing.T, nc *nats.Conn, subject string, v any) *nats.Msg {
	t.Helper()
	b, _ := json.Marshal(v)
	m, err := nc.Request(subject, b, 2*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return m
}

// TestRegistrationByHand walks the protocol with raw NATS messages, the way
// the SDK does, and checks every reply the stand-in gives.
func TestRegistrationByHand(t *testing.T) {
	s := natstest.RunServer(t)
	nodeNC := natstest.Connect(t, s)
	agentNC := natstest.Connect(t, s)
	node, err := nodesim.New(nodeNC, &nodesim.Opts{Nexus: "farm", HeartbeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer node.Stop()

	hbs, err := agentNC.SubscribeSync(nexapi.NodeHeartbeatSubject(node.ID()))
	if err != nil {
		t.Fatal(err)
	}
	agentNC.Flush()

	m := request(t, agentNC, nexapi.RemoteRegisterSubject("farm"), nexapi.RegisterRemoteAgentRequest{})
	var rr nexapi.RegisterRemoteAgentResponse
	if err := json.Unmarshal(m.Data, &rr); err != nil {
		t.Fatal(err)
	}
	if rr.RespondTo != node.ID() || len(rr.AssignedAgentID) != 22 || rr.RegistrationCreds == nil || len(rr.RegistrationCreds.NatsServers) != 1 {
		t.Fatalf("RREGISTER reply %s", m.Data)
	}

	reg := nexapi.RegisterAgentRequest{Name: "t", RegisterType: "pi", Version: "1.0.0", StartRequestSchema: `{"type":"object","required":["uri"]}`, SupportedLifecycles: []string{"job"}}
	m = request(t, agentNC, nexapi.RegisterSubject(rr.RespondTo, rr.AssignedAgentID), reg)
	var resp nexapi.RegisterAgentResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil || !resp.Success || resp.NodeID != node.ID() {
		t.Fatalf("REGISTER reply %s (%v)", m.Data, err)
	}
	var keys map[string]any
	json.Unmarshal(m.Data, &keys)
	for _, k := range []string{"connection_data", "existing_state", "message", "node_id", "success"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("REGISTER reply lacks %q: %s", k, m.Data)
		}
	}

	// A second REGISTER with the same id fails like the real node's.
	m = request(t, agentNC, nexapi.RegisterSubject(rr.RespondTo, rr.AssignedAgentID), reg)
	if got := m.Header.Get(micro.ErrorCodeHeader); got != "500" {
		t.Errorf("duplicate register: code %q, want 500", got)
	}
	// A schema that does not parse is a 400.
	bad := reg
	bad.StartRequestSchema = "{"
	m = request(t, agentNC, nexapi.RegisterSubject(rr.RespondTo, "other"), bad)
	if got := m.Header.Get(micro.ErrorCodeHeader); got != "400" {
		t.Errorf("bad schema: code %q, want 400", got)
	}

	if a := node.Agents(); len(a) != 1 || a[0].Health != nodesim.HealthUnknown {
		t.Fatalf("agents before heartbeat: %+v", a)
	}
	b, _ := json.Marshal(nexapi.AgentHeartbeat{Summary: nexapi.AgentSummary{State: "running", Type: "pi"}})
	agentNC.Publish(nexapi.AgentHeartbeatSubject(node.ID(), rr.AssignedAgentID), b)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := node.WaitAgent(wctx, "pi"); err != nil {
		t.Fatal(err)
	}

	node.PublishHeartbeat()
	for {
		hm, err := hbs.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("node heartbeat: %v", err)
		}
		var hb nexapi.NodeHeartbeat
		json.Unmarshal(hm.Data, &hb)
		if hb.Registrations == rr.AssignedAgentID+" [pi]" {
			break
		}
	}

	// Deploy validates against the agent's schema, like the node does.
	_, err = node.Deploy(ctx, "pi", nexapi.StartWorkloadRequest{Name: "x", RunRequest: `{}`, WorkloadLifecycle: "job"})
	if err == nil || errors.Is(err, nodesim.ErrNoAgent) {
		t.Errorf("deploy with schema violation: %v", err)
	}
	if _, err := node.Deploy(ctx, "native", nexapi.StartWorkloadRequest{RunRequest: `{}`}); !errors.Is(err, nodesim.ErrNoAgent) {
		t.Errorf("deploy to missing type: %v", err)
	}

	// A restart forgets registrations but keeps the node id.
	id := node.ID()
	if err := node.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if node.ID() != id || len(node.Agents()) != 0 {
		t.Fatalf("after restart: id %s agents %v", node.ID(), node.Agents())
	}
}
