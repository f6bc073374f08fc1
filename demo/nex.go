package demo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/nodesim"
)

// agentRun is one in-process agent of the demo.
type agentRun struct {
	name string
	a    *agent.Agent
	done chan error
}

func (e *env) startNodeAndAgents(ctx context.Context) error {
	if e.o.Verbose {
		// Workload output travels on the Nex log subjects, as it would to
		// an operator's `nats sub`.
		sub, err := e.nc.Subscribe("$NEX.FEED.*.logs.>", func(m *nats.Msg) {
			fmt.Fprintf(os.Stderr, "[%s] %s\n", m.Subject, strings.TrimRight(string(m.Data), "\n"))
		})
		if err != nil {
			return err
		}
		e.onStop(func() { sub.Unsubscribe() })
	}
	node, err := nodesim.New(e.nc, &nodesim.Opts{Nexus: "nexus", Logger: e.log.With("component", "node")})
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	e.node = node
	e.onStop(func() { node.Stop() })
	names := []string{"gateway-a"}
	if e.o.Migrate {
		names = append(names, "gateway-b")
	}
	for _, name := range names {
		ar, err := e.startAgent(ctx, name)
		if err != nil {
			return err
		}
		e.agents = append(e.agents, ar)
	}
	return nil
}

func (e *env) startAgent(ctx context.Context, name string) (*agentRun, error) {
	a, err := agent.New(&agent.Opts{
		Servers:   []string{e.ns.ClientURL()},
		Name:      name,
		Type:      agent.DefaultType,
		StateDir:  filepath.Join(e.dir, name),
		Heartbeat: time.Second,
		// A relay that is undeployed finishes the exchange it has on the
		// air; over a lossy channel that can take longer than the default.
		StopGrace: 20 * time.Second,
		Tags:      map[string]string{"site": "demo"},
		Logger:    e.log.With("component", "agent", "agent", name),
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ar := &agentRun{name: name, a: a, done: make(chan error, 1)}
	go func() { ar.done <- a.Run(runCtx) }()
	e.onStop(func() {
		// Undeploy first so the workloads stop; a stopped agent keeps its
		// workloads running by design (an agent restart must not kill them).
		for _, id := range e.workloadsOn(ar.name) {
			uctx, ucancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = e.node.Undeploy(uctx, "default", id)
			ucancel()
		}
		cancel()
		<-ar.done
	})
	select {
	case <-a.Ready():
	case err := <-ar.done:
		return nil, fmt.Errorf("agent %s stopped: %w", name, err)
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("agent %s not registered after 15s: %s", name, a.Status())
	}
	// The node deploys only to agents whose heartbeat made them healthy.
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	for {
		for _, ag := range e.node.Agents() {
			if ag.ID == a.AgentID() && ag.Health == nodesim.HealthHealthy {
				e.log.Info("agent registered", "agent", name, "agent_id", a.AgentID(), "node_id", e.node.ID())
				return ar, nil
			}
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("agent %s never became healthy on the node", name)
		case <-e.node.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *env) workloadsOn(agentName string) []string {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	return append([]string(nil), e.deployed[agentName]...)
}

// relayRequest is the StartWorkloadRequest an operator's Nexfile would give:
// the relay binary from the object store, as a service.
func (e *env) relayRequest(addr int) (nexapi.StartWorkloadRequest, error) {
	argv := append([]string{"relay", "--address", fmt.Sprint(addr), "--peers", "north=2,south=3",
		"--psk-file", e.psk, "--log-level", "debug"}, e.radioArgs(fmt.Sprintf("relay-%d", addr))...)
	run, err := json.Marshal(agent.StartRequest{
		URI:         "nats://" + Bucket + "/nexfield",
		Argv:        argv,
		Description: "LoRa relay to the air-gapped peers",
		Environment: map[string]string{"NEXFIELD_STATE_DIR": filepath.Join(e.dir, fmt.Sprintf("relay-%d", addr))},
	})
	if err != nil {
		return nexapi.StartWorkloadRequest{}, err
	}
	return nexapi.StartWorkloadRequest{
		Name: "relay", Namespace: "default", Description: "radio relay", WorkloadType: agent.DefaultType,
		WorkloadLifecycle: nexapi.LifecycleService, RunRequest: string(run), Tags: map[string]string{},
	}, nil
}

// deployOn starts the relay on one agent and records it for clean-up.
func (e *env) deployOn(ctx context.Context, ar *agentRun, addr int) (string, error) {
	req, err := e.relayRequest(addr)
	if err != nil {
		return "", err
	}
	id := nuid.Next()
	if _, err := e.node.StartWorkload(ctx, ar.a.AgentID(), id, req); err != nil {
		return "", err
	}
	e.stopMu.Lock()
	if e.deployed == nil {
		e.deployed = map[string][]string{}
	}
	e.deployed[ar.name] = append(e.deployed[ar.name], id)
	e.stopMu.Unlock()
	return id, nil
}

func (e *env) deployRelay(ctx context.Context) error {
	id, err := e.deployOn(ctx, e.agents[0], 1)
	if err != nil {
		return err
	}
	if err := e.waitService(ctx, "nexfield-relay", 20*time.Second); err != nil {
		return fmt.Errorf("%w (agent status: %s)", err, e.agents[0].a.Status())
	}
	ws, err := e.node.Query(ctx, "default", nil)
	if err != nil {
		return fmt.Errorf("query workloads: %w", err)
	}
	for _, w := range ws {
		if w.ID == id {
			e.res.Relay = w
		}
	}
	e.res.RelayBinary, err = cachedFile(filepath.Join(e.dir, e.agents[0].name, "artifacts"), e.res.Uploaded)
	return err
}

// cachedFile finds the file in dir whose SHA-256 is digest ("SHA-256=" and
// URL-safe base64, as the object store writes it).
func cachedFile(dir, digest string) (string, error) {
	want, ok := strings.CutPrefix(digest, "SHA-256=")
	if !ok {
		return "", fmt.Errorf("digest %q is not SHA-256", digest)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, de := range entries {
		if !de.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, de.Name()))
		if err != nil {
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err == nil && strings.TrimRight(base64.URLEncoding.EncodeToString(h.Sum(nil)), "=") == strings.TrimRight(want, "=") {
			return filepath.Join(dir, de.Name()), nil
		}
	}
	return "", fmt.Errorf("no file in the agent's cache %s has the uploaded digest", dir)
}
