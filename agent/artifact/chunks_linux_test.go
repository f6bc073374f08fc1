package artifact

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/internal/natstest"
)

// TestPullEndsWhenConsumerCannotReturn: after a reconnect the ordered
// consumer re-creates itself, retrying forever without looking at the
// context it was given; a server back without JetStream must still end the
// pull at the caller's deadline.
func TestPullEndsWhenConsumerCannotReturn(t *testing.T) {
	o := natstest.Options(t)
	srv := natstest.RunServerWithOptions(t, o)
	nc := natstest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.CreateObjectStore(t.Context(), jetstream.ObjectStoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: "o"}, bytes.NewReader(make([]byte, 4<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	rc, err := openChunks(ctx, js, "b", info, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := rc.(*chunkReader)
	defer r.Close()
	if err := r.next(); err != nil {
		t.Fatal(err)
	}
	r.cur = nil

	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	again := *o
	again.Port, again.JetStream, again.StoreDir = port, false, ""
	natstest.RunServerWithOptions(t, &again)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for {
			if err := r.next(); err != nil {
				done <- err
				return
			}
			r.cur = nil
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("pull ended with %v, want the caller's deadline", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("pull still running %v after a 2 s deadline", time.Since(start))
	}
}

// TestWritevShortThenRefused: the kernel writes part of a batch and then
// refuses the rest (an unaligned offset gives EINVAL). writevAt reports
// exactly what was written and leaves the caller's buffers as they were, so
// the caller's fallback resumes at the right byte.
func TestWritevShortThenRefused(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "wv-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bufs := [][]byte{bytes.Repeat([]byte{1}, 8192), bytes.Repeat([]byte{2}, 8192), bytes.Repeat([]byte{3}, 4096)}
	calls := 0
	short := func(fd int, iovs [][]byte, off int64) (int, error) {
		calls++
		if calls > 1 {
			return 0, syscall.EINVAL
		}
		// The first buffer and 1000 bytes of the second.
		return syscall.Pwrite(fd, append(append([]byte(nil), iovs[0]...), iovs[1][:1000]...), off)
	}
	n, err := writevWith(short, f, bufs, 0)
	if n != 8192+1000 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("wrote %d, %v; want 9192 and EINVAL", n, err)
	}
	if len(bufs[0]) != 8192 || len(bufs[1]) != 8192 || bufs[1][0] != 2 || len(bufs[2]) != 4096 {
		t.Errorf("caller's buffers changed: lengths %d %d %d", len(bufs[0]), len(bufs[1]), len(bufs[2]))
	}
}
