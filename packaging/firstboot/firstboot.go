// Package firstboot imports the configuration a technician put on an SD
// card's boot partition (nexfield.yaml and the key files it names, written
// from any laptop onto the FAT partition) into /etc/nexfield.
//
// Everything is validated before anything is installed. On any mistake
// nothing is imported: the problems go to the log and to nexfield-error.txt
// on the boot partition, where the technician looks, and Import fails, so the
// units that require nexfield-firstboot.service do not start a misconfigured
// radio. After an import the files are removed from the boot partition, key
// files overwritten first: FAT has no permissions, and unlinked clusters stay
// readable.
package firstboot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nexfield/nexfield/clock"
	"github.com/nexfield/nexfield/internal/atomicfile"
)

// Files on the boot partition that Import reads and writes.
const (
	ConfigName = "nexfield.yaml"         // the technician's configuration
	ErrorName  = "nexfield-error.txt"    // why an import was rejected
	DoneName   = "nexfield-imported.txt" // the receipt of an import
)

// ErrRejected is wrapped by Import when the boot partition's configuration
// has problems and nothing was imported.
var ErrRejected = errors.New("firstboot: configuration rejected")

// ReadFunc reads a file a configuration names: its bytes and permission bits.
type ReadFunc func(path string) ([]byte, fs.FileMode, error)

// Opts configures Import. The zero value imports from /boot/firmware (else
// /boot) into /etc/nexfield for user nexfield, checking only the YAML.
type Opts struct {
	// BootDir is the boot partition; "" means /boot/firmware if it
	// exists, else /boot.
	BootDir string
	// EtcDir is where the configuration is installed; "" means /etc/nexfield.
	EtcDir string
	// User owns the imported key files; "" means nexfield.
	User string
	// FileKeys are the configuration keys whose values name files. A
	// relative value names a file next to nexfield.yaml (so does an EtcDir
	// path whose file lies there): it is imported into EtcDir and the value
	// rewritten to its new absolute path.
	FileKeys []string
	// Check validates the configuration as it will be installed, the way
	// the commands configured in it will read it: name is what to call the
	// file in problems, read returns files as they will be after the import
	// (imported ones with the mode they get). It returns sentences for the
	// technician. Nil checks nothing beyond the YAML.
	Check func(config []byte, name string, read ReadFunc) []string
	// Logger gets the journal lines; nil discards them.
	Logger *slog.Logger
	// Clock stamps the notes left on the boot partition; nil is real time.
	Clock clock.Clock
}

// Result says what Import did.
type Result struct {
	BootDir  string   // the boot partition it looked at
	Imported []string // the paths it installed; none when there was no nexfield.yaml
}

// Import imports the boot partition's nexfield.yaml and the files it names.
// A rejected configuration is an error wrapping ErrRejected.
func Import(opts *Opts) (*Result, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.BootDir == "" {
		o.BootDir = "/boot/firmware"
		if _, err := os.Stat(o.BootDir); err != nil {
			o.BootDir = "/boot"
		}
	}
	if o.EtcDir == "" {
		o.EtcDir = "/etc/nexfield"
	}
	if o.User == "" {
		o.User = "nexfield"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	done, err := o.importBoot()
	if err != nil {
		return nil, err
	}
	return &Result{BootDir: o.BootDir, Imported: done}, nil
}

func (o *Opts) importBoot() ([]string, error) {
	log := o.Logger
	src := filepath.Join(o.BootDir, ConfigName)
	raw, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firstboot: %w", err)
	}
	p, problems := o.plan(raw)
	owner, err := lookupOwner(o.User)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		problems = slices.Compact(problems)
		for _, p := range problems {
			log.Error("configuration rejected", "file", src, "problem", p)
		}
		report := fmt.Sprintf("nexfield firstboot rejected %s (%s); nothing was imported and the nexfield\n"+
			"services stay stopped. Fix these and boot again:\n\n", ConfigName, o.Clock.Now().UTC().Format(time.RFC3339))
		for _, p := range problems {
			report += "  - " + p + "\n"
		}
		_ = os.Remove(filepath.Join(o.BootDir, DoneName)) // an older import's note would mislead
		// CRLF: the report is read on Windows laptops too.
		if err := writeAtomic(filepath.Join(o.BootDir, ErrorName), []byte(strings.ReplaceAll(report, "\n", "\r\n")), 0o644, -1, -1); err != nil {
			log.Error("cannot write the error report to the boot partition", "err", err)
		}
		return nil, fmt.Errorf("%w: %d problem(s) in %s; nothing imported", ErrRejected, len(problems), src)
	}

	// Install first, delete from the boot partition last: a power cut in
	// between only means the next boot imports the same files again.
	var done []string
	for _, f := range p.files {
		if err := writeAtomic(f.to, f.data, 0o600, owner.uid, owner.gid); err != nil {
			return nil, err
		}
		log.Info("key file imported", "from", f.from, "to", f.to)
		done = append(done, f.to)
	}
	dst := filepath.Join(o.EtcDir, ConfigName)
	if old, err := os.ReadFile(dst); err == nil && !bytes.Equal(old, p.config) {
		if err := writeAtomic(dst+".previous", old, 0o640, 0, owner.gid); err != nil {
			return nil, err
		}
	}
	if err := writeAtomic(dst, p.config, 0o640, 0, owner.gid); err != nil {
		return nil, err
	}
	log.Info("configuration imported", "from", src, "to", dst)
	done = append(done, dst)

	for _, f := range p.files {
		if err := shredRemove(f.from); err != nil {
			return nil, fmt.Errorf("firstboot: key file imported but left on the boot partition: %w", err)
		}
	}
	if err := os.Remove(src); err != nil {
		return nil, fmt.Errorf("firstboot: %w", err)
	}
	_ = os.Remove(filepath.Join(o.BootDir, ErrorName))
	note := fmt.Sprintf("nexfield firstboot imported %s at %s into %s.\r\n", ConfigName, o.Clock.Now().UTC().Format(time.RFC3339), o.EtcDir)
	if err := writeAtomic(filepath.Join(o.BootDir, DoneName), []byte(note), 0o644, -1, -1); err != nil {
		log.Warn("cannot leave a note on the boot partition", "err", err)
	}
	if err := atomicfile.SyncDir(o.BootDir); err != nil {
		log.Warn("boot partition not synced: a power cut now may undo the removal of the imported files", "err", err)
	}
	return done, nil
}

type importFile struct {
	from, to string
	data     []byte
}

type plan struct {
	config []byte // nexfield.yaml with file values rewritten to EtcDir
	files  []importFile
}

// plan validates the boot partition's configuration and says what to
// install. Problems are sentences for the technician.
func (o *Opts) plan(raw []byte) (*plan, []string) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, []string{fmt.Sprintf("%s is not valid YAML: %v", ConfigName, err)}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []string{fmt.Sprintf("%s must be a mapping of flag names to values ('nexfield config example' prints a documented one)", ConfigName)}
	}

	// Files named by the configuration: import relative ones (and absolute
	// ones under EtcDir whose file lies on the boot partition).
	var problems []string
	p := &plan{}
	seen := map[string]string{} // destination -> source
	for _, kv := range fileValues(doc.Content[0], "", o.FileKeys) {
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
			from = filepath.Join(o.BootDir, clean)
		case filepath.Dir(val) == filepath.Clean(o.EtcDir):
			if _, err := os.Stat(filepath.Join(o.BootDir, filepath.Base(val))); err == nil {
				from = filepath.Join(o.BootDir, filepath.Base(val))
			}
		}
		if from == "" {
			continue // a file on the device: Check reads it there
		}
		to := filepath.Join(o.EtcDir, filepath.Base(from))
		data, err := os.ReadFile(from)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: file not found next to %s", key, val, ConfigName))
			kv.node.Value = to // what Check then finds missing on the device too
			continue
		}
		if prev, dup := seen[to]; dup && prev != from {
			problems = append(problems, fmt.Sprintf("%s: %s and %s would both become %s", key, prev, from, to))
			continue
		}
		if _, dup := seen[to]; !dup {
			p.files = append(p.files, importFile{from: from, to: to, data: data})
			seen[to] = from
		}
		kv.node.Value = to
		kv.node.Style = 0
	}

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, []string{err.Error()}
	}
	if o.Check != nil {
		problems = append(problems, o.Check(out.Bytes(), ConfigName, p.read)...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	p.config = out.Bytes()
	return p, nil
}

// read returns a file as it will be after the import: an imported file
// with the mode it will get, else the device's own.
func (p *plan) read(path string) ([]byte, fs.FileMode, error) {
	for _, f := range p.files {
		if f.to == path {
			return f.data, 0o600, nil
		}
	}
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%s is a directory", path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s is not on the device and not next to %s (put %s there): %w",
				path, ConfigName, filepath.Base(path), fs.ErrNotExist)
		}
		return nil, 0, err
	}
	b, err := os.ReadFile(path)
	return b, fi.Mode().Perm(), err
}

type fileValue struct {
	key  string
	node *yaml.Node
}

// fileValues finds scalar values of keys at the top level and one section
// deep.
func fileValues(m *yaml.Node, prefix string, keys []string) []fileValue {
	var out []fileValue
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case v.Kind == yaml.ScalarNode && slices.Contains(keys, k.Value):
			out = append(out, fileValue{prefix + k.Value, v})
		case v.Kind == yaml.MappingNode && prefix == "":
			out = append(out, fileValues(v, k.Value+".", keys)...)
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

// writeAtomic writes data to path with the given mode and owner (-1 keeps
// the process's own) through internal/atomicfile, so a power cut leaves the
// old file or the new one.
func writeAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	tmp, err := atomicfile.Create(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	defer tmp.Cleanup()
	if uid < 0 {
		uid = os.Getuid()
	}
	if gid < 0 {
		gid = os.Getgid()
	}
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
