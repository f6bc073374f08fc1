package artifact

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeAll writes data through a fileWriter in pieces of step bytes (the
// first one first bytes, when not 0) and returns what the file holds
// afterwards.
func writeAll(t *testing.T, data []byte, first, step int, keep bool, prep func(*fileWriter)) ([]byte, *fileWriter) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "fw-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := newFileWriter(f, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.release()
	if prep != nil {
		prep(w)
	}
	if keep {
		w.Keep()
	}
	for p := data[w.off:]; len(p) > 0; first = 0 {
		n := min(step, len(p))
		if first > 0 {
			n = min(first, len(p))
		}
		if m, err := w.Write(p[:n]); err != nil || m != n {
			t.Fatalf("write %d bytes: %d, %v", n, m, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return got, w
}

func TestFileWriter(t *testing.T) {
	for _, size := range []int{1, 4095, directStage - 1, directStage, directStage + 1, 3*directStage + 4097, 2 << 20} {
		data := randomBytes(size)
		for _, c := range []struct{ first, step int }{{0, 4096}, {0, 100_003}, {0, 128 << 10}, {1000, 128 << 10}, {8192, 1 << 20}} {
			for _, keep := range []bool{false, true} {
				got, w := writeAll(t, data, c.first, c.step, keep, nil)
				if !bytes.Equal(got, data) {
					t.Errorf("size %d in steps of %d after %d (keep %v, direct %v): the file differs (%d bytes)", size, c.step, c.first, keep, w.Direct(), len(got))
				}
				if size >= directStage && c.step == 4096 && keep {
					t.Logf("size %d: direct I/O %v", size, w.Direct())
				}
			}
		}
	}
}

// A direct write the filesystem refuses (here: at an offset that is not a
// block boundary) hands everything to the page cache from that offset.
func TestFileWriterFallback(t *testing.T) {
	data := randomBytes(3*directStage + 100)
	got, w := writeAll(t, data, 0, 128<<10, true, func(w *fileWriter) {
		if !w.Direct() {
			t.Skip("no direct I/O in", filepath.Dir(w.f.Name()))
		}
		if _, err := w.f.WriteAt(data[:1], 0); err != nil {
			t.Fatal(err)
		}
		w.off = 1
	})
	if !bytes.Equal(got, data) {
		t.Errorf("the file differs after the fallback (%d bytes)", len(got))
	}
	if w.Direct() {
		t.Skip("this filesystem takes direct writes at any offset")
	}
}

func TestPullChunks(t *testing.T) {
	meta := func(chunk uint32) jetstream.ObjectMeta {
		return jetstream.ObjectMeta{Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunk}}
	}
	for _, c := range []struct {
		info   jetstream.ObjectInfo
		window int
		want   int
	}{
		{jetstream.ObjectInfo{ObjectMeta: meta(128 << 10), Size: 64 << 20, Chunks: 512}, defaultPullWindow, 24},
		{jetstream.ObjectInfo{ObjectMeta: meta(128 << 10), Size: 64 << 20, Chunks: 512}, 4 << 20, 32},
		{jetstream.ObjectInfo{ObjectMeta: meta(128 << 10), Size: 64 << 20, Chunks: 512}, 8 << 20, 64},
		{jetstream.ObjectInfo{ObjectMeta: meta(128 << 10), Size: 64 << 20, Chunks: 512}, 100 << 10, 2},
		{jetstream.ObjectInfo{ObjectMeta: meta(1 << 10), Size: 1 << 20, Chunks: 1024}, 4 << 20, maxPullChunks},
		// No recorded chunk size: the full chunks are at most 128 KiB + 1.
		{jetstream.ObjectInfo{Size: 64<<20 + 1, Chunks: 513}, 4 << 20, 31},
		{jetstream.ObjectInfo{Size: 1000, Chunks: 1}, 4 << 20, maxPullChunks},
	} {
		if got := pullChunks(&c.info, c.window); got != c.want {
			t.Errorf("size %d in %d chunks, window %d: %d chunks, want %d", c.info.Size, c.info.Chunks, c.window, got, c.want)
		}
	}
}
