package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// Reply headers of a function run.
const (
	HeaderWorkloadID = "workload_id"
	HeaderNamespace  = "namespace"
	HeaderError      = "error"
)

// function is a warm function: a subscription on the trigger subject made
// with the workload's own credentials. Messages are run one at a time (the
// subscription delivers them in order), which bounds what a small board
// spends on a burst of triggers.
type function struct {
	nc  *nats.Conn
	sub *nats.Subscription

	ctx    context.Context // cancelled on stop: kills a run in progress
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// startFunction connects with the workload's credentials and subscribes
// to its trigger. restoring: the network may not be up yet (an agent that
// starts at boot): the connection is retried in the background and the
// subscription is sent when it succeeds.
func (s *Supervisor) startFunction(w *wl, restoring bool) error {
	spec := w.st.Spec
	opts := []nats.Option{nats.MaxReconnects(-1)}
	if restoring {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	nc, err := dial(spec.Creds, "nexfield-function-"+spec.ID, opts...)
	if err != nil {
		return fmt.Errorf("workload: %s: connect for trigger %s: %w", spec.ID, spec.TriggerSubject, err)
	}
	fn := &function{nc: nc}
	fn.ctx, fn.cancel = context.WithCancel(context.Background())
	fn.sub, err = nc.Subscribe(spec.TriggerSubject, func(m *nats.Msg) { s.trigger(w, fn, m) })
	if err == nil && nc.IsConnected() {
		// Warm means the server has the interest: a trigger sent after
		// Start returns is delivered.
		err = nc.Flush()
	}
	if err == nil {
		err = nc.LastError()
	}
	if err != nil {
		fn.cancel()
		nc.Close()
		return fmt.Errorf("workload: %s: subscribe to trigger %s: %w", spec.ID, spec.TriggerSubject, err)
	}
	w.fn = fn
	return nil
}

// shutdown unsubscribes, kills a run in progress and waits for it.
func (fn *function) shutdown() {
	fn.mu.Lock()
	fn.closed = true
	fn.mu.Unlock()
	fn.sub.Unsubscribe()
	// The round trip makes the server drop the interest before Stop
	// returns: a trigger sent afterwards finds no responders instead of
	// a closing connection.
	fn.nc.FlushTimeout(2 * time.Second)
	fn.cancel()
	fn.running.Wait()
	fn.nc.Close()
}

func (s *Supervisor) superviseFunction(w *wl) {
	defer s.wg.Done()
	defer close(w.done)
	select {
	case <-w.stopCh:
		s.setState(w, func(st *Status) { st.State = Stopping })
		w.fn.shutdown()
		s.finish(w, Stopped, 0, "")
	case <-w.detachCh:
		w.fn.shutdown()
	}
}

// trigger runs the function once for m: payload on stdin, stdout as the
// reply, stderr to the logs, killed (with its group) at the timeout.
func (s *Supervisor) trigger(w *wl, fn *function, m *nats.Msg) {
	fn.mu.Lock()
	if fn.closed {
		fn.mu.Unlock()
		return
	}
	fn.running.Add(1)
	fn.mu.Unlock()
	defer fn.running.Done()

	s.mu.Lock()
	spec, path, argv, env := w.st.Spec, w.path, w.argv, w.env
	s.mu.Unlock()
	timeout := spec.TriggerTimeout
	if timeout <= 0 {
		timeout = DefaultTriggerTimeout
	}
	ctx, cancel := context.WithTimeout(fn.ctx, timeout)
	defer cancel()
	if _, err := os.Stat(path); err != nil {
		if err := s.fetch(ctx, w); err != nil {
			s.countTrigger(w, 0, 0, true)
			s.reply(fn, m, spec, nil, err.Error())
			return
		}
		path = w.path
	}

	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Env, cmd.Dir = env, spec.WorkDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Stdin = bytes.NewReader(m.Data)
	// Leave room for the reply's headers within the server's max payload.
	out := &capped{max: max(int(fn.nc.MaxPayload())-4096, 0)}
	errw := &lineWriter{emit: s.emitters(spec)[1]}
	cmd.Stdout, cmd.Stderr = out, errw
	began := time.Now()
	err := cmd.Run()
	took := time.Since(began)
	errw.flush()
	msg := ""
	switch {
	case err == nil && out.over:
		msg = fmt.Sprintf("output larger than the maximum payload (%d bytes)", out.max)
	case err == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg = fmt.Sprintf("timed out after %v", timeout)
	case fn.ctx.Err() != nil:
		msg = "function stopped"
	default:
		msg = err.Error()
		if last := errw.last; len(last) > 0 {
			msg += ": " + string(last)
		}
	}
	var cpu time.Duration
	if ps := cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	s.countTrigger(w, took, cpu, msg != "")
	s.log.Debug("function run", "workload_id", spec.ID, "subject", m.Subject, "err", msg)
	s.reply(fn, m, spec, out.Bytes(), msg)
}

func (s *Supervisor) countTrigger(w *wl, took, cpu time.Duration, failed bool) {
	s.setState(w, func(st *Status) {
		st.Triggers++
		st.TriggerTime += took
		st.TriggerCPU += cpu
		if failed {
			st.TriggerErrors++
		}
	})
}

func (s *Supervisor) reply(fn *function, m *nats.Msg, spec Spec, body []byte, errMsg string) {
	if m.Reply == "" {
		return
	}
	h := nats.Header{HeaderWorkloadID: {spec.ID}, HeaderNamespace: {spec.Namespace}}
	if errMsg != "" {
		h[HeaderError] = []string{errMsg}
	}
	if err := fn.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Data: body, Header: h}); err != nil {
		s.log.Warn("function reply", "workload_id", spec.ID, "err", err)
	}
}

// capped keeps up to max bytes and notes an overflow.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// lineWriter emits complete lines (and remembers the last one, for the
// error header).
type lineWriter struct {
	emit func([]byte)
	buf  []byte
	last []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < lineMax {
			break
		}
		if i < 0 {
			i = lineMax
		}
		line := bytes.Clone(l.buf[:i])
		l.buf = l.buf[min(i+1, len(l.buf)):]
		l.last = line
		l.emit(line)
	}
	return len(p), nil
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.last = bytes.Clone(l.buf)
		l.emit(l.last)
		l.buf = nil
	}
}
