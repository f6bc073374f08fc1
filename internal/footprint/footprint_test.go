package footprint

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadMemorySelf(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.HWM < m.RSS || m.Anon == 0 || m.File == 0 || m.Anon+m.File > m.RSS+(64<<10) {
		t.Errorf("implausible figures for a running test: %+v", m)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus(strings.NewReader("Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nRssAnon:\t 512 kB\nRssFile:\t 512 kB\n"), "status")
	if err != nil {
		t.Fatal(err)
	}
	if m != (Memory{RSS: 1 << 20, HWM: 2 << 20, Anon: 512 << 10, File: 512 << 10}) {
		t.Errorf("got %+v", m)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t1 MB\nVmHWM:\t1 kB\nRssAnon:\t1 kB\nRssFile:\t1 kB\n"} {
		if _, err := parseStatus(strings.NewReader(bad), "status"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMeasureOptsRequired(t *testing.T) {
	if _, err := Measure(context.Background(), &Opts{}); err == nil || !strings.Contains(err.Error(), "Bin") {
		t.Errorf("got %v, want an error naming Opts.Bin", err)
	}
}

// The whole measurement against the field binary, small: a few services,
// one message.
func TestMeasureFieldBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the field binary and runs the agent and the peer")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	bin := filepath.Join(t.TempDir(), "nexfield")
	build := exec.Command("go", "build", "-tags", "field", "-o", bin, "../../cmd/nexfield")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Measure(ctx, &Opts{Bin: bin, Services: 3, Messages: []string{"Copy that, over."}, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]Memory{"agent idle": rep.AgentIdle, "agent with services": rep.AgentServices, "peer": rep.Peer} {
		// A Go binary of this size is never resident in less than 4 MiB.
		if m.RSS < 4<<20 || m.HWM < m.RSS {
			t.Errorf("%s: implausible %+v", name, m)
		}
	}
	if rep.Services != 3 || rep.Messages != 1 {
		t.Errorf("report counts %d services, %d messages; want 3, 1", rep.Services, rep.Messages)
	}
}
