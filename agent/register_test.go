package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
	"github.com/nexfield/nexfield/internal/natstest"
)

func TestRegister(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) {
		o.Version = "1.2.3"
		o.Tags = map[string]string{"site": "north-field"}
	}})
	agents := r.node.Agents()
	if len(agents) != 1 {
		t.Fatalf("got %d registrations, want 1", len(agents))
	}
	a := agents[0]
	reg := a.Register
	if reg.Name != "pi-test" || reg.RegisterType != "nexfield" || reg.Version != "1.2.3" || reg.Description == "" {
		t.Errorf("register request: %+v", reg)
	}
	if !strings.HasPrefix(reg.PublicXkey, "X") || len(reg.PublicXkey) != 56 {
		t.Errorf("public_xkey %q is not a curve key", reg.PublicXkey)
	}
	if want := []string{"service", "job", "function"}; !slices.Equal(reg.SupportedLifecycles, want) {
		t.Errorf("lifecycles %v, want %v", reg.SupportedLifecycles, want)
	}
	if reg.StartRequestSchema != agent.StartRequestSchema {
		t.Error("start_request_schema is not the agent's schema")
	}
	if a.ID != r.agent.AgentID() || r.agent.NodeID() != r.node.ID() {
		t.Errorf("agent id %s/%s, node %s/%s", a.ID, r.agent.AgentID(), r.agent.NodeID(), r.node.ID())
	}
	s := a.Summary
	if s.State != "running" || s.SupportedLifecycles != "service,job,function" || s.Type != "nexfield" || s.Name != "pi-test" {
		t.Errorf("heartbeat summary %+v", s)
	}
	if _, err := time.Parse(time.RFC3339Nano, s.StartTime); err != nil {
		t.Errorf("start_time %q: %v", s.StartTime, err)
	}
	if err := r.agent.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if st := r.agent.Status(); !strings.Contains(st, a.ID) {
		t.Errorf("Status %q lacks the agent id", st)
	}

	// The heartbeat's free-form data says what the node's tags cannot.
	sub := r.subscribe(nexapi.AgentHeartbeatSubject(r.node.ID(), a.ID))
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var hb nexapi.AgentHeartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(hb.Data), &data); err != nil || data["register_type"] != "nexfield" || data["tags"].(map[string]any)["site"] != "north-field" {
		t.Errorf("heartbeat data %q (%v)", hb.Data, err)
	}

	// Micro discovery: the seven agent endpoints and the optional workload
	// discovery, queue group = agent id.
	m, err = r.nc.Request("$SRV.INFO.pi-test", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"StartWorkload":     nexapi.StartWorkloadSubject(r.node.ID(), a.ID, "*"),
		"StopWorkload":      nexapi.StopWorkloadSubject(r.node.ID(), "*"),
		"GetWorkload":       nexapi.GetWorkloadSubject(r.node.ID(), "*"),
		"QueryWorkloads":    nexapi.QueryWorkloadsSubject(r.node.ID()),
		"PingAgent":         nexapi.PingAgentSubject(r.node.ID(), a.ID),
		"PingAllAgents":     nexapi.PingAllAgentsSubject(r.node.ID()),
		"SetLameduck":       nexapi.SetLameduckSubject(r.node.ID()),
		"WorkloadDiscovery": nexapi.PingWorkloadSubject(agent.DefaultNexus, "*"),
	}
	if len(info.Endpoints) != len(want) {
		t.Errorf("got %d endpoints, want %d", len(info.Endpoints), len(want))
	}
	for _, ep := range info.Endpoints {
		if want[ep.Name] != ep.Subject || ep.QueueGroup != a.ID {
			t.Errorf("endpoint %s: subject %s queue %s; want %s queue %s", ep.Name, ep.Subject, ep.QueueGroup, want[ep.Name], a.ID)
		}
	}

	// Ping carries the agentId header.
	sum, hdr, err := r.node.Ping(context.Background(), a.ID)
	if err != nil || hdr != a.ID || sum.Type != "nexfield" {
		t.Errorf("ping: %+v header %q err %v", sum, hdr, err)
	}
	all, err := r.node.PingAll(context.Background())
	if err != nil || all[a.ID].Name != "pi-test" {
		t.Errorf("ping all: %v %v", all, err)
	}

	// Query answers [] rather than null or silence.
	m, err = r.nc.Request(nexapi.QueryWorkloadsSubject(r.node.ID()), []byte(`{"namespace":"default","filter":null}`), 2*time.Second)
	if err != nil || string(m.Data) != "[]" {
		t.Errorf("empty query: %q %v", m.Data, err)
	}
}

// TestStopAndGetUnknown: STOP of a workload the agent does not run is
// answered at once with code 100 and the protocol's body; GET stays silent.
func TestStopAndGetUnknown(t *testing.T) {
	r := newRig(t, rigOpts{})
	m, err := r.nc.Request(nexapi.StopWorkloadSubject(r.node.ID(), "NOSUCHWORKLOAD"), []byte(`{"namespace":"default"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code, desc := errCode(m); code != "100" || desc != "workload not found" {
		t.Errorf("stop unknown: code %q desc %q", code, desc)
	}
	want := `{"id":"NOSUCHWORKLOAD","message":"workload not found","stopped":false,"workload_type":"nexfield"}`
	if string(m.Data) != want {
		t.Errorf("stop unknown body\n got %s\nwant %s", m.Data, want)
	}
	if _, err := r.nc.Request(nexapi.GetWorkloadSubject(r.node.ID(), "NOSUCHWORKLOAD"), []byte(`{"namespace":"default","new_target_xkey":""}`), 300*time.Millisecond); err == nil {
		t.Error("GETWORKLOAD of an unknown id was answered")
	}
}

// TestBadStartRequests: every request refused before any work is answered
// with code 100, a clear description and the {"id","name"} body.
func TestBadStartRequests(t *testing.T) {
	r := newRig(t, rigOpts{})
	for _, tc := range []struct {
		name, body, lifecycle, want string
		raw                         bool
	}{
		{name: "malformed json", body: `{"request":`, raw: true, want: "invalid start workload request"},
		{name: "run_request not json", body: `{not json`, lifecycle: "job", want: "run_request is not valid JSON"},
		{name: "missing uri", body: `{"argv":["x"]}`, lifecycle: "job", want: "missing property 'uri'"},
		{name: "argv not strings", body: `{"uri":"file:///bin/true","argv":[1]}`, lifecycle: "job", want: "invalid run_request"},
		{name: "environment not strings", body: `{"uri":"file:///bin/true","environment":{"A":1}}`, lifecycle: "job", want: "invalid run_request"},
		{name: "bad digest", body: `{"uri":"file:///bin/true","digest":"md5=abc"}`, lifecycle: "job", want: "digest"},
		{name: "bad restart key", body: `{"uri":"file:///bin/true","restart":{"tries":3}}`, lifecycle: "service", want: "invalid run_request"},
		{name: "bad duration", body: `{"uri":"file:///bin/true","trigger_timeout":"soon"}`, lifecycle: "function", want: "trigger_timeout"},
		{name: "unknown scheme", body: `{"uri":"http://example.com/bin"}`, lifecycle: "job", want: "invalid uri; must be prefixed with file:// for local binary or nats:// to fetch an artifact"},
		{name: "unknown lifecycle", body: `{"uri":"file:///bin/true"}`, lifecycle: "daemon", want: "unsupported workload lifecycle"},
		{name: "relative workdir", body: `{"uri":"file:///bin/true","workdir":"tmp"}`, lifecycle: "job", want: "workdir"},
		{name: "trigger on a job", body: `{"uri":"file:///bin/true","trigger_subject":"x"}`, lifecycle: "job", want: "trigger_subject is only valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m *nats.Msg
			if tc.raw {
				m = r.startRaw("BAD1", []byte(tc.body))
			} else {
				m = r.startReq("BAD1", "bad", tc.lifecycle, tc.body)
			}
			code, desc := errCode(m)
			if code != "100" || !strings.Contains(desc, tc.want) || !strings.HasPrefix(desc, "failed to run workload BAD1: ") {
				t.Errorf("code %q desc %q; want 100 and %q", code, desc, tc.want)
			}
			var body map[string]any
			if err := json.Unmarshal(m.Data, &body); err != nil || body["id"] != "BAD1" || len(body) != 2 {
				t.Errorf("body %s", m.Data)
			}
		})
	}
	if got := r.query("system"); len(got) != 0 {
		t.Errorf("refused requests left workloads: %+v", got)
	}
}

// TestReregisterAfterNodeRestart: a restarted node forgets the agent; the
// agent notices from the node heartbeat and registers again.
func TestReregisterAfterNodeRestart(t *testing.T) {
	r := newRig(t, rigOpts{})
	old := r.agent.AgentID()
	if err := r.node.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Two node heartbeats without our id (the node publishes every 10 s).
	r.node.PublishHeartbeat()
	r.node.PublishHeartbeat()
	eventually(t, 10*time.Second, "re-registration", func() bool {
		id := r.agent.AgentID()
		return id != "" && id != old
	})
	r.waitHealthy(r.agent.AgentID())
	if n := r.agent.Registrations(); n != 2 {
		t.Errorf("registrations %d, want 2", n)
	}
}

// TestReregisterAfterNodeSilence: a node that stops publishing its heartbeat
// (crashed, or shut down after lameduck) is left; the agent registers with
// whichever node answers next.
func TestReregisterAfterNodeSilence(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.NodeSilence = 500 * time.Millisecond }})
	old := r.agent.AgentID()
	// One heartbeat proves the agent can see them; then the stand-in (period
	// one hour) is silent.
	r.node.PublishHeartbeat()
	eventually(t, 10*time.Second, "re-registration", func() bool {
		id := r.agent.AgentID()
		return id != "" && id != old
	})
}

// TestNoSilenceWithoutNodeHeartbeats: an agent that never saw a node
// heartbeat (its credentials may not allow the subscription) does not
// re-register in a loop.
func TestNoSilenceWithoutNodeHeartbeats(t *testing.T) {
	r := newRig(t, rigOpts{agentOpts: func(o *agent.Opts) { o.NodeSilence = 200 * time.Millisecond }})
	id := r.agent.AgentID()
	// Ten heartbeats (one second, five silence periods) go by.
	eventually(t, 5*time.Second, "ten heartbeats", func() bool {
		a := r.node.Agents()
		return len(a) == 1 && a[0].Heartbeats >= 10
	})
	if r.agent.AgentID() != id || r.agent.Registrations() != 1 {
		t.Errorf("re-registered without ever seeing the node heartbeat: %s → %s", id, r.agent.AgentID())
	}
}

// TestSurvivesLostConnection: the NATS server goes away and comes back on
// the same port; the agent reconnects and its heartbeats resume without a
// new registration (the node did not forget it).
func TestSurvivesLostConnection(t *testing.T) {
	so := natstest.Options(t)
	so.Port = freePort(t)
	r := newRig(t, rigOpts{srvOpts: so})
	id := r.agent.AgentID()
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	eventually(t, 5*time.Second, "unhealthy while disconnected", func() bool { return r.agent.Healthy() != nil })
	so2 := *so
	natstest.RunServerWithOptions(t, &so2)
	eventually(t, 10*time.Second, "healthy after reconnect", func() bool { return r.agent.Healthy() == nil })
	before := r.node.Agents()[0].Heartbeats
	eventually(t, 5*time.Second, "heartbeats resume", func() bool { return r.node.Agents()[0].Heartbeats > before })
	if r.agent.AgentID() != id {
		t.Errorf("agent re-registered (%s → %s) although the node kept it", id, r.agent.AgentID())
	}
}

// TestRegisterWithMintedCredentials: the node hands out credentials (as
// with its nkey or signing-key minters) and, for registration, a server
// list the agent cannot reach (a node started with -s 127.0.0.1 does that).
// The agent falls back to its bootstrap servers with the minted
// credentials and runs its endpoints on the agent credentials.
func TestRegisterWithMintedCredentials(t *testing.T) {
	so := natstest.Options(t)
	so.Users = []*server.User{
		{Username: "node", Password: "n"}, {Username: "test", Password: "t"},
		{Username: "boot", Password: "b"}, {Username: "reg", Password: "r"}, {Username: "agent", Password: "a"},
	}
	srv := natstest.RunServerWithOptions(t, so)
	url := srv.ClientURL()
	node, err := nodesim.New(natstest.Connect(t, srv, nats.UserInfo("node", "n")), &nodesim.Opts{
		HeartbeatInterval: time.Hour,
		Mint: func(purpose, id string) nexapi.NatsConnectionData {
			switch purpose {
			case "registration":
				return nexapi.NatsConnectionData{NatsServers: []string{"nats://127.0.0.1:1"}, NatsUserName: "reg", NatsUserPassword: "r"}
			case "agent":
				return nexapi.NatsConnectionData{NatsServers: []string{url}, NatsUserName: "agent", NatsUserPassword: "a"}
			}
			return nexapi.NatsConnectionData{NatsServers: []string{url}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	a, err := agent.New(&agent.Opts{Servers: []string{url}, NATSOptions: []nats.Option{nats.UserInfo("boot", "b")},
		Name: "pi-creds", StateDir: t.TempDir(), Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	select {
	case <-a.Ready():
	case <-wctx.Done():
		t.Fatalf("not registered: %s", a.Status())
	}
	if _, err := node.WaitHealthy(wctx, a.AgentID()); err != nil {
		t.Fatal(err)
	}
	// The registration connection is closed by now; the server files it
	// among closed connections asynchronously.
	users := map[string]bool{}
	eventually(t, 5*time.Second, "connections of users reg, agent and boot", func() bool {
		cz, err := srv.Connz(&server.ConnzOptions{Username: true, State: server.ConnAll})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cz.Conns {
			users[c.AuthorizedUser] = true
		}
		return users["reg"] && users["agent"] && users["boot"]
	})
	// The endpoints answer on the agent connection.
	if _, hdr, err := node.Ping(ctx, a.AgentID()); err != nil || hdr != a.AgentID() {
		t.Errorf("ping: %q %v", hdr, err)
	}
}

// TestStartsBeforeNATS: on a Pi the agent may start before the network or
// the NATS server is up; it keeps trying and registers once both are there.
func TestStartsBeforeNATS(t *testing.T) {
	so := natstest.Options(t)
	so.Port = freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(so.Port)
	a, err := agent.New(&agent.Opts{Servers: []string{url}, Name: "early", StateDir: t.TempDir(),
		Heartbeat: 100 * time.Millisecond, RetryBackoff: 50 * time.Millisecond, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, 5*time.Second, "a failed attempt", func() bool { return strings.Contains(a.Status(), "registering") && a.Healthy() != nil })

	srv := natstest.RunServerWithOptions(t, so)
	node, err := nodesim.New(natstest.Connect(t, srv), &nodesim.Opts{HeartbeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	select {
	case <-a.Ready():
	case <-time.After(15 * time.Second):
		t.Fatalf("not registered: %s", a.Status())
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := node.WaitHealthy(wctx, a.AgentID()); err != nil {
		t.Fatal(err)
	}
}

// TestDeployRightAfterRestart: the agent goes away without lameduck (a
// crash, a power cut of the Pi, systemctl restart), so to the node its
// registration is still healthy for 10-15 s and deploys go to it. The
// agent that comes back on the same state dir takes that registration over,
// so a deploy at once is answered; it registers afresh when the node no
// longer has it, or when its own registration settings changed.
func TestDeployRightAfterRestart(t *testing.T) {
	job := deployReq("early", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"echo", "started right after the restart"}})
	for _, tc := range []struct {
		name string
		// between runs, with the agent down
		change   func(t *testing.T, r *rig)
		sameID   bool
		deployOK bool
	}{
		{name: "node still holds it", change: func(*testing.T, *rig) {}, sameID: true, deployOK: true},
		{name: "node replaced", change: func(t *testing.T, r *rig) {
			// Another node (new identity) on the same server: the old id's
			// REGISTER has no responders.
			r.node.Stop()
			node, err := nodesim.New(natstest.Connect(t, r.srv), &nodesim.Opts{HeartbeatInterval: time.Hour, RequestTimeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := node.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { node.Stop() })
			r.node = node
		}, deployOK: true},
		{name: "name changed", change: func(_ *testing.T, r *rig) { r.opts.Name = "pi-renamed" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			logs := r.subscribe("$NEX.FEED.default.logs.>")
			old := r.agent.AgentID()
			r.stopAgent()
			tc.change(t, r)
			r.startAgent()
			if tc.deployOK {
				// Still inside the window in which the old registration is
				// healthy to the node (more than 10 s since its last
				// heartbeat would not prove anything).
				for _, a := range r.node.Agents() {
					if a.ID == old && a.Health != nodesim.HealthHealthy {
						t.Fatalf("old registration %s already %s: the restart took too long to test the window", old, a.Health)
					}
				}
				if _, err := r.node.Deploy(context.Background(), "nexfield", job); err != nil {
					t.Fatalf("deploy right after the restart: %v", err)
				}
				nextMatching(t, logs, "started right after the restart", 10*time.Second)
				if n := len(r.node.Agents()); n != 1 {
					t.Errorf("node lists %d registrations, want 1", n)
				}
			}
			if got := r.agent.AgentID(); (got == old) != tc.sameID {
				t.Errorf("agent id after the restart %s, before %s; want the same: %v", got, old, tc.sameID)
			}
		})
	}
}
