package agent

import (
	"sync"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// logQueueBytes bounds the workload output waiting to go out: at a debug
// logger's 10 kB/s, the last 100 s of an outage.
const logQueueBytes = 1 << 20

// logQueue carries workload output to NATS on its own goroutine, so that
// nothing the supervisor's readers do waits for the network. While the
// bootstrap connection is down (or a publish waits on a full socket),
// lines wait here rather than in nats.go's reconnect buffer, where they
// would crowd out the events that matter and come back as an unbounded
// burst; beyond logQueueBytes the oldest are dropped, counted per
// workload, and reported when the connection is back.
type logQueue struct {
	mu      sync.Mutex
	q       []queuedLine // q[head:] waits, oldest first
	head    int
	bytes   int
	dropped map[string]int64 // lines per workload since the last report
	total   map[string]int64 // lines per workload since the agent started
	wake    chan struct{}
}

type queuedLine struct {
	subject, workloadID string
	data                []byte
}

func newLogQueue() *logQueue {
	return &logQueue{dropped: map[string]int64{}, total: map[string]int64{}, wake: make(chan struct{}, 1)}
}

func (l *logQueue) push(namespace, workloadID, stream string, data []byte) {
	l.mu.Lock()
	l.q = append(l.q, queuedLine{subject: nexapi.LogSubject(namespace, workloadID, stream), workloadID: workloadID, data: data})
	l.bytes += len(data)
	for l.bytes > logQueueBytes && l.head < len(l.q) {
		old := l.q[l.head]
		l.q[l.head] = queuedLine{}
		l.head++
		l.bytes -= len(old.data)
		l.dropped[old.workloadID]++
		l.total[old.workloadID]++
	}
	if l.head > len(l.q)/2 {
		l.q = append(l.q[:0], l.q[l.head:]...)
		l.head = 0
	}
	l.mu.Unlock()
	l.kick()
}

func (l *logQueue) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *logQueue) pop() (queuedLine, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head == len(l.q) {
		return queuedLine{}, false
	}
	m := l.q[l.head]
	l.q[l.head] = queuedLine{}
	l.head++
	l.bytes -= len(m.data)
	return m, true
}

// takeDropped returns the drops since the last call.
func (l *logQueue) takeDropped() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.dropped) == 0 {
		return nil
	}
	d := l.dropped
	l.dropped = map[string]int64{}
	return d
}

// droppedTotal is how many lines of a workload were dropped since the
// agent started.
func (l *logQueue) droppedTotal(workloadID string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total[workloadID]
}

// runLogs publishes queued output while the bootstrap connection is up,
// until quit; then it sends what it can and returns.
func (a *Agent) runLogs(quit <-chan struct{}) {
	for {
		stop := false
		select {
		case <-quit:
			stop = true
		case <-a.logs.wake:
		}
		for a.boot.IsConnected() {
			m, ok := a.logs.pop()
			if !ok {
				break
			}
			if err := a.boot.Publish(m.subject, m.data); err != nil {
				a.log.Debug("log publish", "workload_id", m.workloadID, "err", err)
			}
		}
		if a.boot.IsConnected() {
			for id, n := range a.logs.takeDropped() {
				a.log.Warn("workload output dropped while NATS was unreachable", "workload_id", id, "lines", n)
			}
		}
		if stop {
			return
		}
	}
}
