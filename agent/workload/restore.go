package workload

import (
	"context"
	"errors"
	"fmt"
)

// Restore reads the state dir after an agent restart (or a power cut) and
// takes every recorded workload back: a process still alive (same boot,
// same pid, same start time) is adopted, output pipes and all; a service
// whose process is gone is started again; a job whose process is gone is
// reported exited (its status is unknown) and never run again; a function
// subscribes again; finished workloads are remembered, not run. Ids
// already supervised are left alone, so Restore and Start do not
// duplicate. It returns the status of every workload it restored; its
// error also names the restored workloads whose records could not be
// updated (they run all the same, but their state dir needs attention).
func (s *Supervisor) Restore(ctx context.Context) ([]Status, error) {
	recs, err := s.readRecords()
	errs := []error{err}
	var out []Status
	for _, r := range recs {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return out, errors.Join(append(errs, ErrClosed)...)
		}
		if _, ok := s.ws[r.Spec.ID]; ok {
			s.mu.Unlock()
			continue
		}
		w := newWL(r.Status)
		w.digest, w.path, w.pid = r.Digest, r.Path, r.PIDStart
		s.ws[r.Spec.ID] = w
		s.mu.Unlock()
		st, err := s.restore(ctx, w, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("workload: %s: restored, but its record was not updated: %w", r.Spec.ID, err))
		}
		out = append(out, st)
	}
	s.prune()
	s.GC()
	return out, errors.Join(errs...)
}

// restore takes one recorded workload back. Its error is a record that
// could not be updated; the workload is restored all the same.
func (s *Supervisor) restore(ctx context.Context, w *wl, r record) (Status, error) {
	spec := w.st.Spec
	if r.State.Final() {
		close(w.done)
		return w.st, nil
	}
	if spec.Lifecycle == Function {
		return s.restoreFunction(w)
	}
	if r.State == Stopping {
		// The agent died in the middle of a stop: finish it.
		w.stop()
	}
	if r.BootID != "" && r.BootID == s.boot {
		if p, ok := adoptProcess(r.PID, r.PIDStart, s.outPaths(spec.ID), s.emitters(spec), s.backlog); ok {
			st := s.setState(w, func(st *Status) { st.State = Running })
			err := s.save(w)
			s.log.Info("workload adopted", "workload_id", spec.ID, "pid", p.pid)
			s.logSkipped(spec.ID, p)
			if !s.goSupervise(w, func() { s.superviseProcess(w, p) }) {
				p.waiter.stop()
				p.release(0)
			}
			return st, err
		}
	}
	if r.State == Stopping {
		s.finish(w, Stopped, 0, "")
		close(w.done)
		return s.status(w), nil
	}
	if spec.Lifecycle == Job {
		if r.PID > 0 {
			s.finish(w, Exited, -1, "ended while the agent was not running; exit status unknown")
		} else {
			s.finish(w, Failed, -1, "interrupted by an agent restart before it started; not run again")
		}
		close(w.done)
		return s.status(w), nil
	}
	// A service to start again: from the cached binary when it is still
	// there (no network needed), with back-off retries when it cannot.
	st := s.setState(w, func(st *Status) { st.State, st.PID = Starting, 0 })
	s.goSupervise(w, func() { s.superviseProcess(w, nil) })
	return st, nil
}

// restoreFunction subscribes a warm function again. Its binary is fetched
// on the first trigger if the cache lost it.
func (s *Supervisor) restoreFunction(w *wl) (Status, error) {
	spec := w.st.Spec
	argv, env, err := s.secrets.resolve(spec.Namespace, spec.Argv, spec.Env)
	if err == nil {
		w.argv, w.env = argv, buildEnv(env, spec.Creds)
		err = s.startFunction(w, true)
	}
	if err != nil {
		s.finish(w, Failed, -1, err.Error())
		close(w.done)
		return s.status(w), nil
	}
	st := s.setState(w, func(st *Status) { st.State, st.StartedAt = Warm, s.clk.Now() })
	err = s.save(w)
	if s.goSupervise(w, func() { s.superviseFunction(w) }) {
		s.events.Started(st)
	} else {
		w.fn.shutdown()
	}
	return st, err
}

// logSkipped reports output nobody read in time that was left out.
func (s *Supervisor) logSkipped(id string, p *proc) {
	for i, n := range p.skipped {
		if n > 0 {
			s.log.Warn("workload output written while no agent read it skipped beyond the backlog", "workload_id", id,
				"stream", [2]string{"stdout", "stderr"}[i], "skipped_bytes", n, "backlog_bytes", s.backlog)
		}
	}
}

// goSupervise runs f as w's supervising goroutine unless the supervisor
// is closed (then w is done and false is returned).
func (s *Supervisor) goSupervise(w *wl, f func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(w.done)
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go f()
	return true
}
