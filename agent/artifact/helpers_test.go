package artifact_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
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

// armAttrELF builds a minimal static 32-bit ARM executable (no program
// headers) whose .ARM.attributes section says Tag_CPU_arch = cpuArch, as a
// C toolchain writes it (10 = ARMv7, 6 = ARMv6).
func armAttrELF(cpuArch byte) []byte {
	le := binary.LittleEndian
	var attrs bytes.Buffer
	attrs.WriteByte(5) // Tag_CPU_name
	attrs.WriteString("test\x00")
	attrs.Write([]byte{6, cpuArch}) // Tag_CPU_arch
	attrs.Write([]byte{8, 1})       // Tag_ARM_ISA_use
	var file bytes.Buffer
	file.WriteByte(1) // Tag_File
	binary.Write(&file, le, uint32(5+attrs.Len()))
	file.Write(attrs.Bytes())
	var sec bytes.Buffer
	sec.WriteByte('A')
	binary.Write(&sec, le, uint32(4+len("aeabi\x00")+file.Len()))
	sec.WriteString("aeabi\x00")
	sec.Write(file.Bytes())
	shstr := []byte("\x00.ARM.attributes\x00.shstrtab\x00")

	const ehsize, shentsize = 52, 40
	attrOff := uint32(ehsize)
	strOff := attrOff + uint32(sec.Len())
	shOff := (strOff + uint32(len(shstr)) + 3) &^ 3
	var out bytes.Buffer
	out.Write([]byte{0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	for _, v := range []any{uint16(2), uint16(40), uint32(1), uint32(0x10000), uint32(0), shOff,
		uint32(0x05000400), uint16(ehsize), uint16(32), uint16(0), uint16(shentsize), uint16(3), uint16(2)} {
		binary.Write(&out, le, v)
	}
	out.Write(sec.Bytes())
	out.Write(shstr)
	for out.Len() < int(shOff) {
		out.WriteByte(0)
	}
	sh := func(name, typ, off, size uint32) {
		for _, v := range []uint32{name, typ, 0, 0, off, size, 0, 0, 1, 0} {
			binary.Write(&out, le, v)
		}
	}
	sh(0, 0, 0, 0)
	sh(1, 0x70000003, attrOff, uint32(sec.Len())) // SHT_ARM_ATTRIBUTES
	sh(17, 3, strOff, uint32(len(shstr)))         // SHT_STRTAB
	return out.Bytes()
}
