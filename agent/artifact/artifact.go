package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nexfield/nexfield/internal/atomicfile"
)

// Errors callers branch on. Fetch wraps one of them, a context error or an
// I/O error (a full disk is the I/O error of the write, e.g. ENOSPC/EFBIG).
var (
	ErrBadURI         = errors.New("artifact: bad uri")
	ErrNotFound       = errors.New("artifact: not found")
	ErrDigestMismatch = errors.New("artifact: digest mismatch")
	ErrWrongArch      = errors.New("artifact: wrong architecture")
	ErrNotExecutable  = errors.New("artifact: not executable")
	ErrInvalidOpts    = errors.New("artifact: invalid options")
)

// Opts configures a Store. The zero value is a working default.
type Opts struct {
	// Logger receives debug lines about pulls and GC. Nil: discard.
	Logger *slog.Logger
	// GOOS, GOARCH and GOARM name the machine binaries must run on. Zero:
	// this machine. On arm a zero GOARM is read from the kernel (uname
	// machine armv6l / armv7l / armv8l, or aarch64 for a 32-bit agent on a
	// 64-bit kernel); when it cannot be read, Go binaries are not checked
	// for their GOARM.
	GOOS, GOARCH, GOARM string
	// BufferSize is the copy buffer of a file:// copy. Zero: 128 KiB.
	BufferSize int
	// PullWindow is how much of an object is requested ahead of the cache
	// writer, in bytes, rounded to whole chunks (2 to 64 of them). Zero:
	// 3 MiB. A larger window pulls faster over long round trips and costs
	// about twice that in heap.
	PullWindow int
}

// Artifact is a verified binary in the cache.
type Artifact struct {
	Path   string // absolute path of the cached, executable file
	Digest string // "SHA-256=<base64url>" of its content, as the object store writes it
	Size   int64
	Cached bool   // true when no download was needed
	Object string // the object or file it came from (the per-architecture variant picked)
}

// Store is the digest-keyed binary cache: one file per content digest,
// named sha256-<hex>, written only by rename of a complete, verified,
// fsynced temporary file, so a crash or a full disk never leaves a file
// under a digest name that does not hold that content.
type Store struct {
	dir  string
	log  *slog.Logger
	plat Platform
	bufN int
	win  int

	mu       sync.Mutex
	inflight map[string]bool // temporary files being written, spared by GC
}

// New opens (creating if needed) the cache in dir.
func New(dir string, opts *Opts) (*Store, error) {
	if opts == nil {
		opts = &Opts{}
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: empty cache dir", ErrInvalidOpts)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact: cache dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("artifact: cache dir: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := Platform{OS: opts.GOOS, Arch: opts.GOARCH, ARM: opts.GOARM}
	if p.OS == "" {
		p.OS = runtime.GOOS
	}
	if p.Arch == "" {
		p.Arch = runtime.GOARCH
		if p.Arch == "arm" && p.ARM == "" {
			p.ARM = kernelARM()
		}
	}
	if _, ok := elfMachines[p.Arch]; !ok {
		return nil, fmt.Errorf("%w: unsupported GOARCH %q", ErrInvalidOpts, p.Arch)
	}
	if p.Arch == "arm" && p.ARM != "" && p.ARM != "5" && p.ARM != "6" && p.ARM != "7" {
		return nil, fmt.Errorf("%w: GOARM %q: want 5, 6 or 7", ErrInvalidOpts, p.ARM)
	}
	bufN := opts.BufferSize
	if bufN <= 0 {
		bufN = 128 << 10
	}
	win := opts.PullWindow
	if win <= 0 {
		win = defaultPullWindow
	}
	return &Store{dir: dir, log: log, plat: p, bufN: bufN, win: win, inflight: map[string]bool{}}, nil
}

// String names the cache and the platform it accepts.
func (s *Store) String() string { return "artifact{" + s.dir + " " + s.plat.String() + "}" }

// Dir is the cache directory.
func (s *Store) Dir() string { return s.dir }

// Platform is the machine this Store accepts binaries for.
func (s *Store) Platform() Platform { return s.plat }

// Fetch resolves uri into a verified executable in the cache.
//
// "nats://BUCKET/NAME[:TAG]" reads object NAME_TAG (TAG defaults to
// "latest", as the native nexlet does) from JetStream object store BUCKET
// over nc, preferring a per-architecture variant NAME_TAG.<os>-<arch> (see
// Variants). "file:///abs/path" copies a local file. Either way the content
// is streamed to a temporary file while its SHA-256 is computed, checked
// against the object store's digest and against want when want is not
// empty ("SHA-256=<base64url>" as the object store writes it; standard
// base64 and hex "sha256:<hex>" are accepted too), checked to be an ELF
// binary for this machine or a #! script, fsynced and renamed into place
// with mode 0755. A file already cached under the digest is reused without
// a download.
func (s *Store) Fetch(ctx context.Context, nc *nats.Conn, uri, want string) (Artifact, error) {
	var wantSum []byte
	if want != "" {
		var err error
		if wantSum, err = ParseDigest(want); err != nil {
			return Artifact{}, err
		}
	}
	switch {
	case strings.HasPrefix(uri, "nats://"):
		if nc == nil {
			return Artifact{}, fmt.Errorf("%w: %s: no NATS connection", ErrBadURI, uri)
		}
		bucket, object, err := ParseNATSURI(uri)
		if err != nil {
			return Artifact{}, err
		}
		return s.fetchObject(ctx, nc, uri, bucket, object, wantSum)
	case strings.HasPrefix(uri, "file://"):
		return s.fetchFile(ctx, uri, wantSum)
	}
	return Artifact{}, fmt.Errorf("%w: %q: must be prefixed with file:// for a local binary or nats:// for an object store artifact", ErrBadURI, uri)
}

// ParseNATSURI splits "nats://BUCKET/NAME[:TAG]" into the bucket and the
// object name NAME_TAG.
func ParseNATSURI(uri string) (bucket, object string, err error) {
	rest, ok := strings.CutPrefix(uri, "nats://")
	if !ok {
		return "", "", fmt.Errorf("%w: %q: not a nats:// uri", ErrBadURI, uri)
	}
	bucket, name, ok := strings.Cut(rest, "/")
	if !ok || bucket == "" || name == "" {
		return "", "", fmt.Errorf("%w: %q: want nats://BUCKET/NAME[:TAG]", ErrBadURI, uri)
	}
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("%w: %q: invalid bucket name %q", ErrBadURI, uri, bucket)
	}
	tag := "latest"
	if n, t, ok := strings.Cut(name, ":"); ok {
		name, tag = n, t
	}
	if name == "" || tag == "" || strings.ContainsAny(name+tag, ":/ \t\r\n") {
		return "", "", fmt.Errorf("%w: %q: want nats://BUCKET/NAME[:TAG]", ErrBadURI, uri)
	}
	return bucket, name + "_" + tag, nil
}

func validBucket(b string) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseDigest decodes "SHA-256=<base64url>" (the object store's form;
// padded or not, standard base64 accepted) or "sha256:<hex>" into 32 bytes.
func ParseDigest(d string) ([]byte, error) {
	var sum []byte
	switch {
	case len(d) > 8 && strings.EqualFold(d[:8], "SHA-256="):
		v := strings.TrimRight(d[8:], "=")
		var err error
		if sum, err = base64.RawURLEncoding.DecodeString(v); err != nil {
			sum, err = base64.RawStdEncoding.DecodeString(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %q: bad base64", ErrDigestMismatch, d)
		}
	case len(d) > 7 && strings.EqualFold(d[:7], "sha256:"):
		var err error
		if sum, err = hex.DecodeString(d[7:]); err != nil {
			return nil, fmt.Errorf("%w: %q: bad hex", ErrDigestMismatch, d)
		}
	default:
		return nil, fmt.Errorf("%w: %q: want SHA-256=<base64url> or sha256:<hex>", ErrDigestMismatch, d)
	}
	if len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: %q: %d bytes, want 32", ErrDigestMismatch, d, len(sum))
	}
	return sum, nil
}

// FormatDigest is the object store's digest form of a SHA-256 sum.
func FormatDigest(sum []byte) string { return "SHA-256=" + base64.URLEncoding.EncodeToString(sum) }

func (s *Store) pathOf(sum []byte) string {
	return filepath.Join(s.dir, "sha256-"+hex.EncodeToString(sum))
}

// cached returns the cache entry for sum when a complete one is there.
func (s *Store) cached(sum []byte, size int64) (Artifact, bool) {
	p := s.pathOf(sum)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || (size >= 0 && fi.Size() != size) {
		return Artifact{}, false
	}
	return Artifact{Path: p, Digest: FormatDigest(sum), Size: fi.Size(), Cached: true}, true
}

func (s *Store) fetchObject(ctx context.Context, nc *nats.Conn, uri, bucket, object string, wantSum []byte) (Artifact, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", uri, err)
	}
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return Artifact{}, fmt.Errorf("%w: %s: object store bucket %q does not exist", ErrNotFound, uri, bucket)
		}
		return Artifact{}, fmt.Errorf("artifact: %s: bucket %q: %w", uri, bucket, err)
	}
	var info *jetstream.ObjectInfo
	var name string
	for _, cand := range Variants(object, s.plat) {
		info, err = obs.GetInfo(ctx, cand)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return Artifact{}, fmt.Errorf("artifact: %s: object %q: %w", uri, cand, err)
		}
		name = cand
		break
	}
	if name == "" {
		return Artifact{}, fmt.Errorf("%w: %s: no object %q (nor a %s variant) in bucket %q", ErrNotFound, uri, object, s.plat, bucket)
	}
	srcBucket := bucket
	if info.Opts != nil && info.Opts.Link != nil {
		// A link's own info has no digest; its target's does.
		l := info.Opts.Link
		if l.Name == "" {
			return Artifact{}, fmt.Errorf("%w: %s: object %q links to a whole bucket", ErrNotFound, uri, name)
		}
		tobs := obs
		if l.Bucket != bucket {
			if tobs, err = js.ObjectStore(ctx, l.Bucket); err != nil {
				return Artifact{}, fmt.Errorf("%w: %s: object %q links to bucket %q: %w", ErrNotFound, uri, name, l.Bucket, err)
			}
		}
		if info, err = tobs.GetInfo(ctx, l.Name); err != nil {
			return Artifact{}, fmt.Errorf("%w: %s: object %q links to %s/%s: %w", ErrNotFound, uri, name, l.Bucket, l.Name, err)
		}
		srcBucket = l.Bucket
	}
	sum, err := ParseDigest(info.Digest)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: object %q has no usable digest: %w", uri, name, err)
	}
	if wantSum != nil && string(sum) != string(wantSum) {
		return Artifact{}, fmt.Errorf("%w: %s: object %q has %s, the request wants %s", ErrDigestMismatch, uri, name, info.Digest, FormatDigest(wantSum))
	}
	if a, ok := s.cached(sum, int64(info.Size)); ok {
		a.Object = name
		s.log.Debug("artifact cached", "uri", uri, "object", name, "digest", a.Digest)
		return a, nil
	}
	res, err := openChunks(ctx, js, srcBucket, info, s.win)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: object %q: %w", uri, name, err)
	}
	defer res.Close()
	a, err := s.write(ctx, res, sum, int64(info.Size), uri+" ("+name+")")
	if err != nil {
		return Artifact{}, err
	}
	a.Object = name
	s.log.Debug("artifact pulled", "uri", uri, "object", name, "digest", a.Digest, "size_bytes", a.Size)
	return a, nil
}

func (s *Store) fetchFile(ctx context.Context, uri string, wantSum []byte) (Artifact, error) {
	p := strings.TrimPrefix(uri, "file://")
	if !filepath.IsAbs(p) {
		return Artifact{}, fmt.Errorf("%w: %q: want file:///absolute/path", ErrBadURI, uri)
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Artifact{}, fmt.Errorf("%w: %s: %w", ErrNotFound, uri, err)
		}
		return Artifact{}, fmt.Errorf("artifact: %s: %w", uri, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", uri, err)
	}
	if !fi.Mode().IsRegular() {
		return Artifact{}, fmt.Errorf("%w: %s: not a regular file", ErrNotExecutable, uri)
	}
	// Hash first: a file already in the cache is not copied again. The copy
	// is hashed again, so a file that changes in between is refused.
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, s.bufN)); err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", uri, err)
	}
	sum := h.Sum(nil)
	if wantSum != nil && string(sum) != string(wantSum) {
		return Artifact{}, fmt.Errorf("%w: %s: content is %s, want %s", ErrDigestMismatch, uri, FormatDigest(sum), FormatDigest(wantSum))
	}
	if a, ok := s.cached(sum, fi.Size()); ok {
		a.Object = p
		return a, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", uri, err)
	}
	a, err := s.write(ctx, f, sum, fi.Size(), uri)
	if err != nil {
		return Artifact{}, err
	}
	a.Object = p
	return a, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// write streams r into a temporary file in the cache, verifies it (sum may
// be nil: then whatever arrives is accepted, keyed by its own digest),
// checks it can run here, and renames it into place. On any failure the
// temporary file is removed.
func (s *Store) write(ctx context.Context, r io.Reader, sum []byte, size int64, what string) (Artifact, error) {
	af, err := atomicfile.Create(s.dir)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: cache: %w", what, err)
	}
	f, tmp := af.File, filepath.Base(af.Name())
	s.mu.Lock()
	s.inflight[tmp] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, tmp)
		s.mu.Unlock()
		af.Cleanup()
	}()
	fw, err := newFileWriter(f, size)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: cache: %w", what, err)
	}
	defer fw.release()
	var n int64
	var got []byte
	if cr, ok := r.(*chunkReader); ok {
		// Chunks are never reused once handed out, so hashing runs beside
		// the disk write instead of after it, and the disk write needs no
		// copy.
		ph := newParallelHash()
		fw.Keep()
		n, err = cr.WriteTo(io.MultiWriter(ph, fw))
		got = ph.sum()
	} else {
		h := sha256.New()
		n, err = io.CopyBuffer(io.MultiWriter(h, fw), ctxReader{ctx, r}, make([]byte, s.bufN))
		got = h.Sum(nil)
	}
	if err == nil {
		err = fw.Close()
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: pull: %w", what, err)
	}
	if size >= 0 && n != size {
		return Artifact{}, fmt.Errorf("%w: %s: truncated: got %d bytes, want %d", ErrDigestMismatch, what, n, size)
	}
	if sum != nil && string(got) != string(sum) {
		return Artifact{}, fmt.Errorf("%w: %s: content is %s, want %s", ErrDigestMismatch, what, FormatDigest(got), FormatDigest(sum))
	}
	if err := s.plat.Check(f); err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := f.Chmod(0o755); err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: cache: %w", what, err)
	}
	final := s.pathOf(got)
	if err := af.Commit(final); err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: cache: %w", what, err)
	}
	s.log.Debug("artifact written", "what", what, "size_bytes", n, "direct_io", fw.Direct())
	return Artifact{Path: final, Digest: FormatDigest(got), Size: n}, nil
}

// hashQueue is how many chunks may wait for the hash. SHA-256 outruns the
// network where the CPU has SHA instructions, so the queue is mostly
// empty; where it has not (a Pi's Cortex-A53), a longer one would only
// hold more of the heap.
const hashQueue = 4

// parallelHash hashes the slices written to it on its own goroutine. The
// caller must not modify a slice after writing it.
type parallelHash struct {
	ch   chan []byte
	done chan []byte
}

func newParallelHash() *parallelHash {
	ph := &parallelHash{ch: make(chan []byte, hashQueue), done: make(chan []byte, 1)}
	go func() {
		h := sha256.New()
		for b := range ph.ch {
			h.Write(b)
		}
		ph.done <- h.Sum(nil)
	}()
	return ph
}

func (ph *parallelHash) Write(p []byte) (int, error) {
	ph.ch <- p
	return len(p), nil
}

// sum ends the hashing goroutine and returns the digest.
func (ph *parallelHash) sum() []byte {
	close(ph.ch)
	return <-ph.done
}

// GC removes cache entries whose digest is not in inUse (digests in any
// form ParseDigest accepts), and temporary files a crash left behind.
func (s *Store) GC(inUse []string) error {
	keep := map[string]bool{}
	for _, d := range inUse {
		if sum, err := ParseDigest(d); err == nil {
			keep["sha256-"+hex.EncodeToString(sum)] = true
		}
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("artifact: gc: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, e := range ents {
		n := e.Name()
		switch {
		case atomicfile.IsTemp(n) && !s.inflight[n]:
		case strings.HasPrefix(n, "sha256-") && !keep[n]:
		default:
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		s.log.Debug("artifact removed", "file", n)
	}
	if len(errs) > 0 {
		return fmt.Errorf("artifact: gc: %w", errors.Join(errs...))
	}
	return nil
}
