package workload_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexfield/nexfield/agent/workload"
)

// counter reads what a chatty workload says it has written (0 while the
// file is missing or being rewritten).
func counter(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// lineNumbers returns the numbers of chatty's lines in order; a line cut
// short counts as -1.
func lineNumbers(lines []string, size int) []int {
	var out []int
	for _, l := range lines {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f[1])
		if len(f) != 3 || f[0] != "line" || err != nil || len(l) != size-1 {
			n = -1
		}
		out = append(out, n)
	}
	return out
}

// chattyAway starts a chatty service writing 1 KiB lines, closes the
// supervisor (the agent goes away) once it writes, and returns the line
// numbers delivered so far and the counter file once lines more than
// eight pipes' worth have been written with nobody reading.
func chattyAway(t *testing.T, r *rig, lines int) (seen []int, count string) {
	count = filepath.Join(t.TempDir(), "count")
	r.start(r.spec("chatty", workload.Service, "chatty", count, "1024", "100us"))
	eventually(t, 10*time.Second, "chatty writing", func() bool { return counter(count) > 100 })
	if err := r.sup.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen = lineNumbers(r.ev.lines("chatty", "stdout"), 1024)
	gone, since := counter(count), time.Now()
	eventually(t, 20*time.Second, "writing on with nobody reading", func() bool { return counter(count) > gone+lines })
	t.Logf("%d KiB written in %v with nobody reading", counter(count)-gone, time.Since(since).Round(time.Millisecond))
	return seen, count
}

// TestOutputNeverStalls: a workload that writes without pause keeps
// writing while no agent reads its output (the agent stopped, crashed,
// or waits out systemd's RestartSec), and the next one delivers what was
// written meanwhile, in order and once, from where the last one stopped.
// The output file does not keep on disk what has been delivered.
func TestOutputNeverStalls(t *testing.T) {
	r := newRig(t)
	r.backlog = 64 << 20                 // however long the restore takes on a busy machine, nothing is skipped
	seen, count := chattyAway(t, r, 512) // 512 KiB: eight pipes' worth

	r.sup = r.supervisor()
	if _, err := r.sup.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	back := counter(count)
	eventually(t, 20*time.Second, "lines written while nobody read delivered", func() bool {
		got := lineNumbers(r.ev.lines("chatty", "stdout"), 1024)
		return len(got) > 0 && got[len(got)-1] > back
	})
	got := append(seen, lineNumbers(r.ev.lines("chatty", "stdout"), 1024)...)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("line %d follows line %d: output lost, repeated or cut", got[i], got[i-1])
		}
	}
	out := filepath.Join(r.dir, "workloads", "chatty.stdout")
	var fi syscall.Stat_t
	eventually(t, 20*time.Second, "3 MiB written", func() bool { return syscall.Stat(out, &fi) == nil && fi.Size > 3<<20 })
	if fi.Blocks*512 > 1<<20 {
		t.Errorf("output file holds %d bytes on disk of %d written, want what was delivered released", fi.Blocks*512, fi.Size)
	}
}

// TestOutputBacklog: of what was written while no agent read, the next
// one delivers the newest Opts.OutputBacklog, from a line start, and logs
// what it skipped.
func TestOutputBacklog(t *testing.T) {
	r := newRig(t)
	r.backlog = 64 << 10
	_, count := chattyAway(t, r, 512)
	logs := &syncBuffer{}
	r.logger = slog.New(slog.NewTextHandler(logs, nil))
	r.sup = r.supervisor()
	// The counter trails the output by up to ten lines.
	lo := counter(count) - 64
	if _, err := r.sup.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "output delivered", func() bool { return len(r.ev.lines("chatty", "stdout")) > 0 })
	hi := counter(count) + 10
	got := lineNumbers(r.ev.lines("chatty", "stdout"), 1024)
	if got[0] < lo || got[0] > hi {
		t.Errorf("first line delivered %d, want one of the last 64 written at the restore, %d to %d", got[0], lo, hi)
	}
	if !strings.Contains(logs.String(), "skipped_bytes=") {
		t.Errorf("skipped output not logged:\n%s", logs)
	}
}
