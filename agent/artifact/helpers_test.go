package artifact_test

import (
	"bufio"
	"bytes"
	"io"
	"time"

	"context"
	"fmt"
	"github.com/nats-io/nats-server/v2/server"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/internal/natstest"
)

// bins are the test program built once per test binary run, per target.
var bins = map[string]string{}

const (
	native = "native"
	arm64  = "arm64"
	armv6  = "armv6"
	armv7  = "armv7"
	amd64  = "amd64"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(fullDiskHelper())
	}
	if dir := os.Getenv(serveEnv); dir != "" {
		os.Exit(serveHelper(dir))
	}
	dir, err := os.MkdirTemp("", "nexfield-artifact-test")
	if err != nil {
		panic(err)
	}
	for name, env := range map[string][]string{
		native: nil,
		amd64:  {"GOARCH=amd64"},
		arm64:  {"GOARCH=arm64"},
		armv6:  {"GOARCH=arm", "GOARM=6"},
		armv7:  {"GOARCH=arm", "GOARM=7"},
	} {
		out := filepath.Join(dir, "hello-"+name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/hello")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux"), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, b)
			os.Exit(1)
		}
		bins[name] = out
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func readBin(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(bins[name])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// objectStore starts a server and returns a connection and a bucket.
func objectStore(t testing.TB, bucket string) (*nats.Conn, jetstream.ObjectStore) {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	return nc, obs
}

func put(t testing.TB, obs jetstream.ObjectStore, name string, data []byte) *jetstream.ObjectInfo {
	t.Helper()
	info, err := obs.PutBytes(context.Background(), name, data)
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
	return info
}

// serveEnv makes the test binary a NATS server with JetStream in the named
// directory: it prints its URL and serves until stdin closes. Benchmarks
// use it so that the server's heap is not measured as the agent's.
const serveEnv = "NEXFIELD_ARTIFACT_SERVE"

func serveHelper(dir string) int {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Println("error: not ready")
		return 1
	}
	fmt.Println(s.ClientURL())
	io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	return 0
}

// remoteObjectStore runs a server in a child process and returns a
// connection to it and a bucket.
func remoteObjectStore(b *testing.B, bucket string) (*nats.Conn, jetstream.ObjectStore) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+b.TempDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "nats://") {
		b.Fatalf("server child: %q %v", line, err)
	}
	nc, err := nats.Connect(strings.TrimSpace(line))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	obs, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: bucket})
	if err != nil {
		b.Fatal(err)
	}
	return nc, obs
}

// cacheFiles lists what is in a cache dir.
func cacheFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func run(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command(path).CombinedOutput()
	if err != nil {
		t.Fatalf("run %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// patchInterp rewrites the PT_INTERP path of an ELF image in place with a
// same-length path that does not exist.
func patchInterp(t testing.TB, b []byte, from string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(from+"\x00"))
	if i < 0 {
		t.Skipf("no %s in the image", from)
	}
	to := "/nonexistent" + strings.Repeat("x", len(from)-len("/nonexistent"))
	out := bytes.Clone(b)
	copy(out[i:], to)
	return out
}

func jetstreamMeta(name string) jetstream.ObjectMeta { return jetstream.ObjectMeta{Name: name} }
