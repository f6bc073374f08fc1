package agent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/agent/workload"
)

// StartRequestSchema is the JSON Schema of the run_request this agent
// accepts, sent as a string at REGISTER. It is a compatible superset of the
// native nexlet's (uri, argv, environment, description, expose_ports): a
// Nexfile written for type native validates unchanged. Like the native
// schema it allows unknown keys, so Nexfiles stay portable across agents.
const StartRequestSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "NexfieldStartRequest",
  "type": "object",
  "properties": {
    "uri": {
      "type": "string",
      "minLength": 1,
      "description": "nats://BUCKET/NAME[:TAG] (object NAME_TAG, tag default latest; per-architecture objects NAME_TAG.linux-ARCH preferred) or file:///absolute/path"
    },
    "argv": {
      "type": "array",
      "items": {"type": "string"},
      "description": "Arguments passed to the binary; secret://KEY elements are resolved from the agent's secret store"
    },
    "environment": {
      "type": "object",
      "additionalProperties": {"type": "string"},
      "description": "Environment of the process; secret://KEY values are resolved from the agent's secret store"
    },
    "description": {"type": "string", "description": "A description of the workload"},
    "expose_ports": {
      "type": "array",
      "items": {"type": "integer", "minimum": 1, "maximum": 65535},
      "description": "Ports the workload listens on; with the agent's --ingress-host the first is announced to an ingress proxy"
    },
    "digest": {
      "type": "string",
      "pattern": "^SHA-256=[A-Za-z0-9_\\-+/]{43}=?$",
      "description": "Expected SHA-256 of the binary as the object store writes it (SHA-256=<base64url>)"
    },
    "trigger_subject": {
      "type": "string",
      "pattern": "^[^\\s>]+$",
      "description": "function lifecycle: the subject that triggers one run (payload on stdin, stdout is the reply); default: the workload id"
    },
    "trigger_timeout": {
      "type": "string",
      "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$",
      "description": "function lifecycle: time limit of one run, a Go duration (default 10s)"
    },
    "restart": {
      "type": "object",
      "properties": {
        "max_restarts": {"type": "integer", "minimum": 0, "description": "restarts before giving up; 0 means the default cap"},
        "initial_backoff": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"},
        "max_backoff": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
      },
      "additionalProperties": false,
      "description": "service lifecycle: exponential back-off restart policy"
    },
    "workdir": {
      "type": "string",
      "pattern": "^/",
      "description": "Absolute working directory of the process (default: a per-workload directory under the state dir)"
    }
  },
  "required": ["uri"]
}`

// StartRequest is the decoded run_request.
type StartRequest struct {
	URI            string            `json:"uri"`
	Argv           []string          `json:"argv,omitempty"`
	Environment    map[string]string `json:"environment,omitempty"`
	Description    string            `json:"description,omitempty"`
	ExposePorts    []int             `json:"expose_ports,omitempty"`
	Digest         string            `json:"digest,omitempty"`
	TriggerSubject string            `json:"trigger_subject,omitempty"`
	TriggerTimeout string            `json:"trigger_timeout,omitempty"`
	Restart        *RestartPolicy    `json:"restart,omitempty"`
	WorkDir        string            `json:"workdir,omitempty"`
}

// RestartPolicy is the restart key of a StartRequest.
type RestartPolicy struct {
	MaxRestarts    int    `json:"max_restarts,omitempty"`
	InitialBackoff string `json:"initial_backoff,omitempty"`
	MaxBackoff     string `json:"max_backoff,omitempty"`
}

// Lifecycles, short names.
const (
	lifecycleService  = workload.Service
	lifecycleJob      = workload.Job
	lifecycleFunction = workload.Function
)

// badRequestError is a request the agent refuses before doing any work.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{msg: fmt.Sprintf(format, args...)}
}

// specFor validates an inbound STARTWORKLOAD body and maps it to a
// workload.Spec: JSON, then run_request against the schema, then the
// semantic checks the schema cannot express. body is kept in the Spec so
// that GETWORKLOAD and a restart can give the request back.
func (a *Agent) specFor(workloadID string, body []byte) (workload.Spec, nexapi.AgentStartWorkloadRequest, error) {
	var in nexapi.AgentStartWorkloadRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return workload.Spec{}, in, badRequest("invalid start workload request: %v", err)
	}
	if !nexapi.ValidToken(workloadID) {
		return workload.Spec{}, in, badRequest("invalid workload id %q", workloadID)
	}
	req := in.Request
	if err := a.schema.Validate([]byte(req.RunRequest)); err != nil {
		return workload.Spec{}, in, badRequest("invalid run_request: %v", err)
	}
	var sr StartRequest
	if err := json.Unmarshal([]byte(req.RunRequest), &sr); err != nil {
		return workload.Spec{}, in, badRequest("invalid run_request: %v", err)
	}
	if req.Namespace == "" || !nexapi.ValidToken(req.Namespace) {
		return workload.Spec{}, in, badRequest("invalid namespace %q", req.Namespace)
	}
	lc := workload.Lifecycle(req.WorkloadLifecycle)
	switch lc {
	case lifecycleService, lifecycleJob, lifecycleFunction:
	default:
		return workload.Spec{}, in, badRequest("unsupported workload lifecycle %q; this agent runs service, job and function", req.WorkloadLifecycle)
	}
	switch {
	case strings.HasPrefix(sr.URI, "nats://"), strings.HasPrefix(sr.URI, "file://"):
	default:
		return workload.Spec{}, in, badRequest("invalid uri; must be prefixed with file:// for local binary or nats:// to fetch an artifact: %s", sr.URI)
	}
	env, err := a.openEnvironment(sr.Environment)
	if err != nil {
		return workload.Spec{}, in, err
	}
	sr.Environment = env
	if sr.WorkDir != "" && !path.IsAbs(sr.WorkDir) {
		return workload.Spec{}, in, badRequest("workdir must be absolute: %q", sr.WorkDir)
	}
	spec := workload.Spec{
		ID:          workloadID,
		Name:        req.Name,
		Namespace:   req.Namespace,
		Description: req.Description,
		Lifecycle:   lc,
		URI:         sr.URI,
		Digest:      sr.Digest,
		Argv:        sr.Argv,
		Env:         sr.Environment,
		WorkDir:     sr.WorkDir,
		Creds:       a.credsOf(in.WorkloadCreds),
		Request:     json.RawMessage(append([]byte(nil), body...)),
	}
	if spec.Name == "" {
		spec.Name = workloadID
	}
	if spec.Description == "" {
		spec.Description = sr.Description
	}
	if sr.Restart != nil {
		var err error
		spec.Restart.MaxRestarts = sr.Restart.MaxRestarts
		if spec.Restart.InitialBackoff, err = parseDuration("restart.initial_backoff", sr.Restart.InitialBackoff); err != nil {
			return workload.Spec{}, in, err
		}
		if spec.Restart.MaxBackoff, err = parseDuration("restart.max_backoff", sr.Restart.MaxBackoff); err != nil {
			return workload.Spec{}, in, err
		}
	}
	if lc == lifecycleFunction {
		spec.TriggerSubject = sr.TriggerSubject
		if spec.TriggerSubject == "" {
			// The in-memory nexlet uses the workload id as the subject.
			spec.TriggerSubject = workloadID
		}
		var err error
		if spec.TriggerTimeout, err = parseDuration("trigger_timeout", sr.TriggerTimeout); err != nil {
			return workload.Spec{}, in, err
		}
	} else if sr.TriggerSubject != "" {
		return workload.Spec{}, in, badRequest("trigger_subject is only valid for the function lifecycle, not %s", lc)
	}
	return spec, in, nil
}

// openEnvironment decrypts an environment given as an EncEnv envelope
// (exactly the keys encrypted_by and base64_encrypted_env: nkeys "xkv1"
// sealed to this agent's public_xkey, standard base64, a JSON object of
// strings inside). Any other map is a plain environment, as the native
// nexlet treats it.
func (a *Agent) openEnvironment(env map[string]string) (map[string]string, error) {
	by, ok1 := env["encrypted_by"]
	b64, ok2 := env["base64_encrypted_env"]
	if len(env) != 2 || !ok1 || !ok2 {
		return env, nil
	}
	if a.xkp == nil {
		return nil, badRequest("encrypted environment: agent has no xkey")
	}
	sealed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, badRequest("encrypted environment: base64: %v", err)
	}
	plain, err := a.xkp.Open(sealed, by)
	if err != nil {
		return nil, badRequest("encrypted environment: cannot open with this agent's xkey (sealed for another agent?): %v", err)
	}
	var out map[string]string
	if err := json.Unmarshal(plain, &out); err != nil {
		return nil, badRequest("encrypted environment: not a JSON object of strings: %v", err)
	}
	return out, nil
}

func parseDuration(key, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest("invalid %s %q: want a Go duration such as 500ms or 1m", key, s)
	}
	return d, nil
}

// credsOf maps the workload's connection data. The node's default minter
// hands out the server list the node itself was started with; when that is
// empty, or only loopback addresses while the agent reaches NATS elsewhere
// (a node started with -s nats://127.0.0.1:4222 on another machine), the
// agent's own servers are added so the workload can connect from the Pi.
func (a *Agent) credsOf(c nexapi.NatsConnectionData) workload.Creds {
	servers := slices.Clone(c.NatsServers)
	if len(servers) == 0 || (allLoopback(servers) && !allLoopback(a.opts.Servers)) {
		for _, s := range a.opts.Servers {
			if !slices.Contains(servers, s) {
				servers = append(servers, s)
			}
		}
	}
	return workload.Creds{
		Servers:  servers,
		JWT:      c.NatsUserJWT,
		Seed:     c.NatsUserSeed,
		NKey:     c.NatsUserNkey,
		User:     c.NatsUserName,
		Password: c.NatsUserPassword,
	}
}

// allLoopback reports whether every URL names a loopback host.
func allLoopback(urls []string) bool {
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			return false
		}
		h := p.Hostname()
		if h == "localhost" {
			continue
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(urls) > 0
}
