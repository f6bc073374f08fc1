package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nexfield/nexfield/internal/atomicfile"
)

// record is what the state dir holds per workload, in <id>.json (0600: it
// carries the workload's NATS credentials).
type record struct {
	Status
	PIDStart  uint64    `json:"pid_start,omitempty"` // /proc start time of PID
	BootID    string    `json:"boot_id,omitempty"`   // boot PID belongs to
	Digest    string    `json:"digest,omitempty"`    // artifact in use
	Path      string    `json:"path,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *Supervisor) recordPath(id string) string { return filepath.Join(s.dir, id+".json") }

func (s *Supervisor) outPaths(id string) [2]string {
	return [2]string{filepath.Join(s.dir, id+".stdout"), filepath.Join(s.dir, id+".stderr")}
}

// writeRecord replaces a record atomically and durably.
func (s *Supervisor) writeRecord(r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("workload: record %s: %w", r.Spec.ID, err)
	}
	if err := atomicfile.WriteFile(s.recordPath(r.Spec.ID), b, 0o600); err != nil {
		return fmt.Errorf("workload: record %s: %w", r.Spec.ID, err)
	}
	return nil
}

func (s *Supervisor) removeRecord(id string) {
	os.Remove(s.recordPath(id))
	for _, p := range s.outPaths(id) {
		os.Remove(p)
	}
}

// readRecords loads every record; one that cannot be read or parsed is
// rebuilt by recoverRecord, loudly, so that its workload is not lost.
func (s *Supervisor) readRecords() ([]record, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("workload: state dir: %w", err)
	}
	var out []record
	for _, e := range ents {
		n := e.Name()
		if atomicfile.IsTemp(n) {
			os.Remove(filepath.Join(s.dir, n))
			continue
		}
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		var r record
		b, err := os.ReadFile(filepath.Join(s.dir, n))
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && r.Spec.ID+".json" != n {
			err = errors.New("the id in it does not match the file name")
		}
		if err != nil {
			var ok bool
			if r, ok = s.recoverRecord(n, b, err); !ok {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}
