package nexapi_test

import (
	"encoding/json"
	"testing"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// FuzzInbound decodes arbitrary bytes as every message an agent (or the
// node stand-in) receives from the network; decoding must never panic, and whatever decodes must
// encode again and decode to the same value.
func FuzzInbound(f *testing.F) {
	for _, c := range loadCapture(f) {
		f.Add([]byte(c.Data))
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"existing_state":null,"connection_data":{"nats_servers":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{
			&nexapi.AgentStartWorkloadRequest{}, &nexapi.StopWorkloadRequest{}, &nexapi.CloneWorkloadRequest{},
			&nexapi.AgentListWorkloadsRequest{}, &nexapi.LameduckRequest{}, &nexapi.RegisterRemoteAgentResponse{},
			&nexapi.RegisterAgentResponse{}, &nexapi.NodeHeartbeat{}, &nexapi.AgentHeartbeat{},
			// what the node stand-in reads from agents and clients
			&nexapi.RegisterAgentRequest{}, &nexapi.AuctionRequest{}, &nexapi.NodePingRequest{},
			&nexapi.StartWorkloadRequest{},
		} {
			if json.Unmarshal(data, v) != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T: re-encode: %v", v, err)
			}
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%T: decode own encoding %s: %v", v, b, err)
			}
		}
		var hb nexapi.NodeHeartbeat
		if json.Unmarshal(data, &hb) == nil {
			for id := range nexapi.ParseRegistrations(hb.Registrations) {
				if id == "" {
					t.Fatal("empty agent id parsed")
				}
			}
		}
	})
}

// FuzzStartRequestSchema validates arbitrary run_request strings against a
// compiled schema; it must not panic and must reject invalid JSON.
func FuzzStartRequestSchema(f *testing.F) {
	s, err := nexapi.CompileStartRequestSchema(`{"type":"object","properties":{"uri":{"type":"string"},"argv":{"type":"array","items":{"type":"string"}}},"required":["uri"]}`)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"uri":"nats://a/b"}`))
	f.Add([]byte(`{"uri":1}`))
	f.Add([]byte(`{"uri":"x"} trailing`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s.Validate(data) == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
