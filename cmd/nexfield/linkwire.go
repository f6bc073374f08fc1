package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/rylr"
)

// linkConfig holds the flags of the link layer shared by relay, peer and send.
type linkConfig struct {
	address    int
	pskFile    string
	linkID     int
	stateDir   string
	maxMessage int
	cipher     string
	turnaround time.Duration
}

func addLinkFlags(fs *flag.FlagSet, defaultAddr int) *linkConfig {
	c := &linkConfig{}
	fs.IntVar(&c.address, "address", defaultAddr, "this station's address on the radio link (1-254)")
	fs.StringVar(&c.pskFile, "psk-file", "/etc/nexfield/link.key", "pre-shared link key: a file holding at least 16 bytes as hex (e.g. openssl rand -hex 32)")
	fs.IntVar(&c.linkID, "link-id", 0, "link id (0-255): separates links that share a key")
	fs.StringVar(&c.stateDir, "state-dir", "/var/lib/nexfield", "where the link's message counters are persisted (a power cut must never reuse a nonce)")
	fs.IntVar(&c.maxMessage, "link-max-message", 64<<10, "largest message the link accepts, in bytes")
	fs.StringVar(&c.cipher, "cipher", "ccm8", "frame AEAD: ccm8 (AES-128-CCM, 8-byte tag) or chacha20 (ChaCha20-Poly1305)")
	fs.DurationVar(&c.turnaround, "turnaround", 0, "receive-to-transmit time the link allows the other side's radio (0: from the driver; a UART module needs the time to move a frame over its serial line)")
	return c
}

// loadPSK reads a link key file through read: hex of at least 16 bytes,
// readable by its owner only.
func loadPSK(path string, read readFunc) ([]byte, error) {
	b, perm, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	if perm&0o077 != 0 {
		return nil, fmt.Errorf("link key %s: mode %v lets others read it", path, perm)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("link key %s is not hex: %w", path, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("link key %s holds %d bytes, want at least 16", path, len(key))
	}
	return key, nil
}

// linkSettings are a linkConfig's values parsed.
type linkSettings struct {
	psk    []byte
	cipher chunking.Cipher
}

// check reports the link settings that cannot work, reading the key
// through read.
func (c *linkConfig) check(read readFunc) []cliconf.Problem {
	_, problems := c.resolve(read)
	return problems
}

func (c *linkConfig) resolve(read readFunc) (linkSettings, []cliconf.Problem) {
	var s linkSettings
	var problems []cliconf.Problem
	bad := func(key string, err error, fix string) {
		problems = append(problems, cliconf.Problem{Key: key, Msg: err.Error(), Fix: fix})
	}
	if c.address < 1 || c.address > 254 {
		bad("address", fmt.Errorf("%d is not a station address", c.address), "set address to 1..254, one per station of the link")
	}
	if c.linkID < 0 || c.linkID > 255 {
		bad("link-id", fmt.Errorf("%d is not a link id", c.linkID), "set link-id to 0..255, the same at every station")
	}
	switch c.cipher {
	case "ccm8":
		s.cipher = chunking.CCM8
	case "chacha20":
		s.cipher = chunking.ChaCha20Poly1305
	default:
		bad("cipher", fmt.Errorf("unknown cipher %q", c.cipher), "set cipher to ccm8 or chacha20, the same at every station")
	}
	psk, err := loadPSK(c.pskFile, read)
	if err != nil {
		bad("psk-file", err, fmt.Sprintf("put the link's key there, readable by the service user only (openssl rand -hex 32 > %s; chmod 600 %[1]s; chown nexfield %[1]s)", c.pskFile))
	}
	s.psk = psk
	return s, problems
}

// driverTurnaround is how long after a frame ends the radio on the other
// side may still be deaf. An SPI chip switches in well under a millisecond
// (the engine's default covers the driver); a UART module must first pass
// the received frame to its host as a +RCV line and take the answer in as
// an AT+SEND line, each up to ~260 bytes at the serial rate.
func driverTurnaround(r radio.Radio) time.Duration {
	if d, ok := r.(*rylr.Dev); ok {
		line := time.Duration(260*10) * time.Second / time.Duration(d.Baud())
		return 2*line + 10*time.Millisecond
	}
	return 0
}

// open starts the link over r for command name; settings that cannot work
// are an *cliconf.Error.
func (c *linkConfig) open(r radio.Radio, name string, log *slog.Logger) (*chunking.Link, error) {
	s, problems := c.resolve(readDisk)
	if len(problems) > 0 {
		return nil, &cliconf.Error{Command: name, Problems: problems}
	}
	if err := os.MkdirAll(c.stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("link state: %w", err)
	}
	turnaround := c.turnaround
	if turnaround == 0 {
		turnaround = driverTurnaround(r)
	}
	store := chunking.FileStore{Path: filepath.Join(c.stateDir, fmt.Sprintf("link-%d-%d.counters", c.linkID, c.address))}
	return chunking.New(r, chunking.Addr(c.address), s.psk, &chunking.Opts{
		EngineOpts: chunking.EngineOpts{LinkID: byte(c.linkID), MaxMessage: c.maxMessage, Store: store, Cipher: s.cipher, Turnaround: turnaround},
		Logger:     log,
	})
}

// station is a radio with the link on top, as the relay, the peer and send
// use them.
type station struct {
	radio radio.Radio
	link  *chunking.Link
}

// openStation brings up the radio, then the link over it.
func openStation(ctx context.Context, rc *radioConfig, lc *linkConfig, name string, log *slog.Logger) (*station, error) {
	r, err := rc.open(ctx, name, log.With("component", "radio"))
	if err != nil {
		return nil, err
	}
	l, err := lc.open(r, name, log.With("component", "link"))
	if err != nil {
		r.Close()
		return nil, err
	}
	return &station{radio: r, link: l}, nil
}

// Close stops the link, then the radio.
func (s *station) Close() {
	s.link.Close()
	s.radio.Close()
}
