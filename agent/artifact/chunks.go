package artifact

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// defaultPullWindow is how much of an object is requested ahead of the
// cache writer. The stock ObjectStore.Get feeds a push consumer whose
// client-side buffer holds up to 64 MiB, so a fast server and a slow SD
// card put most of an object in the heap; a pull consumer asks for a
// window at a time. The window covers the writer's stalls (an SD card
// pauses for tens of milliseconds now and then) and the round trip of the
// next request; a pull holds about twice it in the heap.
const defaultPullWindow = 3 << 20

// maxPullChunks caps the chunks in flight whatever the object's metadata
// says about their size.
const maxPullChunks = 64

// pullIdle ends a pull that receives nothing for this long (a server or
// link that went away), even when the caller's context has no deadline.
const pullIdle = 30 * time.Second

// chunkReader reads an object's chunks in order through a pull-based
// ordered consumer, with about a window of them in flight. It stops with a
// truncation error when the stream has no more chunks before Size bytes
// arrived (a chunk was lost), instead of waiting forever.
type chunkReader struct {
	ctx   context.Context
	it    jetstream.MessagesContext
	cur   []byte
	got   uint64
	size  uint64
	chunk uint64 // largest chunk the object's metadata allows; 0: not recorded
	last  bool
}

func openChunks(ctx context.Context, js jetstream.JetStream, bucket string, info *jetstream.ObjectInfo, window int) (io.ReadCloser, error) {
	if info.Size == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	cons, err := js.OrderedConsumer(ctx, "OBJ_"+bucket, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$O." + bucket + ".C." + info.NUID},
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullChunks(info, window)))
	if err != nil {
		return nil, err
	}
	r := &chunkReader{ctx: ctx, it: it, size: info.Size}
	if info.Opts != nil && info.Opts.ChunkSize > 0 {
		// Only a recorded size is a limit: a writer may cut chunks of
		// varying size, and the average says nothing about the largest.
		r.chunk = uint64(info.Opts.ChunkSize)
	}
	return r, nil
}

// pullChunks is the number of chunks of info that make up window bytes,
// 2 to maxPullChunks: the pull consumer's message limit.
//
// It is a message count and not a byte limit because of how nats.go keeps
// a pull consumer fed: it asks for more once half of what it asked for has
// been taken. A byte limit (PullMaxMessagesWithBytesLimit) ends each
// request short of its message count, and the client learns how many
// messages it will not get only from a status message behind the last
// one, so it asks again only after the whole window was taken: the network
// idles while the writer catches up, and the writer idles during the next
// round trip. Asking earlier does not help either: with a byte limit every
// request also ends with a "batch completed" status, the statuses take room
// in the message channel (sized to the message limit), and nats.go drops
// chunks. With a count alone the server sends no statuses, the next
// request goes out when half the window is taken, and the channel never
// holds more than the limit.
//
// The chunk size is the object's max_chunk_size (the Go client and the
// nats CLI record it), or else the size of its full chunks, all but the
// last. A malformed object whose chunks are bigger than that still has at
// most maxPullChunks chunks in flight, each at most the server's
// max_payload, and the pull stops at the first such chunk.
func pullChunks(info *jetstream.ObjectInfo, window int) int {
	return int(min(max(uint64(window)/max(chunkSize(info), 1), 2), maxPullChunks))
}

// chunkSize is the size of an object's full chunks as its metadata says.
func chunkSize(info *jetstream.ObjectInfo) uint64 {
	switch {
	case info.Opts != nil && info.Opts.ChunkSize > 0:
		return uint64(info.Opts.ChunkSize)
	case info.Chunks > 1:
		return (info.Size + uint64(info.Chunks) - 2) / uint64(info.Chunks-1)
	}
	return info.Size
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// next makes r.cur the next chunk; io.EOF after the last.
func (r *chunkReader) next() error {
	for len(r.cur) == 0 {
		if r.got >= r.size {
			return io.EOF
		}
		if r.last {
			return fmt.Errorf("%w: truncated: the store has %d of %d bytes", ErrDigestMismatch, r.got, r.size)
		}
		ctx, cancel := context.WithTimeout(r.ctx, pullIdle)
		// While the ordered consumer re-creates itself after a reconnect,
		// Next retries without looking at its context; only Stop ends that
		// (a server back without JetStream would hold the pull forever).
		stop := context.AfterFunc(ctx, r.it.Stop)
		m, err := r.it.Next(jetstream.NextContext(ctx))
		stop()
		idle := ctx.Err()
		cancel()
		if err != nil {
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			if idle != nil {
				return fmt.Errorf("artifact: pull stalled: no chunk for %v after %d of %d bytes", pullIdle, r.got, r.size)
			}
			return err
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			r.last = true
		}
		r.cur = m.Data()
		if r.chunk > 0 && uint64(len(r.cur)) > r.chunk {
			return fmt.Errorf("%w: a chunk of %d bytes, larger than the object's %d-byte chunks", ErrDigestMismatch, len(r.cur), r.chunk)
		}
		r.got += uint64(len(r.cur))
		if r.got > r.size {
			return fmt.Errorf("%w: the store has more than the %d bytes the object claims", ErrDigestMismatch, r.size)
		}
	}
	return nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if err := r.next(); err != nil {
		return 0, err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo hands each chunk to w as it arrives, without a copy.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := r.next(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(r.cur)
		total += int64(n)
		r.cur = r.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

func (r *chunkReader) Close() error {
	r.it.Stop()
	return nil
}
