package nexapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// captured is one line of testdata/capture.jsonl, recorded from the real
// Nex node and a remote nexlet.
type captured struct {
	Subject   string              `json:"subject"`
	Reply     string              `json:"reply"`
	InReplyTo string              `json:"in_reply_to"`
	Headers   map[string][]string `json:"headers"`
	Data      string              `json:"data"`
}

func loadCapture(t testing.TB) []captured {
	t.Helper()
	f, err := os.Open("testdata/capture.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []captured
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c captured
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("capture line: %v", err)
		}
		if c.Subject == "" {
			continue // the note line
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// typeFor picks the nexapi type of a captured message from its subject (or
// the subject it replies to). nil means the body is not JSON of the Nex
// protocol (logs, function payloads, micro discovery).
func typeFor(c captured) any {
	tokens := strings.Split(c.Subject, ".")
	if c.InReplyTo != "" {
		if code := first(c.Headers["Nats-Service-Error-Code"]); code != "" && code != nexapi.AgentErrorCode {
			return &nexapi.NodeError{}
		}
		tokens = strings.Split(c.InReplyTo, ".")
		if !strings.HasPrefix(c.InReplyTo, "$NEX.SVC.") {
			return nil
		}
		switch op := verb(tokens); op {
		case "RREGISTER":
			return &nexapi.RegisterRemoteAgentResponse{}
		case "REGISTER":
			return &nexapi.RegisterAgentResponse{}
		case "STARTWORKLOAD", "ADEPLOY":
			return &nexapi.StartWorkloadResponse{}
		case "STOPWORKLOAD", "UNDEPLOY":
			return &nexapi.StopWorkloadResponse{}
		case "GETWORKLOAD", "CLONE":
			return &nexapi.StartWorkloadRequest{}
		case "QUERYWORKLOADS", "WPING":
			return &[]nexapi.WorkloadSummary{}
		case "PING":
			if tokens[3] == "agent" {
				return &nexapi.AgentSummary{}
			}
			return &nexapi.NodePingResponse{}
		case "SETLAMEDUCK", "LAMEDUCK":
			return &nexapi.LameduckResponse{}
		case "AUCTION":
			return &nexapi.AuctionResponse{}
		case "INFO":
			return &nexapi.NodeInfoResponse{}
		case "PINGWORKLOAD":
			return &nexapi.WorkloadDiscoveryResponse{}
		}
		return nil
	}
	if strings.HasPrefix(c.Subject, "$NEX.FEED.") && len(tokens) == 5 && tokens[3] == "events" {
		switch tokens[4] {
		case nexapi.EventWorkloadStarted:
			return &nexapi.WorkloadStartedEvent{}
		case nexapi.EventWorkloadStopped:
			return &nexapi.WorkloadStoppedEvent{}
		case nexapi.EventNodeLameduckSet:
			return &nexapi.NodeLameduckSetEvent{}
		case nexapi.EventAgentStopped:
			return &nexapi.AgentStoppedEvent{}
		case nexapi.EventNodeStarted:
			return &nexapi.NodeStartedEvent{}
		}
		return nil
	}
	if !strings.HasPrefix(c.Subject, "$NEX.SVC.") || c.Data == "" {
		return nil
	}
	switch verb(tokens) {
	case "RREGISTER":
		return &nexapi.RegisterRemoteAgentRequest{}
	case "REGISTER":
		return &nexapi.RegisterAgentRequest{}
	case "HEARTBEAT":
		if tokens[3] == "control" {
			return &nexapi.NodeHeartbeat{}
		}
		return &nexapi.AgentHeartbeat{}
	case "STARTWORKLOAD":
		return &nexapi.AgentStartWorkloadRequest{}
	case "ADEPLOY":
		return &nexapi.StartWorkloadRequest{}
	case "STOPWORKLOAD", "UNDEPLOY":
		return &nexapi.StopWorkloadRequest{}
	case "GETWORKLOAD", "CLONE":
		return &nexapi.CloneWorkloadRequest{}
	case "QUERYWORKLOADS", "WPING":
		return &nexapi.AgentListWorkloadsRequest{}
	case "SETLAMEDUCK", "LAMEDUCK":
		return &nexapi.LameduckRequest{}
	case "AUCTION":
		return &nexapi.AuctionRequest{}
	case "PING":
		return &nexapi.NodePingRequest{}
	case "INFO":
		return &struct{}{}
	}
	return nil
}

// verb finds the operation token of a $NEX.SVC subject: the first
// all-upper-case token after the plane ("agent" or "control").
func verb(tokens []string) string {
	for _, tok := range tokens[3:] {
		if tok != "" && strings.ToUpper(tok) == tok && strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
			return tok
		}
	}
	return ""
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// keySet lists every object key path in v ("a", "a.b", "a[].c").
func keySet(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := prefix + "." + k
			out[p] = true
			keySet(e, p, out)
		}
	case []any:
		for _, e := range x {
			keySet(e, prefix+"[]", out)
		}
	}
}

func keysOf(t *testing.T, data []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	m := map[string]bool{}
	keySet(v, "", m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestCaptureRoundTrip decodes every protocol message captured from the real
// node with the nexapi types (unknown keys rejected) and checks that
// re-encoding yields exactly the captured key set, nested keys included.
func TestCaptureRoundTrip(t *testing.T) {
	msgs := loadCapture(t)
	seen := map[string]int{}
	for i, c := range msgs {
		v := typeFor(c)
		if v == nil {
			continue
		}
		// The capture's one deliberately invalid deploy (an empty object sent
		// to a bidder id that does not exist) is not a well-formed message.
		if strings.HasSuffix(c.Subject, ".nosuchbid") {
			continue
		}
		name := reflect.TypeOf(v).Elem().String()
		dec := json.NewDecoder(strings.NewReader(c.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("line %d %s as %s: %v", i, c.Subject, name, err)
			continue
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Errorf("line %d: encode %s: %v", i, name, err)
			continue
		}
		got, want := keysOf(t, out), keysOf(t, []byte(c.Data))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("line %d %s (%s):\n got keys %v\nwant keys %v\n body %s\n ours %s", i, c.Subject, name, got, want, c.Data, out)
		}
		seen[name]++
	}
	for _, name := range []string{
		"nexapi.RegisterRemoteAgentRequest", "nexapi.RegisterRemoteAgentResponse",
		"nexapi.RegisterAgentRequest", "nexapi.RegisterAgentResponse", "nexapi.AgentHeartbeat",
		"nexapi.NodeHeartbeat", "nexapi.AgentStartWorkloadRequest", "nexapi.StartWorkloadResponse",
		"nexapi.StopWorkloadRequest", "nexapi.StopWorkloadResponse", "nexapi.CloneWorkloadRequest",
		"nexapi.StartWorkloadRequest", "nexapi.AgentListWorkloadsRequest", "[]nexapi.WorkloadSummary",
		"nexapi.AgentSummary", "nexapi.LameduckRequest", "nexapi.LameduckResponse",
		"nexapi.WorkloadStartedEvent", "nexapi.WorkloadStoppedEvent", "nexapi.AuctionRequest",
		"nexapi.AuctionResponse", "nexapi.NodeError", "nexapi.NodeInfoResponse",
		"nexapi.NodePingResponse", "nexapi.WorkloadDiscoveryResponse",
	} {
		if seen[name] == 0 {
			t.Errorf("no captured message decoded as %s", name)
		}
	}
	t.Logf("decoded %d captured messages: %v", sumOf(seen), seen)
}

func sumOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestCaptureBytes checks that for messages whose keys the node writes in
// sorted order (generated structs), our encoding is byte-identical.
func TestCaptureBytes(t *testing.T) {
	for i, c := range loadCapture(t) {
		var v any
		switch {
		case strings.Contains(c.Subject, ".agent.HEARTBEAT."):
			v = &nexapi.AgentHeartbeat{}
		case c.InReplyTo != "" && strings.HasSuffix(c.InReplyTo, ".agent.RREGISTER"):
			v = &nexapi.RegisterRemoteAgentResponse{}
		case strings.Contains(c.Subject, ".STARTWORKLOAD."):
			v = &nexapi.AgentStartWorkloadRequest{}
		default:
			continue
		}
		if err := json.Unmarshal([]byte(c.Data), v); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		out, _ := json.Marshal(v)
		if !bytes.Equal(out, []byte(c.Data)) {
			t.Errorf("line %d %s:\n got %s\nwant %s", i, c.Subject, out, c.Data)
		}
	}
}

func TestParseRegistrations(t *testing.T) {
	got := nexapi.ParseRegistrations("66MZ7FR6R12Fi4rBuld88G [native], 66MZ7FR6R12Fi4rBuld8Cy [inmem]")
	want := map[string]string{"66MZ7FR6R12Fi4rBuld88G": "native", "66MZ7FR6R12Fi4rBuld8Cy": "inmem"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := nexapi.FormatRegistrations([]string{"66MZ7FR6R12Fi4rBuld88G", "66MZ7FR6R12Fi4rBuld8Cy"}, want); s != "66MZ7FR6R12Fi4rBuld88G [native], 66MZ7FR6R12Fi4rBuld8Cy [inmem]" {
		t.Fatalf("format: %q", s)
	}
	if len(nexapi.ParseRegistrations("")) != 0 {
		t.Fatal("empty string has registrations")
	}
}
