package nodesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/clock"
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

// manualClock is a clock the test sets; timers run on real time (the node
// heartbeat period is an hour here).
type manualClock struct {
	clock.Real
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// registerByHand runs RREGISTER and REGISTER for type pi and returns the
// agent id.
func registerByHand(t *testing.T, nc *nats.Conn) string {
	t.Helper()
	m := request(t, nc, nexapi.RemoteRegisterSubject("nexus"), nexapi.RegisterRemoteAgentRequest{})
	var rr nexapi.RegisterRemoteAgentResponse
	if err := json.Unmarshal(m.Data, &rr); err != nil {
		t.Fatal(err)
	}
	reg := nexapi.RegisterAgentRequest{Name: "pi", RegisterType: "pi", Version: "1.0.0", StartRequestSchema: "{}", SupportedLifecycles: []string{"service"}}
	m = request(t, nc, nexapi.RegisterSubject(rr.RespondTo, rr.AssignedAgentID), reg)
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("REGISTER: %s %s", code, m.Header.Get(micro.ErrorHeader))
	}
	return rr.AssignedAgentID
}

// TestDeadRegistrationWindow: an agent that dies (no lameduck, no more
// heartbeats) stays healthy on the node until the node's 5 s health
// monitor finds its last heartbeat more than 10 s old, and deploys go to it
// meanwhile: ADEPLOY answers 500 "failed to publish start workload
// request" with "internal server error" in the body, and nothing is
// stored. Once the monitor has marked it degraded, deploys reach the
// agent that registered after it.
func TestDeadRegistrationWindow(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	clk := &manualClock{now: t0}
	node, err := nodesim.New(natstest.Connect(t, s), &nodesim.Opts{HeartbeatInterval: time.Hour, State: true, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	heartbeat := func(agentID string, at time.Duration) {
		t.Helper()
		clk.set(t0.Add(at))
		b, _ := json.Marshal(nexapi.AgentHeartbeat{Summary: nexapi.AgentSummary{State: "running", Type: "pi"}})
		nc.Publish(nexapi.AgentHeartbeatSubject(node.ID(), agentID), b)
		if _, err := node.WaitHealthy(ctx, agentID); err != nil {
			t.Fatal(err)
		}
	}

	dead := registerByHand(t, nc)
	heartbeat(dead, time.Second) // its last heartbeat: the agent dies now
	live := registerByHand(t, nc)
	sub, err := nc.Subscribe(nexapi.StartWorkloadSubject(node.ID(), live, "*"), func(m *nats.Msg) {
		m.Respond([]byte(`{"id":"` + nexapi.LastToken(m.Subject) + `","name":"x"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	heartbeat(live, 14*time.Second)

	// 13 s after its last heartbeat; the monitor last ran at 10 s (9 s).
	for _, a := range node.Agents() {
		if a.Health != nodesim.HealthHealthy {
			t.Fatalf("at 14 s: %s is %s, want healthy", a.ID, a.Health)
		}
	}
	req := nexapi.StartWorkloadRequest{Name: "x", Namespace: "default", RunRequest: "{}", WorkloadLifecycle: "service", Tags: map[string]string{}}
	_, err = node.Deploy(ctx, "pi", req)
	var ne *nodesim.NodeError
	if !errors.As(err, &ne) || ne.Code != 500 || ne.Description != nexapi.ErrTextStartNotDelivered || ne.Body.Error != nexapi.ErrTextInternal {
		t.Fatalf("deploy in the window: %v, want node error 500 %q", err, nexapi.ErrTextStartNotDelivered)
	}
	// The same through the control plane, as `nex workload start` sees it.
	m := request(t, nc, "$NEX.SVC.default.control.AUCTION", nexapi.AuctionRequest{AgentType: "pi", AuctionID: "a1"})
	var bid nexapi.AuctionResponse
	json.Unmarshal(m.Data, &bid)
	req.WorkloadType = "pi"
	m = request(t, nc, "$NEX.SVC.default.control.ADEPLOY."+bid.BidderID, req)
	var body nexapi.NodeError
	json.Unmarshal(m.Data, &body)
	if code, desc := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader); code != "500" || desc != nexapi.ErrTextStartNotDelivered || body.Error != nexapi.ErrTextInternal {
		t.Fatalf("ADEPLOY in the window: code %q desc %q body %s", code, desc, m.Data)
	}
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, "nex-"+node.ID())
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := kv.Keys(ctx); len(keys) != 0 {
		t.Fatalf("undelivered deploys stored: %v", keys)
	}

	// The monitor's tick at 15 s finds the dead one's heartbeat 14 s old.
	clk.set(t0.Add(15 * time.Second))
	if got := node.Agents()[0].Health; got != nodesim.HealthDegraded {
		t.Fatalf("at 15 s the dead registration is %s, want degraded", got)
	}
	id, err := node.Deploy(ctx, "pi", req)
	if err != nil {
		t.Fatalf("deploy after the window: %v", err)
	}
	if _, err := kv.Get(ctx, "pi_"+id); err != nil {
		t.Fatalf("delivered deploy not stored: %v", err)
	}
}
