package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// defaultPullWindow bounds what the client buffers of an object in
// flight. The stock ObjectStore.Get feeds a push consumer whose
// client-side buffer holds up to 64 MiB, so a fast server and a slow SD
// card put most of an object in the heap; a pull consumer asks for a
// window of bytes at a time.
const defaultPullWindow = 4 << 20

// pullIdle ends a pull that receives nothing for this long (a server or
// link that went away), even when the caller's context has no deadline.
const pullIdle = 30 * time.Second

// chunkReader reads an object's chunks in order through a pull-based
// ordered consumer, holding at most window bytes. It stops with a
// truncation error when the stream has no more chunks before Size bytes
// arrived (a chunk was lost), instead of waiting forever.
type chunkReader struct {
	ctx  context.Context
	it   jetstream.MessagesContext
	cur  []byte
	got  uint64
	size uint64
	last bool
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
	// Bound messages too: with a byte limit alone the client sizes its
	// message channel for a million messages (8 MB of pointers).
	n := 64
	if info.Chunks > 0 {
		chunk := max(info.Size/uint64(info.Chunks), 1)
		n = int(min(max(2*uint64(window)/chunk, 16), 4096))
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(n, window))
	if err != nil {
		return nil, err
	}
	return &chunkReader{ctx: ctx, it: it, size: info.Size}, nil
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
		m, err := r.it.Next(jetstream.NextContext(ctx))
		cancel()
		if err != nil {
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("artifact: pull stalled: no chunk for %v after %d of %d bytes", pullIdle, r.got, r.size)
			}
			return err
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			r.last = true
		}
		r.cur = m.Data()
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
