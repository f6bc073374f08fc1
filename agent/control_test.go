package agent_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nuid"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
)

// TestControlPlane drives the node stand-in the way the stock nex CLI does
// (auction, deploy to the bidder, list, clone, stop, node ping and info).
func TestControlPlane(t *testing.T) {
	r := newRig(t, rigOpts{})
	req := func(subject string, v any) []byte {
		t.Helper()
		b, _ := json.Marshal(v)
		m, err := r.nc.Request(subject, b, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if code, desc := errCode(m); code != "" {
			t.Fatalf("%s: error %s %s", subject, code, desc)
		}
		return m.Data
	}
	var bid nexapi.AuctionResponse
	json.Unmarshal(req("$NEX.SVC.default.control.AUCTION", nexapi.AuctionRequest{AgentType: "nexfield", AuctionID: nuid.Next()}), &bid)
	if bid.BidderID == "" || bid.Xkey != r.node.Agents()[0].Register.PublicXkey || bid.StartRequestSchema != agent.StartRequestSchema {
		t.Fatalf("bid %+v", bid)
	}
	if _, err := r.nc.Request("$NEX.SVC.default.control.AUCTION", []byte(`{"agent_type":"native","auction_id":"x","tags":null}`), 300*time.Millisecond); err == nil {
		t.Error("bid for a type nobody serves")
	}
	run := runRequest(t, agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}})
	var started nexapi.StartWorkloadResponse
	json.Unmarshal(req("$NEX.SVC.default.control.ADEPLOY."+bid.BidderID, nexapi.StartWorkloadRequest{
		Name: "cli", Namespace: "default", RunRequest: run, WorkloadLifecycle: "service", WorkloadType: "nexfield"}), &started)
	if started.ID == "" || started.Name != "cli" {
		t.Fatalf("deploy reply %+v", started)
	}
	// An agent error is relayed with its headers.
	m, _ := r.nc.Request("$NEX.SVC.default.control.ADEPLOY."+bid.BidderID, []byte(`{"name":"bad","namespace":"default","run_request":"{\"uri\":\"http://x\"}","tags":{},"workload_lifecycle":"job","workload_type":"nexfield","description":""}`), 5*time.Second)
	if code, desc := errCode(m); code != "100" || !strings.Contains(desc, "invalid uri") {
		t.Errorf("relayed agent error: %q %q", code, desc)
	}
	var list []nexapi.WorkloadSummary
	json.Unmarshal(req("$NEX.SVC.default.control.WPING", nexapi.AgentListWorkloadsRequest{Namespace: "default"}), &list)
	if len(list) != 1 || list[0].ID != started.ID {
		t.Fatalf("wping %+v", list)
	}
	var clone nexapi.StartWorkloadRequest
	json.Unmarshal(req("$NEX.SVC.default.control.CLONE."+started.ID, nexapi.CloneWorkloadRequest{Namespace: "default"}), &clone)
	if clone.Name != "cli" || clone.RunRequest != run {
		t.Errorf("clone %+v", clone)
	}
	var ping nexapi.NodePingResponse
	json.Unmarshal(req("$NEX.SVC.system.control.PING", nexapi.NodePingRequest{}), &ping)
	if ping.NodeID != r.node.ID() || ping.AgentCount != 1 || ping.Tags["nex.nexus"] != "nexus" {
		t.Errorf("node ping %+v", ping)
	}
	var info nexapi.NodeInfoResponse
	json.Unmarshal(req("$NEX.SVC.system.control.INFO."+r.node.ID(), struct{}{}), &info)
	if len(info.NodeAgentSummaries) != 1 || info.NodeAgentSummaries[0].AgentHealth != "healthy" || info.NodeAgentSummaries[0].AgentSummary.Type != "nexfield" {
		t.Errorf("node info %+v", info)
	}
	var stopped nexapi.StopWorkloadResponse
	json.Unmarshal(req("$NEX.SVC.default.control.UNDEPLOY."+started.ID, nexapi.StopWorkloadRequest{Namespace: "default"}), &stopped)
	if !stopped.Stopped || stopped.WorkloadType != "nexfield" {
		t.Errorf("undeploy %+v", stopped)
	}
}

// TestNodeLameduck: `nex node lameduck` against the stand-in puts the agent
// in lameduck, emits NODELAMEDUCKSET and stops the node after the delay.
func TestNodeLameduck(t *testing.T) {
	r := newRig(t, rigOpts{})
	events := r.subscribe(nexapi.EventSubject(r.node.ID(), nexapi.EventNodeLameduckSet))
	b, _ := json.Marshal(nexapi.LameduckRequest{Delay: "500ms"})
	m, err := r.nc.Request("$NEX.SVC.system.control.LAMEDUCK."+r.node.ID(), b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp nexapi.LameduckResponse
	if json.Unmarshal(m.Data, &resp); !resp.Success || !strings.HasPrefix(resp.Message, "node entering lameduck mode") {
		t.Fatalf("lameduck reply %s", m.Data)
	}
	if _, err := events.NextMsg(2 * time.Second); err != nil {
		t.Errorf("no NODELAMEDUCKSET event: %v", err)
	}
	eventually(t, 5*time.Second, "agent in lameduck", func() bool { return strings.HasPrefix(r.agent.Status(), "lameduck") })
	eventually(t, 5*time.Second, "node stopped", func() bool {
		_, err := r.nc.Request("$NEX.SVC.system.control.PING."+r.node.ID(), []byte(`{"filter":null}`), 200*time.Millisecond)
		return err != nil
	})
}
