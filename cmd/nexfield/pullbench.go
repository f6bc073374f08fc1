//go:build !field

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/internal/cliconf"
)

type benchPullConfig struct {
	sizeMiB int
	runs    int
	server  string
	creds   string
	bucket  string
	dir     string
	window  int
	serve   string // internal: run as the benchmark's server process
}

func benchPullFlags() (*flag.FlagSet, *benchPullConfig) {
	fs := flag.NewFlagSet("bench pull", flag.ContinueOnError)
	c := &benchPullConfig{}
	fs.IntVar(&c.sizeMiB, "size", 64, "object size in MiB")
	fs.IntVar(&c.runs, "runs", 3, "timed runs of each way (after one untimed warm-up read)")
	fs.StringVar(&c.server, "server", "", "NATS server with JetStream to measure against (default: start one in a child process with a temporary store)")
	fs.StringVar(&c.creds, "creds", "", "NATS .creds file for --server")
	fs.StringVar(&c.bucket, "bucket", "nexfield_bench", "object store bucket to create, use and delete")
	fs.StringVar(&c.dir, "dir", "", "directory for the temporary caches (default: the system temp dir; use the agent's disk to measure it)")
	fs.IntVar(&c.window, "window", 0, "pull window in KiB: how much of the object is requested ahead of the cache writer (default 3072)")
	fs.StringVar(&c.serve, "serve-store", "", "internal: serve JetStream from this store dir until stdin closes")
	return fs, c
}

// runBenchPull measures what a workload start pays for pulling its binary:
// the agent's streamed, verified, fsynced pull into the cache against a bare
// ObjectStore.Get into io.Discard of the same object, alternating, in the
// same run. The server runs in a child process so that the heap figures
// are the puller's own.
func runBenchPull(ctx context.Context, e env, args []string) error {
	fs, c := benchPullFlags()
	fs.SetOutput(e.stderr)
	cliconf.Alias(fs, "s", "server")
	if err := cliconf.Parse(fs, args, cliconf.Options{Section: "bench-pull"}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("bench pull: unexpected arguments %q", fs.Args())}
	}
	if c.serve != "" {
		return serveBenchStore(e, c.serve)
	}
	if c.sizeMiB <= 0 || c.runs <= 0 {
		return usageError{"bench pull: --size and --runs must be positive"}
	}
	tmp, err := os.MkdirTemp(c.dir, "nexfield-bench-pull-")
	if err != nil {
		return fmt.Errorf("bench pull: %w", err)
	}
	defer os.RemoveAll(tmp)

	url, where := c.server, "NATS server "+c.server
	if url == "" {
		var stop func()
		url, stop, err = startBenchServer(ctx, e.self, tmp)
		if err != nil {
			return err
		}
		defer stop()
		where = "child-process NATS server (store in " + tmp + ")"
	}
	opts := []nats.Option{nats.Name("nexfield-bench-pull")}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("bench pull: connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bench pull: %w", err)
	}
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: c.bucket, Description: "nexfield bench pull (temporary)"})
	if err != nil {
		return fmt.Errorf("bench pull: bucket %s: %w", c.bucket, err)
	}
	defer js.DeleteObjectStore(context.WithoutCancel(ctx), c.bucket)
	size := c.sizeMiB << 20
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "bench_latest"}, io.LimitReader(benchPayload(), int64(size))); err != nil {
		return fmt.Errorf("bench pull: upload: %w", err)
	}
	fmt.Fprintf(e.stdout, "object %d MiB, %d runs against a %s; caches in %s\n", c.sizeMiB, c.runs, where, tmp)
	rep, err := artifact.ComparePull(ctx, nc, c.bucket, "bench", tmp, c.runs, &artifact.Opts{PullWindow: c.window << 10})
	if err != nil {
		return fmt.Errorf("bench pull: %w", err)
	}
	pull, get := rep.MBps()
	fmt.Fprintf(e.stdout, "get  (ObjectStore.Get -> io.Discard)        %8.1f MB/s  %6.1f ms  peak heap growth %5.1f MiB (live %5.1f MiB)\n",
		get, ms(rep.Get), mib(rep.GetHeapPeak), mib(rep.GetLivePeak))
	fmt.Fprintf(e.stdout, "pull (cache: stream, SHA-256, fsync, rename) %8.1f MB/s  %6.1f ms  peak heap growth %5.1f MiB (live %5.1f MiB)\n",
		pull, ms(rep.Pull), mib(rep.PullHeapPeak), mib(rep.PullLivePeak))
	fmt.Fprintf(e.stdout, "ratio pull/get throughput %.3f (goal >= 0.9); pull heap growth goal < 16 MiB\n", rep.Ratio)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b uint64) float64       { return float64(b) / (1 << 20) }

// benchPayload is a #! script followed by incompressible bytes, so the
// cache's executable check passes and nothing compresses it.
func benchPayload() io.Reader {
	r := rand.New(rand.NewPCG(1, 2))
	return io.MultiReader(strings.NewReader("#!/bin/sh\nexit 0\n"), readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return len(p), nil
	}))
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// startBenchServer runs "nexfield bench pull --serve-store DIR" and waits
// for the URL it prints.
func startBenchServer(ctx context.Context, self, dir string) (string, func(), error) {
	if self == "" {
		return "", nil, errors.New("bench pull: cannot find my own executable to run the server; pass --server")
	}
	cmd := exec.CommandContext(ctx, self, "bench", "pull", "--serve-store", dir+"/store")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	var out bytes.Buffer
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("bench pull: start server: %w", err)
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "nats://") {
		stop()
		return "", nil, fmt.Errorf("bench pull: server did not start: %q %s", line, out.String())
	}
	return strings.TrimSpace(line), stop, nil
}

// serveBenchStore is the child side of startBenchServer: JetStream on
// 127.0.0.1, a random port, until stdin closes.
func serveBenchStore(e env, dir string) error {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		return fmt.Errorf("bench pull: server: %w", err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		return errors.New("bench pull: server not ready")
	}
	fmt.Fprintln(e.stdout, s.ClientURL())
	io.Copy(io.Discard, e.stdin)
	return nil
}
