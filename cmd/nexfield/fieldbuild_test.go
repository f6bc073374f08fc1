package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// labOnly are import paths (prefixes, or substrings for those starting with
// "/") that the field build must not link: the embedded NATS server, the Nex
// node stand-in, the demo, the benchmark harnesses, the device emulators and
// the trainer and benchmarks of the sentiment model (the "/inference/train"
// and "/inference/bench" patterns cover the sub-packages inference is being
// split into, whatever their exact names).
var labOnly = []string{
	"github.com/nats-io/nats-server/",
	"github.com/nexfield/nexfield/agent/nodesim",
	"github.com/nexfield/nexfield/demo",
	"github.com/nexfield/nexfield/linkbench",
	"github.com/nexfield/nexfield/chunking/chunkbench",
	"github.com/nexfield/nexfield/internal/footprint",
	"github.com/nexfield/nexfield/internal/natstest",
	"github.com/nexfield/nexfield/radio/rylr/rylrsim",
	"github.com/nexfield/nexfield/radio/sx127x/sx127xsim",
	"github.com/creack/pty",
	"/inference/train",
	"/inference/bench",
}

func isLabOnly(pkg string) bool {
	for _, p := range labOnly {
		if strings.HasPrefix(p, "/") {
			if strings.Contains(pkg, p) {
				return true
			}
		} else if pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, append(args, ".")...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func TestFieldBuildLinksNoLabPackages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	for _, pkg := range goList(t, "-tags", "field") {
		if isLabOnly(pkg) {
			t.Errorf("the field build depends on %s", pkg)
		}
	}
	// The patterns must match what the development build does link, or
	// the check above proves nothing.
	dev := goList(t)
	for _, want := range []string{"github.com/nats-io/nats-server/v2/server", "github.com/nexfield/nexfield/agent/nodesim",
		"github.com/nexfield/nexfield/demo", "github.com/nexfield/nexfield/linkbench", "github.com/nexfield/nexfield/radio/rylr/rylrsim"} {
		if !slices.Contains(dev, want) || !isLabOnly(want) {
			t.Errorf("the development build does not link %s, or the pattern misses it", want)
		}
	}
}

// The field binary: lab commands answer at once with how to get them, the
// version says which build it is, and of radio/sim only the client that
// joins a simulated channel is linked, not the channel itself.
func TestFieldBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the field binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	bin := filepath.Join(t.TempDir(), "nexfield")
	build := exec.Command("go", "build", "-tags", "field", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags field: %v\n%s", err, out)
	}
	run := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", args, err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	if out, _, code := run("version"); code != 0 || !strings.Contains(out, "(field build)") {
		t.Errorf("version: exit %d, %q; want it to say field build", code, out)
	}
	lab := map[string][]string{}
	for name := range labCommands() {
		lab[name] = []string{name, "--help"}
	}
	for name := range labRadioCommands() {
		lab["radio "+name] = []string{"radio", name, "--modules", "2"}
	}
	for name, args := range lab {
		want := name + " is not in the field build; build the development binary with `make build`"
		out, errOut, code := run(args...)
		if code != 1 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	// A field command still works.
	if out, errOut, code := run("classify", "Copy that, over."); code != 0 || !strings.HasPrefix(out, "neutral") {
		t.Errorf("classify: exit %d, %q %q", code, out, errOut)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	const simPkg = "github.com/nexfield/nexfield/radio/sim."
	dialer := false
	for _, s := range syms {
		name, ok := strings.CutPrefix(s.Name, simPkg)
		if !ok {
			continue
		}
		dialer = dialer || name == "DialUDP"
		for _, lab := range []string{"(*Hub)", "ListenHub", "(*Medium)", "NewMedium", "(*Air)", "NewAir"} {
			if strings.HasPrefix(name, lab) {
				t.Errorf("the field binary links %s", s.Name)
			}
		}
	}
	if !dialer {
		t.Errorf("the field binary lacks %sDialUDP, which --driver sim needs", simPkg)
	}
}
