package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/internal/atomicfile"
)

// registrationFile keeps the current registration, with the credentials
// the node handed out for it (so 0600), for the next run of the agent to
// take over. The node never removes a registration, keeps a dead one
// healthy for 10-15 s after its last heartbeat and sends deploys to it
// (docs/nex-protocol.md §2.3); an agent that came back under a new id
// would leave those deploys unanswered and one more dead row on the node.
const registrationFile = "registration.json"

// resumeTimeout bounds the REGISTER that checks whether the node still
// holds the previous registration; the node answers it at once, and a
// network that is not up yet is retried like any registration.
const resumeTimeout = 5 * time.Second

type savedRegistration struct {
	Nexus             string                      `json:"nexus"`
	NodeID            string                      `json:"node_id"`
	AgentID           string                      `json:"agent_id"`
	Request           nexapi.RegisterAgentRequest `json:"request"`
	RegistrationCreds nexapi.NatsConnectionData   `json:"registration_creds"`
	ConnectionData    nexapi.NatsConnectionData   `json:"connection_data"`
}

// errNotResumable: the previous registration cannot be taken over (gone,
// refused, or registered with other settings); the agent registers afresh.
var errNotResumable = errors.New("agent: previous registration cannot be taken over")

func (a *Agent) registrationPath() string { return filepath.Join(a.opts.StateDir, registrationFile) }

// loadRegistration reads the registration of the previous run. A missing
// or unreadable file means a fresh registration, nothing worse.
func (a *Agent) loadRegistration() (savedRegistration, bool) {
	var r savedRegistration
	b, err := os.ReadFile(a.registrationPath())
	if errors.Is(err, os.ErrNotExist) {
		return r, false
	}
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err == nil && (!nexapi.ValidToken(r.NodeID) || !nexapi.ValidToken(r.AgentID)) {
		err = errors.New("invalid node or agent id")
	}
	if err != nil {
		a.log.Warn("previous registration unreadable; registering afresh", "file", a.registrationPath(), "err", err)
		return savedRegistration{}, false
	}
	a.savedReg = b
	return r, true
}

// saveRegistration records r unless it is what the file already says (a
// taken-over registration costs no write).
func (a *Agent) saveRegistration(r savedRegistration) {
	b, err := json.Marshal(r)
	if err != nil || bytes.Equal(b, a.savedReg) {
		return
	}
	if err := atomicfile.WriteFile(a.registrationPath(), b, 0o600); err != nil {
		a.log.Warn("record registration", "err", err)
		return
	}
	a.savedReg = b
}

// resume takes over the registration of the previous run: REGISTER again
// under the same id, which a node that still holds it refuses as a
// duplicate (the confirmation) and a node that restarted with the same
// identity accepts. It fails with errNotResumable when that cannot work or
// did not; a timeout (the network is not up yet) is retried.
func (a *Agent) resume(ctx context.Context, prev savedRegistration) (*session, error) {
	if prev.Nexus != a.opts.Nexus {
		return nil, fmt.Errorf("%w: it was with nexus %q", errNotResumable, prev.Nexus)
	}
	if !sameRegistration(prev.Request, a.registerRequest()) {
		return nil, fmt.Errorf("%w: type, name, key, lifecycles or schema changed", errNotResumable)
	}
	rctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	s, err := a.registerAs(rctx, prev.NodeID, prev.AgentID, prev.RegistrationCreds, &prev.ConnectionData)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("%w: %w", errNotResumable, err)
	}
	if err == nil {
		a.log.Info("previous registration taken over", "agent_id", s.agentID, "node_id", s.nodeID)
	}
	return s, err
}

// sameRegistration reports whether the node would treat b as it treats a:
// the version and description it stores are shown nowhere (the node shows
// the heartbeat's), so an upgrade keeps its registration.
func sameRegistration(a, b nexapi.RegisterAgentRequest) bool {
	a.Version, b.Version, a.Description, b.Description = "", "", "", ""
	return reflect.DeepEqual(a, b)
}
