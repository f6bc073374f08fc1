package chunking

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"sync"

	"github.com/nexfield/nexfield/internal/atomicfile"
)

// Counters is the link state that must survive a power cut: per peer, the
// next message counter this node has not yet reserved for sending (Tx), and
// the highest counter accepted from the peer (Rx).
type Counters struct {
	Tx map[Addr]uint32 `json:"tx"`
	Rx map[Addr]uint32 `json:"rx"`
}

func (c Counters) clone() Counters {
	return Counters{Tx: maps.Clone(c.Tx), Rx: maps.Clone(c.Rx)}
}

// CounterStore persists Counters. Save must not return before the state is
// durable: the engine reserves send counters and records received ones
// ahead of use, so a power cut never makes it seal two frames with one
// nonce nor accept a message twice.
type CounterStore interface {
	Load() (Counters, error)
	Save(Counters) error
}

// MemStore keeps Counters in memory: for tests and simulations only, since
// a restarted process would reuse nonces.
type MemStore struct {
	mu sync.Mutex
	c  Counters
}

func (m *MemStore) Load() (Counters, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c.clone(), nil
}

func (m *MemStore) Save(c Counters) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c = c.clone()
	return nil
}

// FileStore keeps Counters in a JSON file, replaced atomically (temporary
// file, fsync, rename, fsync of the directory) on every Save.
type FileStore struct {
	Path string
}

func (f FileStore) Load() (Counters, error) {
	var c Counters
	b, err := os.ReadFile(f.Path)
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("chunking: counters: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("chunking: counters %s: %w", f.Path, err)
	}
	return c, nil
}

func (f FileStore) Save(c Counters) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(f.Path, b, 0o600); err != nil {
		return fmt.Errorf("chunking: counters: %w", err)
	}
	return nil
}
