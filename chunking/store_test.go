package chunking

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watchStore records what is durable.
type watchStore struct {
	MemStore
	saves int
}

func (w *watchStore) Save(c Counters) error {
	w.saves++
	return w.MemStore.Save(c)
}

// TestCountersPersistedAhead checks every frame against the durable state
// at the moment it is transmitted: the sender's counter is below its
// reservation, and the receiver has recorded the counter of any message it
// answers.
func TestCountersPersistedAhead(t *testing.T) {
	sa, sb := &watchStore{}, &watchStore{}
	n := newVnet(t, 0.2, 4)
	a, b := n.add(1, &EngineOpts{Store: sa, CounterBlock: 2}), n.add(2, &EngineOpts{Store: sb, CounterBlock: 2})
	n.trace = func(from Addr, f []byte) {
		h, _, err := parseHeader(f, 8)
		if err != nil {
			t.Fatal(err)
		}
		if from == 1 && theirs(h) {
			c, _ := sa.Load()
			if used := a.e.peers[2].txNext - 1; used >= c.Tx[2] {
				t.Fatalf("counter %d sealed with only %d reserved", used, c.Tx[2])
			}
		}
		if from == 2 && !theirs(h) {
			c, _ := sb.Load()
			if m := b.e.peers[1].in; m != nil && m.counter > c.Rx[1] {
				t.Fatalf("answered message %d with only %d recorded", m.counter, c.Rx[1])
			}
		}
	}
	for i := range 7 {
		exchange(t, n, a, b, payload(700*i, uint64(i)))
	}
	if sa.saves < 3 || sa.saves > 5 {
		t.Errorf("sender wrote its counters %d times for 7 messages in blocks of 2", sa.saves)
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	fs := FileStore{Path: filepath.Join(dir, "c.json")}
	if c, err := fs.Load(); err != nil || len(c.Tx) != 0 {
		t.Fatalf("missing file: got %+v, %v", c, err)
	}
	want := Counters{Tx: map[Addr]uint32{2: 33}, Rx: map[Addr]uint32{2: 7, 9: 1 << 31}}
	if err := fs.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load()
	if err != nil || got.Tx[2] != 33 || got.Rx[9] != 1<<31 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %v, want only c.json", ents)
	}
	os.WriteFile(fs.Path, []byte("{not json"), 0o600)
	if _, err := NewEngine(1, testPSK, &EngineOpts{Store: fs}); err == nil {
		t.Fatal("corrupt counter file accepted")
	}
	// A store that cannot write stops the send, it never goes out unreserved.
	e, _ := NewEngine(1, testPSK, &EngineOpts{Store: failStore{}})
	now := time.Unix(1e9, 0)
	e.Send(now, 2, []byte("x"), false)
	ev, ok := e.Event()
	if !ok || ev.Kind != EventFailed || e.Ready(now) {
		t.Fatalf("got %+v, want a failure and nothing to send", ev)
	}
}

type failStore struct{}

func (failStore) Load() (Counters, error) { return Counters{}, nil }
func (failStore) Save(Counters) error     { return errors.New("disk full") }
