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

// readPSK reads a hex key file; it refuses keys others may read.
func readPSK(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("link key %s: mode %v lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("link key %s: not hex: %w", path, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("link key %s: %d bytes, want at least 16", path, len(key))
	}
	return key, nil
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

func (c *linkConfig) open(r radio.Radio, log *slog.Logger) (*chunking.Link, error) {
	if c.address < 1 || c.address > 254 {
		return nil, usageError{fmt.Sprintf("--address %d: want 1-254", c.address)}
	}
	if c.linkID < 0 || c.linkID > 255 {
		return nil, usageError{fmt.Sprintf("--link-id %d: want 0-255", c.linkID)}
	}
	var ciph chunking.Cipher
	switch c.cipher {
	case "ccm8":
		ciph = chunking.CCM8
	case "chacha20":
		ciph = chunking.ChaCha20Poly1305
	default:
		return nil, usageError{fmt.Sprintf("--cipher %q: want ccm8 or chacha20", c.cipher)}
	}
	psk, err := readPSK(c.pskFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("link state: %w", err)
	}
	turnaround := c.turnaround
	if turnaround == 0 {
		turnaround = driverTurnaround(r)
	}
	store := chunking.FileStore{Path: filepath.Join(c.stateDir, fmt.Sprintf("link-%d-%d.counters", c.linkID, c.address))}
	return chunking.New(r, chunking.Addr(c.address), psk, &chunking.Opts{
		EngineOpts: chunking.EngineOpts{LinkID: byte(c.linkID), MaxMessage: c.maxMessage, Store: store, Cipher: ciph, Turnaround: turnaround},
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
	l, err := lc.open(r, log.With("component", "link"))
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
