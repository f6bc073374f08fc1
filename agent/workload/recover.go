package workload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A record is replaced by rename after an fsync, so a power cut leaves the
// old or the new one. A storage that lies about its flushes (SD cards do),
// a full disk or a hand edit can still leave one cut short, empty or
// garbled; the workload it describes may be running. recoverRecord makes
// the best record it can from what is left and from the process itself,
// so that nothing keeps running unlisted, and says so at error level.

// fallbackNamespace holds a workload whose namespace was lost with its
// record: `nex workload ls` and `stop` (namespace system by default) see it.
const fallbackNamespace = "system"

// recoverRecord rebuilds the record of file name (an <id>.json that did not
// parse: b is what could be read, cause why it failed). ok is false when
// the name is not a workload id.
func (s *Supervisor) recoverRecord(name string, b []byte, cause error) (rec record, ok bool) {
	path := filepath.Join(s.dir, name)
	id := strings.TrimSuffix(name, ".json")
	if !idRE.MatchString(id) {
		s.log.Error("workload record unreadable and not named after a workload id; ignored", "file", path, "err", cause)
		return record{}, false
	}
	// Keep what was there for a post-mortem; the recovered record replaces it.
	aside := path + ".corrupt"
	if err := os.Rename(path, aside); err != nil {
		aside = ""
	}
	_ = json.Unmarshal(closeTruncatedJSON(b), &rec)
	rec.Spec.ID = id
	var lost []string
	if rec.Spec.Namespace == "" {
		rec.Spec.Namespace = fallbackNamespace
		lost = append(lost, "namespace (listed under "+fallbackNamespace+")")
	}
	known := rec.Spec.validate() == nil
	if !known {
		lost = append(lost, "what to run it from (uri, arguments, credentials)")
	}
	outs := s.outPaths(id)
	_, outErr := os.Lstat(outs[0])
	hadOutput := outErr == nil // removed when a workload ends: it had not
	cannotRun := "its record was unreadable and what is left cannot run it; deploy it again"
	var what string
	pid, start, live := outputHolder(outs)
	switch {
	case live:
		// The leader of the group writing to the workload's output is the
		// workload, whatever the record said.
		rec.State, rec.PID, rec.PIDStart, rec.BootID, rec.ExitCode = Running, pid, start, s.boot, 0
		if rec.StartedAt.IsZero() {
			rec.StartedAt = startTime(start)
		}
		if rec.Spec.Lifecycle != Service && rec.Spec.Lifecycle != Job {
			rec.Spec.Lifecycle = Job
			lost = append(lost, "lifecycle (treated as a job: not started again when it exits)")
		}
		what = fmt.Sprintf("adopted its running process %d", pid)
		if len(lost) > 0 {
			rec.Err = "adopted after its record was unreadable; lost: " + strings.Join(lost, ", ") + "; stop it and deploy it again"
		}
	case rec.State.Final():
		what = "it had ended: remembered as " + string(rec.State)
	case rec.State != "" && known:
		what = "its process is gone: restored from its last state"
	case hadOutput && known && rec.Spec.Lifecycle == Service:
		rec.State, rec.PID = Running, 0
		what = "its process is gone: started again"
	case hadOutput && rec.Spec.Lifecycle == Job:
		rec.State, rec.ExitCode, rec.Err = Exited, -1, "ended while its record was unreadable; exit status unknown"
		what = "its process is gone: recorded as exited"
	case rec.Spec.Lifecycle == Function && known:
		// A function has no process and no output to tell whether it was
		// warm or stopped.
		rec.State, rec.ExitCode = Failed, -1
		rec.Err = "its state was lost with its record; deploy it again if it should be warm"
		what = "state unknown: listed as failed"
	case rec.State != "" || hadOutput || rec.Spec.Lifecycle == Function:
		rec.State, rec.ExitCode, rec.Err = Failed, -1, cannotRun
		what = "nothing to run it from: listed as failed"
	default:
		rec.State, rec.ExitCode = Stopped, -1
		what = "no process and no output: it had ended, remembered as stopped"
	}
	attrs := []any{"workload_id", id, "file", path, "err", cause, "outcome", what}
	if aside != "" {
		attrs = append(attrs, "kept_as", aside)
	}
	if len(lost) > 0 {
		attrs = append(attrs, "lost", strings.Join(lost, "; "), "todo",
			"check it with nex workload ls --show-metadata; stop it and deploy it again to restore its record")
	}
	s.log.Error("workload record unreadable; recovered", attrs...)
	if err := s.writeRecord(rec); err != nil {
		s.log.Error("recovered workload record not written", "workload_id", id, "err", err)
	}
	return rec, true
}

// closeTruncatedJSON returns the longest prefix of b that ends with a
// complete value, with the objects and arrays still open closed, so that a
// record cut short still yields every field before the cut. A number at
// the very end may itself be cut ("pid": 12 of 1234) and is left out; a
// complete first value followed by anything is returned alone.
func closeTruncatedJSON(b []byte) []byte {
	type level struct{ obj, wantKey bool }
	var stack []level
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	cut, closers := 0, ""
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		end := int(dec.InputOffset())
		complete := false
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, level{obj: true, wantKey: true})
			case '[':
				stack = append(stack, level{})
			default:
				stack = stack[:len(stack)-1]
				complete = true
			}
		case json.Number:
			complete = end < len(b)
		case string:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
				stack[n-1].wantKey = false // a key: its value is still to come
				continue
			}
			complete = true
		default:
			complete = true
		}
		if !complete {
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
		cut, closers = end, ""
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].obj {
				closers += "}"
			} else {
				closers += "]"
			}
		}
		if len(stack) == 0 {
			break
		}
	}
	return append(append([]byte(nil), b[:cut]...), closers...)
}
