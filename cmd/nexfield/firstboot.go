package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nexfield/nexfield/internal/atomicfile"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/systemd"
)

// Files on the boot partition that firstboot reads and writes.
const (
	bootConfigName = "nexfield.yaml"
	bootErrorName  = "nexfield-error.txt"
	bootDoneName   = "nexfield-imported.txt"
)

// fileKeys are the flags whose values name files. A relative value in the
// boot partition's nexfield.yaml names a file next to it; firstboot imports
// it into /etc/nexfield and rewrites the value to the new absolute path.
var fileKeys = map[string]bool{"psk-file": true, "creds": true, "secrets": true, "model": true}

type firstbootConfig struct {
	bootDir, etcDir, user string
}

func firstbootFlags() (*flag.FlagSet, *firstbootConfig) {
	c := &firstbootConfig{}
	fs := flag.NewFlagSet("firstboot", flag.ContinueOnError)
	fs.StringVar(&c.bootDir, "boot-dir", "", "boot partition (default /boot/firmware, else /boot)")
	fs.StringVar(&c.etcDir, "etc-dir", filepath.Dir(cliconf.DefaultConfigPath), "where the configuration is installed")
	fs.StringVar(&c.user, "user", "nexfield", "service user that owns the imported key files")
	return fs, c
}

// runFirstboot imports nexfield.yaml and the key files it names from the SD
// card's boot partition (FAT, written by a technician on any laptop) into
// /etc/nexfield. Everything is validated first; on any mistake nothing is
// imported, the problems go to the journal and to nexfield-error.txt on the
// boot partition (where the technician looks), and the command fails, so the
// units that require nexfield-firstboot.service do not start a misconfigured
// radio. After an import the files are removed from the FAT partition, key
// files overwritten first: FAT has no permissions.
func runFirstboot(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "notify-selftest" {
		return runNotifySelftest(ctx, e, args[1:])
	}
	fs, c := firstbootFlags()
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: nexfield firstboot [flags]\n       nexfield firstboot notify-selftest [flags]  (a stand-in daemon for the systemd checks)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("firstboot: unexpected arguments %q", fs.Args())}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil)).With("component", "firstboot")
	if c.bootDir == "" {
		c.bootDir = "/boot/firmware"
		if _, err := os.Stat(c.bootDir); err != nil {
			c.bootDir = "/boot"
		}
	}
	res, err := importBootConfig(c, log)
	if err != nil {
		return err
	}
	if res == nil {
		fmt.Fprintf(e.stdout, "firstboot: no %s in %s, nothing to import\n", bootConfigName, c.bootDir)
		return nil
	}
	fmt.Fprintf(e.stdout, "firstboot: imported %s\n", strings.Join(res, ", "))
	return nil
}

// importBootConfig does the work of runFirstboot. It returns the imported
// paths, nil when there is nothing to import.
func importBootConfig(c *firstbootConfig, log *slog.Logger) ([]string, error) {
	src := filepath.Join(c.bootDir, bootConfigName)
	raw, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firstboot: %w", err)
	}
	plan, problems := planImport(c, raw)
	owner, err := lookupOwner(c.user)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		for _, p := range problems {
			log.Error("configuration rejected", "file", src, "problem", p)
		}
		report := fmt.Sprintf("nexfield firstboot rejected %s (%s); nothing was imported and the nexfield\n"+
			"services stay stopped. Fix these and boot again:\n\n", bootConfigName, time.Now().UTC().Format(time.RFC3339))
		for _, p := range problems {
			report += "  - " + p + "\n"
		}
		_ = os.Remove(filepath.Join(c.bootDir, bootDoneName)) // an older import's note would mislead
		// \r\n: read on Windows laptops too.
		if err := atomicfile.WriteFile(filepath.Join(c.bootDir, bootErrorName), []byte(strings.ReplaceAll(report, "\n", "\r\n")), 0o644); err != nil {
			log.Error("cannot write the error report to the boot partition", "err", err)
		}
		return nil, fmt.Errorf("firstboot: %d problem(s) in %s; nothing imported", len(problems), src)
	}

	// Install first, delete from the boot partition last: a power cut in
	// between only means the next boot imports the same files again.
	var done []string
	for _, f := range plan.files {
		if err := installFile(f.to, f.data, 0o600, owner.uid, owner.gid); err != nil {
			return nil, err
		}
		log.Info("key file imported", "from", f.from, "to", f.to)
		done = append(done, f.to)
	}
	dst := filepath.Join(c.etcDir, bootConfigName)
	if old, err := os.ReadFile(dst); err == nil && !bytes.Equal(old, plan.config) {
		if err := installFile(dst+".previous", old, 0o640, 0, owner.gid); err != nil {
			return nil, err
		}
	}
	if err := installFile(dst, plan.config, 0o640, 0, owner.gid); err != nil {
		return nil, err
	}
	log.Info("configuration imported", "from", src, "to", dst)
	done = append(done, dst)

	for _, f := range plan.files {
		if err := shredRemove(f.from); err != nil {
			return nil, fmt.Errorf("firstboot: key file imported but left on the boot partition: %w", err)
		}
	}
	if err := os.Remove(src); err != nil {
		return nil, fmt.Errorf("firstboot: %w", err)
	}
	_ = os.Remove(filepath.Join(c.bootDir, bootErrorName))
	note := fmt.Sprintf("nexfield firstboot imported %s at %s into %s.\r\n", bootConfigName, time.Now().UTC().Format(time.RFC3339), c.etcDir)
	if err := atomicfile.WriteFile(filepath.Join(c.bootDir, bootDoneName), []byte(note), 0o644); err != nil {
		log.Warn("cannot leave a note on the boot partition", "err", err)
	}
	if err := atomicfile.SyncDir(c.bootDir); err != nil {
		log.Warn("boot partition not synced: a power cut now may undo the removal of the imported files", "err", err)
	}
	return done, nil
}

type importFile struct {
	from, to string
	data     []byte
}

type importPlan struct {
	config []byte // nexfield.yaml with file values rewritten to etcDir
	files  []importFile
}

// planImport validates the boot partition's configuration and says what to
// install. Problems are sentences for the technician.
func planImport(c *firstbootConfig, raw []byte) (*importPlan, []string) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, []string{fmt.Sprintf("%s is not valid YAML: %v", bootConfigName, err)}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []string{fmt.Sprintf("%s must be a mapping of flag names to values (see nexfield.yaml.example)", bootConfigName)}
	}
	tmp, err := os.CreateTemp("", "nexfield-firstboot-*.yaml")
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer os.Remove(tmp.Name())
	tmp.Close()

	var problems []string
	// Unknown keys and bad values, as "nexfield config check" reports them.
	if err := os.WriteFile(tmp.Name(), raw, 0o600); err != nil {
		return nil, []string{err.Error()}
	}
	checks, err := checkConfig(tmp.Name(), firstbootFlagSets())
	if err != nil {
		return nil, []string{err.Error()}
	}
	problems = append(problems, checks...)

	// Files named by the configuration: import relative ones (and absolute
	// ones under etcDir whose file lies on the boot partition).
	plan := &importPlan{}
	seen := map[string]string{} // destination -> source
	for _, kv := range fileValues(doc.Content[0], "") {
		key, val := kv.key, kv.node.Value
		if val == "" {
			continue
		}
		var from string
		switch {
		case !filepath.IsAbs(val):
			clean := filepath.Clean(val)
			if clean == ".." || strings.HasPrefix(clean, "../") {
				problems = append(problems, fmt.Sprintf("%s: %q leaves the boot partition", key, val))
				continue
			}
			from = filepath.Join(c.bootDir, clean)
		case filepath.Dir(val) == filepath.Clean(c.etcDir):
			if _, err := os.Stat(filepath.Join(c.bootDir, filepath.Base(val))); err == nil {
				from = filepath.Join(c.bootDir, filepath.Base(val))
			}
		}
		if from == "" {
			continue // an absolute path on the device, checked below
		}
		data, err := os.ReadFile(from)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: file not found next to %s", key, val, bootConfigName))
			continue
		}
		to := filepath.Join(c.etcDir, filepath.Base(from))
		if prev, dup := seen[to]; dup && prev != from {
			problems = append(problems, fmt.Sprintf("%s: %s and %s would both become %s", key, prev, from, to))
			continue
		}
		if _, dup := seen[to]; !dup {
			plan.files = append(plan.files, importFile{from: from, to: to, data: data})
			seen[to] = from
		}
		kv.node.Value = to
		kv.node.Style = 0
	}

	// What each command will actually read, defaults included.
	sections, _ := cliconf.Sections(raw)
	for _, sec := range sections {
		mk, ok := firstbootFlagSets()[sec]
		if !ok {
			continue
		}
		fs := mk()
		fs.SetOutput(io.Discard)
		if err := cliconf.Parse(fs, []string{"--config", tmp.Name()}, cliconf.Options{Section: sec,
			LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
			continue // reported by checkConfig
		}
		for key := range fileKeys {
			f := fs.Lookup(key)
			if f == nil || f.Value.String() == "" {
				continue
			}
			problems = append(problems, checkFileValue(sec, key, f.Value.String(), c, seen, plan)...)
		}
		if sec == "peer" || sec == "relay" {
			if err := checkRadioFlags(fs); err != nil {
				problems = append(problems, fmt.Sprintf("%s: radio: %v", sec, err))
			}
		}
	}
	sort.Strings(problems)
	problems = dedup(problems)
	if len(problems) > 0 {
		return nil, problems
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, []string{err.Error()}
	}
	plan.config = out.Bytes()
	return plan, nil
}

// checkFileValue checks a file a command will open: imported now, or already
// on the device. A link key must be hex of at least 16 bytes.
func checkFileValue(sec, key, val string, c *firstbootConfig, seen map[string]string, plan *importPlan) []string {
	if !filepath.IsAbs(val) {
		val = filepath.Join(c.etcDir, filepath.Base(val)) // rewritten on import
	}
	var data []byte
	if _, imported := seen[val]; imported {
		for _, f := range plan.files {
			if f.to == val {
				data = f.data
			}
		}
	} else {
		b, err := os.ReadFile(val)
		if err != nil {
			return []string{fmt.Sprintf("%s.%s: %s is not on the device and not next to %s (put %s there)",
				sec, key, val, bootConfigName, filepath.Base(val))}
		}
		data = b
	}
	if key == "psk-file" {
		k, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			return []string{fmt.Sprintf("%s.%s: %s is not hex (make one with: openssl rand -hex 32)", sec, key, filepath.Base(val))}
		}
		if len(k) < 16 {
			return []string{fmt.Sprintf("%s.%s: %s holds %d bytes, want at least 16", sec, key, filepath.Base(val), len(k))}
		}
	}
	return nil
}

// checkRadioFlags rejects radio settings the driver would refuse at start,
// without touching hardware.
func checkRadioFlags(fs *flag.FlagSet) error {
	get := func(n string) string {
		if f := fs.Lookup(n); f != nil {
			return f.Value.String()
		}
		return ""
	}
	atoi := func(n string) int { v, _ := strconv.Atoi(get(n)); return v }
	region, err := lora.ParseRegion(get("region"))
	if err != nil {
		return err
	}
	p := lora.Params{SpreadingFactor: atoi("sf"), BandwidthHz: atoi("bandwidth"), CodingRate: atoi("coding-rate"), PreambleSymbols: atoi("preamble")}
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := lora.NewRegulator(region, &lora.RegulatorOpts{FrequencyHz: atoi("frequency")}); err != nil {
		return err
	}
	switch d := get("driver"); d {
	case "rylr":
		if _, err := rylr.ParseModel(get("module")); err != nil {
			return err
		}
		if _, err := rylr.ParseEncoding(get("encoding")); err != nil {
			return err
		}
	case "sx127x":
		if get("dio0-pin") == "" {
			return errors.New("driver sx127x needs dio0-pin (the GPIO wired to the radio's DIO0)")
		}
		if v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(get("sync-word")), "0x"), 16, 8); err != nil || v == 0 {
			return fmt.Errorf("sync-word %q: want a non-zero hex byte like 0x12", get("sync-word"))
		}
	case "sim":
		if get("hub") == "" {
			return errors.New("driver sim needs hub HOST:PORT")
		}
	default:
		return fmt.Errorf("unknown driver %q (want rylr, sx127x or sim)", d)
	}
	return nil
}

// firstbootFlagSets are the commands a configuration file configures; it adds
// the daemons to what config check knows, so the import never depends on it.
func firstbootFlagSets() map[string]func() *flag.FlagSet {
	m := map[string]func() *flag.FlagSet{
		"agent": func() *flag.FlagSet { fs, _ := agentFlags(); return fs },
		"peer":  func() *flag.FlagSet { fs, _ := peerFlags(); return fs },
		"relay": func() *flag.FlagSet { fs, _ := relayFlags(); return fs },
	}
	for k, v := range commandFlagSets() {
		m[k] = v
	}
	return m
}

type fileValue struct {
	key  string
	node *yaml.Node
}

// fileValues finds scalar values of fileKeys at the top level and one
// section deep.
func fileValues(m *yaml.Node, prefix string) []fileValue {
	var out []fileValue
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case v.Kind == yaml.ScalarNode && fileKeys[k.Value]:
			out = append(out, fileValue{prefix + k.Value, v})
		case v.Kind == yaml.MappingNode && prefix == "":
			out = append(out, fileValues(v, k.Value+".")...)
		}
	}
	return out
}

func dedup(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

type owner struct{ uid, gid int }

func lookupOwner(name string) (owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return owner{}, fmt.Errorf("user %q does not exist on the device (is the nexfield package installed?)", name)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return owner{}, fmt.Errorf("user %q: unusable ids %s:%s", name, u.Uid, u.Gid)
	}
	return owner{uid, gid}, nil
}

// installFile writes data atomically with the given mode and owner.
func installFile(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	tmp, err := atomicfile.Create(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	defer tmp.Cleanup()
	err = tmp.Chmod(mode)
	if err == nil && (uid != os.Getuid() || gid != os.Getgid()) {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err != nil {
		return fmt.Errorf("firstboot: %s: %w", path, err)
	}
	if err := tmp.Commit(path); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	return nil
}

// shredRemove overwrites a file with zeros before unlinking it, so the key
// does not stay readable in the FAT's free clusters.
func shredRemove(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Write(make([]byte, fi.Size()))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Remove(path)
}

// runNotifySelftest is a stand-in daemon for checking the units under a real
// systemd (make test-system): it sends READY=1 and a status line, pings the
// watchdog while its loop beats, and its loop stalls on purpose while the
// file --stall-file exists, so systemd's watchdog restart can be observed.
func runNotifySelftest(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("firstboot notify-selftest", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	stall := fs.String("stall-file", filepath.Join(os.Getenv("STATE_DIRECTORY"), "stall"), "the loop hangs while this file exists")
	period := fs.Duration("period", 200*time.Millisecond, "loop period")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil)).With("component", "selftest")
	n := systemd.New(&systemd.Opts{Logger: log})
	hb := systemd.NewHeartbeat("selftest loop", nil)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		t := time.NewTicker(*period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := os.Stat(*stall); err == nil {
				continue // stuck on purpose: no beat
			}
			hb.Beat()
		}
	}()
	log.Info("selftest starting", "notify", n.String(), "stall_file", *stall)
	if err := n.Ready(fmt.Sprintf("selftest serving as uid %d, loop every %s", os.Getuid(), *period)); err != nil {
		return err
	}
	wdDone := make(chan error, 1)
	go func() { wdDone <- n.Watchdog(ctx, hb.Check(5**period)) }()
	<-ctx.Done()
	_ = n.Stopping("selftest stopping")
	<-loopDone
	return <-wdDone
}
