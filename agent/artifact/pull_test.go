package artifact_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/agent/artifact"
	"github.com/nexfield/nexfield/internal/natstest"
)

// Pulls of a multi-window object, with chunk sizes that do not divide the
// object or the disk's blocks, arrive whole, and the client never drops a
// chunk for want of room (nats.go reports that as a slow consumer).
func TestFetchWindows(t *testing.T) {
	var mu sync.Mutex
	var async []error
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		async = append(async, err)
		mu.Unlock()
	}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "win"})
	if err != nil {
		t.Fatal(err)
	}
	data := benchObject(6<<20 + 12345)
	for _, chunk := range []uint32{0, 100_000} {
		name := fmt.Sprintf("c%d", chunk)
		meta := jetstream.ObjectMeta{Name: name + "_latest"}
		if chunk > 0 {
			meta.Opts = &jetstream.ObjectMetaOptions{ChunkSize: chunk}
		}
		info, err := obs.Put(ctx, meta, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, window := range []int{1, 300 << 10, 1 << 20, 0} {
			s, _ := newStore(t, &artifact.Opts{PullWindow: window})
			a, err := s.Fetch(ctx, nc, "nats://win/"+name, info.Digest)
			if err != nil {
				t.Fatalf("chunk %d, window %d: %v", chunk, window, err)
			}
			got, err := os.ReadFile(a.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("chunk %d, window %d: the cached file differs", chunk, window)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(async) > 0 {
		t.Errorf("asynchronous errors during the pulls: %v", async)
	}
}
