package artifact_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
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

// TestFetchChunkLargerThanRecorded: an object whose metadata records
// smaller chunks than it has is refused at the first chunk, before the
// window sized from that metadata can fill memory, and nothing is cached.
func TestFetchChunkLargerThanRecorded(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "lie"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "bin_latest", Opts: &jetstream.ObjectMetaOptions{ChunkSize: 64 << 10}},
		bytes.NewReader(benchObject(1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the metadata as a malformed writer would have left it.
	info.Opts.ChunkSize = 1000
	m := nats.NewMsg("$O.lie.M." + base64.URLEncoding.EncodeToString([]byte("bin_latest")))
	m.Header.Set("Nats-Rollup", "sub")
	if m.Data, err = json.Marshal(info); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	s, dir := newStore(t, nil)
	_, err = s.Fetch(ctx, nc, "nats://lie/bin", "")
	if !errors.Is(err, artifact.ErrDigestMismatch) || !strings.Contains(err.Error(), "larger than the object's 1000-byte chunks") {
		t.Fatalf("fetch: %v, want a refusal naming the chunk size", err)
	}
	if left := cacheFiles(t, dir); len(left) != 0 {
		t.Errorf("files left in the cache: %v", left)
	}
}
