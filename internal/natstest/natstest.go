// Package natstest runs real embedded NATS servers with JetStream for tests:
// 127.0.0.1, a random port, a store in t.TempDir, cleaned up with the test.
// NEXFIELD_TEST_NATS_LOG=debug (or trace) turns the server's log on.
package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options returns the options RunServer uses, for tests that need to change
// one thing (a fixed port to restart on, accounts, limits).
func Options(t testing.TB) *server.Options {
	t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  t.TempDir(),
	}
	switch os.Getenv("NEXFIELD_TEST_NATS_LOG") {
	case "debug":
		o.NoLog, o.Debug = false, true
	case "trace":
		o.NoLog, o.Debug, o.Trace = false, true, true
	}
	return o
}

// RunServer starts a JetStream-enabled server and waits until it accepts
// connections. It is shut down when the test ends.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerWithOptions(t, Options(t))
}

// RunServerWithOptions is RunServer with caller-made options.
func RunServerWithOptions(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	if !o.NoLog {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("natstest: server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect dials s and closes the connection when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
