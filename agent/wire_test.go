package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent"
)

// wireMsg is one message as the capture records it.
type wireMsg struct {
	Subject   string              `json:"subject"`
	InReplyTo string              `json:"in_reply_to"`
	Headers   map[string][]string `json:"headers"`
	Data      string              `json:"data"`
}

var idToken = regexp.MustCompile(`\.[A-Za-z0-9]{20,}`)

// kind names a message by its subject with ids and namespaces folded, and
// for replies by the request subject and whether it is an error.
func kind(m wireMsg) string {
	s := m.Subject
	prefix := ""
	if m.InReplyTo != "" {
		s, prefix = m.InReplyTo, "reply "
		if len(m.Headers["Nats-Service-Error-Code"]) > 0 {
			prefix = "error reply "
		}
	}
	s = idToken.ReplaceAllString(s, ".ID")
	s = strings.NewReplacer(".NOSUCHWORKLOAD", ".ID", ".default.", ".NS.", ".system.events.", ".NS.events.").Replace(s)
	if strings.HasPrefix(s, "$NEX.FEED.NS.logs.") {
		return "" // raw bytes
	}
	return prefix + s
}

// structKeys are the nested objects whose keys are part of the shape (the
// other nested objects are maps: tags, metadata, existing_state, filter).
var structKeys = map[string]bool{"request": true, "workload_creds": true, "connection_data": true,
	"registration_creds": true, "summary": true, "error": true}

func shape(t *testing.T, data string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return []string{"<raw>"}
	}
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				set[prefix+k] = true
				if structKeys[k] {
					walk(prefix+k+".", e)
				}
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[].", e)
			}
		}
	}
	walk("", v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWireMatchesCapture records everything the agent and the node
// stand-in put on the wire during a session and compares the shape of each
// kind of message with the same kind in the capture of the real node and
// nexlets: same keys (nested structs included), same error headers.
func TestWireMatchesCapture(t *testing.T) {
	f, err := os.Open("nexapi/testdata/capture.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	golden := map[string]wireMsg{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m wireMsg
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Subject == "" || m.Data == "" {
			continue
		}
		if k := kind(m); k != "" {
			if _, seen := golden[k]; !seen {
				golden[k] = m
			}
		}
	}

	r := newRig(t, rigOpts{nodeState: true})
	var mu sync.Mutex
	var recorded []wireMsg
	requests := map[string]string{} // reply inbox → request subject
	tap, err := r.nc.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		w := wireMsg{Subject: m.Subject, Data: string(m.Data), Headers: m.Header}
		if m.Reply != "" {
			requests[m.Reply] = m.Subject
		}
		if req, ok := requests[m.Subject]; ok {
			w.InReplyTo = req
		}
		recorded = append(recorded, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.nc.Flush()

	wanted := []string{
		"$NEX.SVC.nexus.agent.RREGISTER", "reply $NEX.SVC.nexus.agent.RREGISTER",
		"$NEX.SVC.ID.agent.REGISTER.ID", "reply $NEX.SVC.ID.agent.REGISTER.ID",
		"$NEX.SVC.ID.agent.HEARTBEAT.ID", "$NEX.SVC.system.control.HEARTBEAT.ID",
		"$NEX.SVC.ID.agent.ID.STARTWORKLOAD.ID", "reply $NEX.SVC.ID.agent.ID.STARTWORKLOAD.ID",
		"$NEX.SVC.ID.agent.STOPWORKLOAD.ID", "reply $NEX.SVC.ID.agent.STOPWORKLOAD.ID", "error reply $NEX.SVC.ID.agent.STOPWORKLOAD.ID",
		"$NEX.SVC.ID.agent.GETWORKLOAD.ID", "reply $NEX.SVC.ID.agent.GETWORKLOAD.ID",
		"$NEX.SVC.ID.agent.QUERYWORKLOADS", "reply $NEX.SVC.ID.agent.QUERYWORKLOADS",
		"reply $NEX.SVC.ID.agent.PING",
		"$NEX.SVC.ID.agent.SETLAMEDUCK", "reply $NEX.SVC.ID.agent.SETLAMEDUCK",
		"$NEX.FEED.NS.events.WORKLOADSTARTED", "$NEX.FEED.NS.events.WORKLOADSTOPPED",
	}

	// A session that produces every kind of agent-plane message.
	old := r.agent.AgentID()
	r.node.Restart(context.Background())
	r.node.PublishHeartbeat()
	r.node.PublishHeartbeat()
	eventually(t, 10*time.Second, "re-registration", func() bool { id := r.agent.AgentID(); return id != "" && id != old })
	r.waitHealthy(r.agent.AgentID())
	r.deploy(t, deployReq("hello", "job", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"echo", "hi"}}))
	svc := r.deploy(t, deployReq("svc", "service", agent.StartRequest{URI: "file://" + workloadBin, Argv: []string{"serve"}}))
	r.query("system")
	r.node.GetWorkload(context.Background(), "default", svc)
	r.node.PingAll(context.Background())
	r.node.Undeploy(context.Background(), "default", svc)
	r.node.Undeploy(context.Background(), "default", "NOSUCHWORKLOAD")
	r.node.SetLameduck(context.Background(), time.Second)
	eventually(t, 5*time.Second, "lameduck heartbeat", func() bool {
		a := r.node.Agents()
		return len(a) > 0 && a[len(a)-1].Summary.State == "lameduck"
	})
	// The tap's deliveries are asynchronous: wait for every kind before
	// unsubscribing.
	eventually(t, 5*time.Second, "every kind of message on the tap", func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, m := range recorded {
			seen[kind(m)] = true
		}
		for _, w := range wanted {
			if !seen[w] {
				return false
			}
		}
		return true
	})
	tap.Unsubscribe()

	mu.Lock()
	defer mu.Unlock()
	checked := map[string]bool{}
	for _, m := range recorded {
		k := kind(m)
		g, ok := golden[k]
		if k == "" || !ok || checked[k] {
			continue
		}
		checked[k] = true
		if got, want := shape(t, m.Data), shape(t, g.Data); !slices.Equal(got, want) {
			t.Errorf("%s:\n ours     %v\n captured %v\n ours: %s", k, got, want, m.Data)
		}
		for _, h := range []string{"Nats-Service-Error-Code", "Nats-Service-Error", "agentId", "namespace", "workload_id"} {
			if h == "agentId" && strings.HasSuffix(k, ".SETLAMEDUCK") {
				continue // ours adds the header the node looks for (SDK quirk)
			}
			if (len(g.Headers[h]) > 0) != (len(m.Headers[h]) > 0) {
				t.Errorf("%s: header %s: ours %v, captured %v", k, h, m.Headers[h], g.Headers[h])
			}
		}
	}
	for _, want := range wanted {
		if !checked[want] {
			t.Errorf("no %s was compared with the capture", want)
		}
	}
}
