package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/clock"
)

// Lifecycle is how a workload's process is run.
type Lifecycle string

// Lifecycles.
const (
	Service  Lifecycle = "service"  // kept running, restarted with back-off
	Job      Lifecycle = "job"      // run once, exit code reported
	Function Lifecycle = "function" // run once per message on TriggerSubject
)

// State is a workload's supervision state.
type State string

// States. Stopped, Exited and Failed are final.
const (
	Starting State = "starting"
	Running  State = "running"
	Warm     State = "warm"    // function idle, subscribed to its trigger
	Backoff  State = "backoff" // service waiting to restart
	Stopping State = "stopping"
	Stopped  State = "stopped" // stopped on request
	Exited   State = "exited"  // job finished (ExitCode says how)
	Failed   State = "failed"  // could not run, or a service in a crash loop
)

// Final reports whether a workload in state st will not run again.
func (st State) Final() bool { return st == Stopped || st == Exited || st == Failed }

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("workload: not found")
	ErrInvalidSpec = errors.New("workload: invalid spec")
	ErrInvalidOpts = errors.New("workload: invalid options")
	ErrSecret      = errors.New("workload: secret")
	ErrClosed      = errors.New("workload: supervisor closed")
)

// Defaults of RestartPolicy, Spec.TriggerTimeout and Opts.StopGrace.
const (
	DefaultMaxRestarts    = 10
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultTriggerTimeout = 30 * time.Second
	DefaultStopGrace      = 5 * time.Second
	// DefaultOutputBacklog: output written while no agent read it that the
	// next one delivers (the newest); at a debug logger's 10 kB/s, the
	// last 100 s.
	DefaultOutputBacklog = 1 << 20
	// finishedKept is how many finished workloads stay on record (so a
	// finished job is not run again after a restart) before the oldest go.
	finishedKept = 64
)

// RestartPolicy bounds a service's restarts. A service that exits is
// restarted after InitialBackoff, doubling up to MaxBackoff; after
// MaxRestarts consecutive exits, each within MaxBackoff of its start, it is
// failed instead (a crash loop). A run that lasts MaxBackoff or longer
// resets the count and the back-off.
type RestartPolicy struct {
	MaxRestarts    int           `json:"max_restarts,omitempty"`    // 0: DefaultMaxRestarts
	InitialBackoff time.Duration `json:"initial_backoff,omitempty"` // 0: DefaultInitialBackoff
	MaxBackoff     time.Duration `json:"max_backoff,omitempty"`     // 0: DefaultMaxBackoff
}

func (p RestartPolicy) withDefaults() RestartPolicy {
	if p.MaxRestarts <= 0 {
		p.MaxRestarts = DefaultMaxRestarts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	return p
}

// backoff is the wait before restart number n (1-based) of a crash streak.
func (p RestartPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
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
	Digest      string    `json:"digest,omitempty"` // expected artifact digest, "" = any
	Argv        []string  `json:"argv,omitempty"`
	// Env values (and Argv elements) of the form secret://KEY are resolved
	// by the supervisor from Opts.SecretsFile, on every (re)start.
	Env            map[string]string `json:"env,omitempty"`
	WorkDir        string            `json:"workdir,omitempty"` // "": the agent's
	Restart        RestartPolicy     `json:"restart,omitzero"`
	TriggerSubject string            `json:"trigger_subject,omitempty"` // function only
	TriggerTimeout time.Duration     `json:"trigger_timeout,omitempty"` // function only; 0: DefaultTriggerTimeout
	Creds          Creds             `json:"creds,omitzero"`
	Request        json.RawMessage   `json:"request,omitempty"` // the start request as received, kept for restore
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func (sp *Spec) validate() error {
	if !idRE.MatchString(sp.ID) {
		return fmt.Errorf("%w: id %q: want 1-128 of A-Z a-z 0-9 _ -", ErrInvalidSpec, sp.ID)
	}
	switch sp.Lifecycle {
	case Service, Job:
	case Function:
		if sp.TriggerSubject == "" {
			return fmt.Errorf("%w: %s: a function needs a trigger subject", ErrInvalidSpec, sp.ID)
		}
	default:
		return fmt.Errorf("%w: %s: unknown lifecycle %q (want service, job or function)", ErrInvalidSpec, sp.ID, sp.Lifecycle)
	}
	if sp.URI == "" {
		return fmt.Errorf("%w: %s: empty uri", ErrInvalidSpec, sp.ID)
	}
	if sp.WorkDir != "" && !strings.HasPrefix(sp.WorkDir, "/") {
		return fmt.Errorf("%w: %s: workdir %q is not absolute", ErrInvalidSpec, sp.ID, sp.WorkDir)
	}
	return nil
}

// Status is a workload's current state.
type Status struct {
	Spec      Spec      `json:"spec"`
	State     State     `json:"state"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts,omitempty"` // service restarts so far
	StartedAt time.Time `json:"started_at,omitzero"`
	ExitCode  int       `json:"exit_code"` // last exit; -1 unknown; 128+n killed by signal n
	Err       string    `json:"err,omitempty"`

	// A function's runs since this supervisor started, the failed ones
	// among them, their wall-clock time and their user+system time. Not
	// recorded on disk: a busy function must not cost an SD-card write per
	// run.
	Triggers, TriggerErrors int64         `json:"-"`
	TriggerTime, TriggerCPU time.Duration `json:"-"`
}

// Events receives workload output and lifecycle events. Calls must not
// block for long: they run on the supervising goroutines.
type Events interface {
	// Log gets one line (without its newline) of stdout or stderr.
	Log(namespace, workloadID, stream string, line []byte)
	// Started: a workload is running (or, for a function, subscribed).
	Started(Status)
	// Stopped: a workload reached a final state: a job's exit, a stop, a
	// service given up. ExitCode and Err say why.
	Stopped(Status)
}

type noEvents struct{}

func (noEvents) Log(string, string, string, []byte) {}
func (noEvents) Started(Status)                     {}
func (noEvents) Stopped(Status)                     {}

// Opts configures a Supervisor.
type Opts struct {
	StateDir    string          // required: where workload records and output pipes live
	Artifacts   *artifact.Store // required: where binaries come from
	Events      Events          // nil: discard
	Logger      *slog.Logger    // nil: discard
	StopGrace   time.Duration   // SIGTERM to SIGKILL; 0: DefaultStopGrace
	SecretsFile string          // YAML or JSON {namespace: {key: value}}; "": secret:// fails
	Clock       clock.Clock     // nil: real time
	// OutputBacklog bounds what of a workload's output, written while no
	// agent read it, a restarted agent delivers; older output is skipped
	// (and logged). 0: DefaultOutputBacklog.
	OutputBacklog int64
}

// Supervisor runs and watches workloads: one goroutine per workload, one
// process group per process, one record per workload in the state dir.
type Supervisor struct {
	dir     string
	store   *artifact.Store
	events  Events
	log     *slog.Logger
	grace   time.Duration
	secrets secretStore
	clk     clock.Clock
	boot    string
	// fileOutput: processes write to output files (punchSupported), not
	// named pipes; backlog is Opts.OutputBacklog.
	fileOutput bool
	backlog    int64

	// gcMu is held shared from an artifact fetch until the workload using
	// it is registered, and exclusively by GC, so a fresh binary is never
	// collected before its workload counts as using it.
	gcMu sync.RWMutex

	mu     sync.Mutex // guards ws, closed and every wl's st
	ws     map[string]*wl
	closed bool
	wg     sync.WaitGroup // supervising goroutines
}

// wl is one workload under supervision.
type wl struct {
	st     Status
	digest string // artifact in use
	path   string
	argv   []string // secret-resolved
	env    []string
	pid    uint64 // start time of st.PID
	fails  int    // consecutive quick exits (service)

	stopCh     chan struct{}
	stopOnce   sync.Once
	detachCh   chan struct{}
	detachOnce sync.Once
	done       chan struct{} // closed when nothing supervises it any more
	fn         *function
}

func newWL(st Status) *wl {
	return &wl{st: st, stopCh: make(chan struct{}), detachCh: make(chan struct{}), done: make(chan struct{})}
}

func (w *wl) stop()   { w.stopOnce.Do(func() { close(w.stopCh) }) }
func (w *wl) detach() { w.detachOnce.Do(func() { close(w.detachCh) }) }

// New validates opts and prepares the state dir (mode 0700: records hold
// NATS credentials).
func New(opts *Opts) (*Supervisor, error) {
	if opts == nil {
		opts = &Opts{}
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("%w: no state dir", ErrInvalidOpts)
	}
	if opts.Artifacts == nil {
		return nil, fmt.Errorf("%w: no artifact store", ErrInvalidOpts)
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("workload: state dir: %w", err)
	}
	s := &Supervisor{
		dir:     opts.StateDir,
		store:   opts.Artifacts,
		events:  opts.Events,
		log:     opts.Logger,
		grace:   opts.StopGrace,
		secrets: secretStore{opts.SecretsFile},
		clk:     clock.Or(opts.Clock),
		boot:    bootID(),
		ws:      map[string]*wl{},
		backlog: opts.OutputBacklog,
	}
	if s.events == nil {
		s.events = noEvents{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.grace <= 0 {
		s.grace = DefaultStopGrace
	}
	if s.backlog <= 0 {
		s.backlog = DefaultOutputBacklog
	}
	if s.fileOutput = punchSupported(s.dir); !s.fileOutput {
		s.log.Warn("the state dir's filesystem cannot punch holes: workload output goes through named pipes, and a workload that writes stalls while no agent reads", "dir", s.dir)
	}
	return s, nil
}

// String names the supervisor by its state dir.
func (s *Supervisor) String() string { return "workload{" + s.dir + "}" }

// Start validates spec, resolves its secrets, fetches its artifact, spawns
// it (or, for a function, subscribes to its trigger) and records it. Start
// of an id that is already running returns its Status and starts nothing;
// an id whose earlier run is finished is started afresh.
func (s *Supervisor) Start(ctx context.Context, spec Spec) (Status, error) {
	if err := spec.validate(); err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Status{}, ErrClosed
	}
	if w, ok := s.ws[spec.ID]; ok && !w.st.State.Final() {
		st := w.st
		s.mu.Unlock()
		return st, nil
	}
	w := newWL(Status{Spec: spec, State: Starting})
	s.ws[spec.ID] = w
	s.mu.Unlock()

	st, err := s.launch(ctx, w)
	if err != nil {
		s.mu.Lock()
		if s.ws[spec.ID] == w {
			delete(s.ws, spec.ID)
		}
		w.st.State, w.st.Err = Failed, err.Error()
		s.mu.Unlock()
		close(w.done)
		s.removeRecord(spec.ID)
		return Status{}, err
	}
	return st, nil
}

// launch readies and runs a new workload (or a restored one that has to be
// started again) and hands it to its supervising goroutine.
func (s *Supervisor) launch(ctx context.Context, w *wl) (Status, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.prepare(ctx, w); err != nil {
		return Status{}, err
	}
	select {
	case <-w.stopCh:
		return Status{}, fmt.Errorf("workload: %s: stopped while starting", w.st.Spec.ID)
	default:
	}
	if err := s.save(w); err != nil {
		return Status{}, unrecorded(w.st.Spec.ID, err)
	}
	// Add only while open: Close may be waiting on wg.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Status{}, ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if w.st.Spec.Lifecycle == Function {
		if err := s.startFunction(w, false); err != nil {
			s.wg.Done()
			return Status{}, err
		}
		st := s.setState(w, func(st *Status) { st.State, st.StartedAt = Warm, s.clk.Now() })
		if err := s.save(w); err != nil {
			w.fn.shutdown()
			s.wg.Done()
			return Status{}, unrecorded(st.Spec.ID, err)
		}
		s.events.Started(st)
		go s.superviseFunction(w)
		return st, nil
	}
	p, err := s.spawn(w, false)
	if err != nil {
		s.wg.Done()
		return Status{}, err
	}
	st := s.status(w)
	s.events.Started(st)
	go s.superviseProcess(w, p)
	return st, nil
}

// prepare resolves secrets and fetches the artifact.
func (s *Supervisor) prepare(ctx context.Context, w *wl) error {
	spec := w.st.Spec
	argv, env, err := s.secrets.resolve(spec.Namespace, spec.Argv, spec.Env)
	if err != nil {
		return fmt.Errorf("workload: %s: %w", spec.ID, err)
	}
	w.argv, w.env = argv, buildEnv(env, spec.Creds)
	return s.fetch(ctx, w)
}

func (s *Supervisor) fetch(ctx context.Context, w *wl) error {
	spec := w.st.Spec
	var nc *nats.Conn
	if strings.HasPrefix(spec.URI, "nats://") {
		var err error
		if nc, err = dial(spec.Creds, "nexfield-fetch-"+spec.ID); err != nil {
			return fmt.Errorf("workload: %s: connect to fetch %s: %w", spec.ID, spec.URI, err)
		}
		defer nc.Close()
	}
	a, err := s.store.Fetch(ctx, nc, spec.URI, spec.Digest)
	if err != nil {
		return fmt.Errorf("workload: %s: %w", spec.ID, err)
	}
	s.mu.Lock()
	w.path, w.digest = a.Path, a.Digest
	s.mu.Unlock()
	return nil
}

// buildEnv is the process environment: the request's, then the workload's
// NATS connection as nexapi.WorkloadNATS writes it (appended, so it wins),
// and NATS_URL unless the request set it. Nothing of the agent's own
// environment leaks in, except a default PATH for #! scripts.
func buildEnv(req map[string]string, c Creds) []string {
	keys := make([]string, 0, len(req))
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys)+7)
	for _, k := range keys {
		env = append(env, k+"="+req[k])
	}
	servers := strings.Join(c.Servers, ",")
	if _, ok := req["PATH"]; !ok {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if _, ok := req["NATS_URL"]; !ok {
		env = append(env, "NATS_URL="+servers)
	}
	w := nexapi.WorkloadNATS{Servers: c.Servers, JWT: c.JWT, Seed: c.Seed, User: c.User, Password: c.Password}
	return append(env, w.Environ()...)
}

// dial connects with a workload's credentials.
func dial(c Creds, name string, extra ...nats.Option) (*nats.Conn, error) {
	if len(c.Servers) == 0 {
		return nil, errors.New("no NATS servers in the workload's connection data")
	}
	opts := append([]nats.Option{nats.Name(name)}, extra...)
	switch {
	case c.JWT != "" && c.Seed != "":
		opts = append(opts, nats.UserJWTAndSeed(c.JWT, c.Seed))
	case c.Seed != "":
		kp, err := nkeys.FromSeed([]byte(c.Seed))
		if err != nil {
			return nil, fmt.Errorf("workload nkey seed: %w", err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("workload nkey seed: %w", err)
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	return nats.Connect(strings.Join(c.Servers, ","), opts...)
}

func (s *Supervisor) emitters(spec Spec) [2]func([]byte) {
	return [2]func([]byte){
		func(b []byte) { s.events.Log(spec.Namespace, spec.ID, "stdout", b) },
		func(b []byte) { s.events.Log(spec.Namespace, spec.ID, "stderr", b) },
	}
}

// spawn starts one process of a service or job and records it as running.
// A restart counts in Restarts in the same update that shows the new pid.
func (s *Supervisor) spawn(w *wl, restart bool) (*proc, error) {
	spec := w.st.Spec
	if restart || w.env == nil {
		// Secrets are read again for every run: a rotated secret reaches
		// the next restart.
		argv, env, err := s.secrets.resolve(spec.Namespace, spec.Argv, spec.Env)
		if err != nil {
			return nil, fmt.Errorf("workload: %s: %w", spec.ID, err)
		}
		w.argv, w.env = argv, buildEnv(env, spec.Creds)
	}
	if _, err := os.Stat(w.path); err != nil {
		// The cache was cleaned under us: fetch again.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := s.fetch(ctx, w)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	p, err := startProcess(w.path, w.argv, w.env, spec.WorkDir, s.outPaths(spec.ID), s.fileOutput, s.emitters(spec), s.backlog)
	if err != nil {
		return nil, fmt.Errorf("workload: %s: %w", spec.ID, err)
	}
	s.logSkipped(spec.ID, p)
	s.setState(w, func(st *Status) {
		st.State, st.PID, st.StartedAt, st.Err = Running, p.pid, s.clk.Now(), ""
		if restart {
			st.Restarts++
		}
		w.pid = p.start
	})
	if err := s.save(w); err != nil {
		if !restart {
			// A process no record shows would, after an agent restart,
			// run unsupervised (a service would even run twice): refuse
			// it while the caller can still hear why.
			p.kill()
			return nil, unrecorded(spec.ID, err)
		}
		s.unsaved(w, err)
	}
	s.log.Info("workload process started", "workload_id", spec.ID, "pid", p.pid)
	return p, nil
}

func (s *Supervisor) setState(w *wl, f func(*Status)) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&w.st)
	return w.st
}

func (s *Supervisor) status(w *wl) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return w.st
}

// save writes w's record.
func (s *Supervisor) save(w *wl) error {
	s.mu.Lock()
	r := record{Status: w.st, PIDStart: w.pid, BootID: s.boot, Digest: w.digest, Path: w.path, UpdatedAt: s.clk.Now()}
	s.mu.Unlock()
	return s.writeRecord(r)
}

// saveOrLog writes w's record where no caller is left to act on a failure
// (a supervising goroutine): the workload goes on, and the failure is
// logged as an error, since an agent restart or a power cut would find the
// state recorded before.
func (s *Supervisor) saveOrLog(w *wl) {
	if err := s.save(w); err != nil {
		s.unsaved(w, err)
	}
}

func (s *Supervisor) unsaved(w *wl, err error) {
	st := s.status(w)
	s.log.Error("workload record not saved: an agent restart would find its previous state", "workload_id", st.Spec.ID, "state", string(st.State), "pid", st.PID, "err", err)
}

// unrecorded is why Start refuses a workload whose record cannot be saved.
func unrecorded(id string, err error) error {
	return fmt.Errorf("workload: %s: not started: its record cannot be saved, so an agent restart or a power cut would lose it (is the state dir full or read-only?): %w", id, err)
}

// superviseProcess watches a service's or job's process until the workload
// is final, or until the supervisor is closed. p == nil (a service found
// dead by Restore) starts it first, through the same back-off as a crash,
// so a restore without network or cache retries instead of failing.
func (s *Supervisor) superviseProcess(w *wl, p *proc) {
	defer s.wg.Done()
	defer close(w.done)
	spec := w.st.Spec
	pol := spec.Restart.withDefaults()
	if p == nil {
		var ok bool
		if p, ok = s.restart(w, pol, -1, "not running after an agent restart", false); !ok {
			return
		}
		s.events.Started(s.status(w))
	}
	for {
		exited := make(chan bool, 1)
		go func() { exited <- p.waiter.wait() }()
		runStart := s.clk.Now()
		select {
		case <-exited:
		case <-w.stopCh:
			code := s.terminate(w, p, exited)
			s.finish(w, Stopped, code, "")
			return
		case <-w.detachCh:
			p.waiter.stop()
			<-exited
			p.release(0)
			return
		}
		p.release(100 * time.Millisecond)
		code, why := p.code, p.why
		if spec.Lifecycle == Job {
			if code == 0 {
				why = ""
			}
			s.finish(w, Exited, code, why)
			return
		}
		// A service exited on its own.
		if s.clk.Now().Sub(runStart) >= pol.MaxBackoff {
			w.fails = 0
		}
		var ok bool
		if p, ok = s.restart(w, pol, code, why, true); !ok {
			return
		}
	}
}

// restart starts a service again after its back-off (at once when wait is
// false), retrying failed starts the same way, until it runs (p, true) or
// the workload ends: stopped, failed as a crash loop, or detached (nil,
// false).
func (s *Supervisor) restart(w *wl, pol RestartPolicy, code int, why string, wait bool) (*proc, bool) {
	spec := w.st.Spec
	for {
		if wait {
			w.fails++
			if w.fails > pol.MaxRestarts {
				s.finish(w, Failed, code, fmt.Sprintf("crash loop: exited %d times in a row within %v of starting (last: %s); not restarted", w.fails, pol.MaxBackoff, why))
				return nil, false
			}
			d := pol.backoff(w.fails)
			s.setState(w, func(st *Status) { st.State, st.PID, st.ExitCode, st.Err = Backoff, 0, code, why })
			s.saveOrLog(w)
			s.log.Info("workload restarting", "workload_id", spec.ID, "exit_code", code, "backoff_ms", d.Milliseconds(), "streak", w.fails)
			t := s.clk.NewTimer(d)
			select {
			case <-t.C():
			case <-w.stopCh:
				t.Stop()
				s.finish(w, Stopped, code, "")
				return nil, false
			case <-w.detachCh:
				t.Stop()
				return nil, false
			}
		}
		wait = true
		select {
		case <-w.stopCh:
			s.finish(w, Stopped, code, "")
			return nil, false
		case <-w.detachCh:
			return nil, false
		default:
		}
		p, err := s.spawn(w, true)
		if err == nil {
			return p, true
		}
		s.log.Warn("workload start", "workload_id", spec.ID, "err", err)
		code, why = -1, err.Error()
	}
}

// terminate stops a process on request: SIGTERM to its group, SIGKILL
// after the grace period, then SIGKILL to whatever of the group is left.
// A process that dies of our signal counts as a clean stop (code 0).
func (s *Supervisor) terminate(w *wl, p *proc, exited chan bool) int {
	s.setState(w, func(st *Status) { st.State = Stopping })
	// Recorded, so that an agent that dies now finishes the stop when it
	// comes back instead of adopting the process as running.
	s.saveOrLog(w)
	if err := signalGroup(p.pid, syscall.SIGTERM); err != nil {
		s.log.Warn("workload sigterm", "workload_id", w.st.Spec.ID, "pid", p.pid, "err", err)
	}
	t := s.clk.NewTimer(s.grace)
	select {
	case <-exited:
		t.Stop()
	case <-t.C():
		s.log.Info("workload killed after grace", "workload_id", w.st.Spec.ID, "pid", p.pid)
		signalGroup(p.pid, syscall.SIGKILL)
		<-exited
	}
	signalGroup(p.pid, syscall.SIGKILL)
	p.release(100 * time.Millisecond)
	if p.code == 128+int(syscall.SIGTERM) || p.code == 128+int(syscall.SIGKILL) {
		return 0
	}
	return p.code
}

// finish records a final state and reports it.
func (s *Supervisor) finish(w *wl, state State, code int, why string) {
	st := s.setState(w, func(st *Status) { st.State, st.PID, st.ExitCode, st.Err = state, 0, code, why })
	s.saveOrLog(w)
	for _, p := range s.outPaths(st.Spec.ID) {
		os.Remove(p)
	}
	s.log.Info("workload finished", "workload_id", st.Spec.ID, "state", string(state), "exit_code", code, "err", why)
	s.events.Stopped(st)
	s.prune()
	s.GC()
}

// prune forgets the oldest finished workloads beyond finishedKept.
func (s *Supervisor) prune() {
	s.mu.Lock()
	var fin []*wl
	for _, w := range s.ws {
		if w.st.State.Final() {
			fin = append(fin, w)
		}
	}
	if len(fin) <= finishedKept {
		s.mu.Unlock()
		return
	}
	slices.SortFunc(fin, func(a, b *wl) int { return a.st.StartedAt.Compare(b.st.StartedAt) })
	fin = fin[:len(fin)-finishedKept]
	for _, w := range fin {
		delete(s.ws, w.st.Spec.ID)
	}
	s.mu.Unlock()
	for _, w := range fin {
		s.removeRecord(w.st.Spec.ID)
	}
}

// GC removes cached artifacts that no live workload uses. It skips a round
// while a start is fetching.
func (s *Supervisor) GC() {
	if !s.gcMu.TryLock() {
		return
	}
	defer s.gcMu.Unlock()
	var inUse []string
	s.mu.Lock()
	for _, w := range s.ws {
		if !w.st.State.Final() && w.digest != "" {
			inUse = append(inUse, w.digest)
		}
	}
	s.mu.Unlock()
	if err := s.store.GC(inUse); err != nil {
		s.log.Warn("artifact gc", "err", err)
	}
}

// Stop stops a workload: SIGTERM to its process group, SIGKILL after the
// grace period; a function unsubscribes and kills a run in progress. It
// waits until the workload is final (or ctx ends). Stopping a finished
// workload returns its status; an unknown id is ErrNotFound.
func (s *Supervisor) Stop(ctx context.Context, id string) (Status, error) {
	s.mu.Lock()
	w, ok := s.ws[id]
	s.mu.Unlock()
	if !ok {
		return Status{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	w.stop()
	select {
	case <-w.done:
	case <-ctx.Done():
		return s.status(w), fmt.Errorf("workload: stop %s: %w", id, ctx.Err())
	}
	return s.status(w), nil
}

// Get returns one workload's status, finished ones included.
func (s *Supervisor) Get(id string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.ws[id]
	if !ok {
		return Status{}, false
	}
	return w.st, true
}

// List returns every workload's status, finished ones included, by id.
func (s *Supervisor) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.ws))
	for _, w := range s.ws {
		out = append(out, w.st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Spec.ID, b.Spec.ID) })
	return out
}

// Close stops supervising without killing workloads: processes keep
// running (a restarted agent adopts them), functions unsubscribe until
// Restore. Records stay as they are. It waits for the supervising
// goroutines or ctx.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, w := range s.ws {
		w.detach()
	}
	s.mu.Unlock()
	return s.wait(ctx)
}

func (s *Supervisor) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("workload: close: %w", ctx.Err())
	}
}

// StopAll stops every workload (lameduck, uninstall) and waits for them.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.ws))
	for id, w := range s.ws {
		if !w.st.State.Final() {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = s.Stop(ctx, id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
