package workload

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/clock"
)

// Lifecycle is how a workload's process is run.
type Lifecycle string

// Lifecycles.
const (
	Service  Lifecycle = "service"
	Job      Lifecycle = "job"
	Function Lifecycle = "function"
)

// State is a workload's supervision state.
type State string

// States.
const (
	Starting State = "starting"
	Running  State = "running"
	Warm     State = "warm"    // function idle, subscribed to its trigger
	Backoff  State = "backoff" // service waiting to restart
	Stopping State = "stopping"
	Stopped  State = "stopped" // stopped on request
	Exited   State = "exited"  // job finished
	Failed   State = "failed"  // could not start, or a service gave up
)

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("workload: not found")
	ErrInvalidSpec = errors.New("workload: invalid spec")
	ErrInvalidOpts = errors.New("workload: invalid options")
	ErrSecret      = errors.New("workload: secret")
)

// RestartPolicy bounds a service's restarts.
type RestartPolicy struct {
	MaxRestarts    int           `json:"max_restarts,omitempty"`    // consecutive quick failures before giving up; 0: 10
	InitialBackoff time.Duration `json:"initial_backoff,omitempty"` // 0: 500ms
	MaxBackoff     time.Duration `json:"max_backoff,omitempty"`     // 0: 30s
}

// Creds is a workload's NATS connection data from the node.
type Creds struct {
	Servers  []string `json:"servers,omitempty"`
	JWT      string   `json:"jwt,omitempty"`
	Seed     string   `json:"seed,omitempty"`
	NKey     string   `json:"nkey,omitempty"`
	User     string   `json:"user,omitempty"`
	Password string   `json:"password,omitempty"`
}

// Spec is what to run.
type Spec struct {
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Namespace   string    `json:"namespace"`
	Description string    `json:"description,omitempty"`
	Lifecycle   Lifecycle `json:"lifecycle"`
	URI         string    `json:"uri"`
	Digest      string    `json:"digest,omitempty"`
	Argv        []string  `json:"argv,omitempty"`
	// Env may hold secret:// references; the supervisor resolves them.
	Env            map[string]string `json:"env,omitempty"`
	WorkDir        string            `json:"workdir,omitempty"`
	Restart        RestartPolicy     `json:"restart,omitempty"`
	TriggerSubject string            `json:"trigger_subject,omitempty"`
	TriggerTimeout time.Duration     `json:"trigger_timeout,omitempty"` // 0: 30s
	Creds          Creds             `json:"creds,omitempty"`
	Request        json.RawMessage   `json:"request,omitempty"`
}

// Status is a workload's current state.
type Status struct {
	Spec      Spec      `json:"spec"`
	State     State     `json:"state"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	ExitCode  int       `json:"exit_code"`
	Err       string    `json:"err,omitempty"`
}

// Events receives workload output and lifecycle events. Calls must not
// block for long: they run on the supervising goroutines.
type Events interface {
	Log(namespace, workloadID, stream string, line []byte)
	Started(Status)
	Stopped(Status)
}

// Opts configures a Supervisor.
type Opts struct {
	StateDir    string          // required: where workload records live
	Artifacts   *artifact.Store // required
	Events      Events          // nil: discard
	Logger      *slog.Logger    // nil: discard
	StopGrace   time.Duration   // SIGTERM to SIGKILL; 0: 5s
	SecretsFile string          // YAML or JSON {namespace: {key: value}}; "": secret:// fails
	Clock       clock.Clock     // nil: real time
}

// Supervisor runs and watches workloads.
type Supervisor struct{}

// New validates opts.
func New(opts *Opts) (*Supervisor, error) { return &Supervisor{}, nil }

// Start validates spec, fetches its artifact, spawns it and records it.
func (s *Supervisor) Start(ctx context.Context, spec Spec) (Status, error) {
	return Status{}, errors.New("workload: not implemented")
}

// Stop stops a workload: SIGTERM to its process group, SIGKILL after the grace.
func (s *Supervisor) Stop(ctx context.Context, id string) (Status, error) {
	return Status{}, ErrNotFound
}

// Get returns one workload's status.
func (s *Supervisor) Get(id string) (Status, bool) { return Status{}, false }

// List returns every workload's status.
func (s *Supervisor) List() []Status { return nil }

// Restore re-reads the state dir after an agent restart.
func (s *Supervisor) Restore(ctx context.Context) ([]Status, error) { return nil, nil }

// Close stops supervising without killing workloads.
func (s *Supervisor) Close(ctx context.Context) error { return nil }

// StopAll stops every workload.
func (s *Supervisor) StopAll(ctx context.Context) error { return nil }
