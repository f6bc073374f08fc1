package artifact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/nats-io/nats.go"
)

// Errors callers branch on; every error Fetch returns wraps one of these or a
// context / I/O error.
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
	// this machine (GOARM is read from /proc/cpuinfo on arm when zero).
	GOOS, GOARCH, GOARM string
}

// Artifact is a verified binary in the cache.
type Artifact struct {
	Path   string // absolute path of the cached, executable file
	Digest string // "SHA-256=<base64url>" of its content
	Size   int64
	Cached bool // true when no download was needed
}

// Store is the digest-keyed binary cache.
type Store struct {
	dir  string
	log  *slog.Logger
	plat Platform
}

// New opens (creating if needed) the cache in dir.
func New(dir string, opts *Opts) (*Store, error) {
	if opts == nil {
		opts = &Opts{}
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: empty cache dir", ErrInvalidOpts)
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
	}
	return &Store{dir: dir, log: log, plat: p}, nil
}

// String names the cache.
func (s *Store) String() string { return "artifact{" + s.dir + "}" }

// Platform is the os/arch a Store accepts binaries for.
type Platform struct{ OS, Arch, ARM string }

// Fetch resolves uri into a verified cached executable.
func (s *Store) Fetch(ctx context.Context, nc *nats.Conn, uri, want string) (Artifact, error) {
	return Artifact{}, errors.New("artifact: not implemented")
}

// GC removes cache entries whose digest is not in inUse.
func (s *Store) GC(inUse []string) error { return nil }
