package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/internal/cliconf"
	"github.com/nexfield/nexfield/packaging"
	"github.com/nexfield/nexfield/packaging/firstboot"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/rylr"
	"github.com/nexfield/nexfield/radio/sim"
	"github.com/nexfield/nexfield/radio/sx127x"
	"github.com/nexfield/nexfield/relay"
)

// This file is the one validation of the configuration: the checks of each
// command's values (their radio and link parts next to those flags, in
// radioflags.go, radiohw.go and linkwire.go), which "nexfield config check",
// firstboot's import and every daemon at start all ask.

func runConfig(ctx context.Context, e env, args []string) error {
	return subcommands(ctx, e, "config", args, map[string]command{
		"check":   {"validate a configuration file (default " + cliconf.DefaultConfigPath + ")", runConfigCheck},
		"example": {"print the documented example configuration (the one the package installs)", runConfigExample},
	})
}

// runConfigCheck validates a configuration file as the commands will read
// it: every key against the flags of the command whose section it is in
// (top-level keys against the flags of all commands), and every command
// with a section as it would start with no flags or NEXFIELD_ variables
// set, defaults included: radio settings a driver would refuse, key and
// other files that are missing, unreadable or malformed.
func runConfigCheck(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := cliconf.DefaultConfigPath
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config check: %w", err)
	}
	problems, err := checkConfig(b, readDisk)
	if err != nil {
		return fmt.Errorf("config check: %s: %w", path, err)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(e.stderr, "%s: %s\n", path, p)
		}
		return fmt.Errorf("config check: %d problem(s) in %s", len(problems), path)
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", path)
	return nil
}

// runConfigExample prints the example configuration the .deb installs as
// /etc/nexfield/nexfield.yaml.
func runConfigExample(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("config example", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("config example: unexpected arguments %q", fs.Args())}
	}
	_, err := e.stdout.Write(packaging.ExampleConfig())
	return err
}

// readFunc reads a file a configuration names: its bytes and permission
// bits (the shape of firstboot.ReadFunc, which reads files as they will be
// after an import).
type readFunc func(path string) ([]byte, fs.FileMode, error)

// readDisk reads path as the command itself will.
func readDisk(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, fmt.Errorf("%s is a directory", path)
	}
	b, err := io.ReadAll(f)
	return b, fi.Mode().Perm(), err
}

// configured is one command's flag set and the check of the values it holds.
type configured struct {
	fs    *flag.FlagSet
	check func(read readFunc) []cliconf.Problem
}

// commandConfigs returns, per command that reads the configuration file (by
// its section), a constructor of its flags and their check, built without
// running the command.
func commandConfigs() map[string]func() configured {
	return map[string]func() configured{
		"agent": func() configured { fs, c := agentFlags(); return configured{fs, c.check} },
		"relay": func() configured { fs, c := relayFlags(); return configured{fs, c.check} },
		"peer":  func() configured { fs, c := peerFlags(); return configured{fs, c.check} },
		"send":  func() configured { fs, c := sendFlags(); return configured{fs, c.check} },
		"radio": func() configured { fs, c := radioCmdFlags("probe"); return configured{fs, c.check} },
	}
}

// commandFlagSets is commandConfigs without the checks.
func commandFlagSets() map[string]func() *flag.FlagSet {
	out := map[string]func() *flag.FlagSet{}
	for name, mk := range commandConfigs() {
		out[name] = func() *flag.FlagSet { return mk().fs }
	}
	return out
}

func (c *agentConfig) check(read readFunc) []cliconf.Problem {
	return join(c.log.check(),
		checkFile("creds", c.creds, read, "put the NATS .creds file there, readable by the service user (mode 0600)"),
		checkFile("secrets", c.secrets, read, "put the secret store there, readable by the service user (mode 0600)"))
}

func (c *relayConfig) check(read readFunc) []cliconf.Problem {
	var peers []cliconf.Problem
	if _, err := parsePeers(c.peers); err != nil {
		peers = []cliconf.Problem{{Key: "peers", Msg: err.Error(), Fix: "set peers as name=address,... with addresses 1..254, e.g. north=2,south=3"}}
	}
	return join(c.log.check(), peers,
		checkFile("creds", c.creds, read, "put the NATS .creds file there, readable by the service user (mode 0600)"),
		c.radio.check(), c.link.check(read))
}

func (c *peerConfig) check(read readFunc) []cliconf.Problem {
	return join(c.log.check(),
		checkFile("model", c.model, read, "put the model there (nexfield train writes one), or unset model for the embedded one"),
		c.radio.check(), c.link.check(read))
}

func (c *sendConfig) check(read readFunc) []cliconf.Problem {
	var to []cliconf.Problem
	if c.to < 1 || c.to > 254 {
		to = []cliconf.Problem{{Key: "to", Msg: fmt.Sprintf("%d is not a station address", c.to), Fix: "set to to the peer's address, 1..254"}}
	}
	return join(checkLogLevel("log-level", c.logLevel), to, c.radio.check(), c.link.check(read))
}

func (c *radioCmdConfig) check(readFunc) []cliconf.Problem {
	return join(checkLogLevel("log-level", c.level), c.radio.check())
}

// check reports a log format or level newLogger would refuse.
func (l *logFlags) check() []cliconf.Problem {
	var problems []cliconf.Problem
	if _, err := newLogger(io.Discard, l.format, "info"); err != nil {
		problems = append(problems, cliconf.Problem{Key: "log-format", Msg: err.Error(), Fix: "set log-format to text or json"})
	}
	return append(problems, checkLogLevel("log-level", l.level)...)
}

func checkLogLevel(key, level string) []cliconf.Problem {
	if _, err := newLogger(io.Discard, "text", level); err != nil {
		return []cliconf.Problem{{Key: key, Msg: err.Error(), Fix: "set " + key + " to debug, info, warn or error"}}
	}
	return nil
}

// checkFile reports a file the command will open that it cannot read.
func checkFile(key, path string, read readFunc, fix string) []cliconf.Problem {
	if path == "" {
		return nil
	}
	if _, _, err := read(path); err != nil {
		return []cliconf.Problem{{Key: key, Msg: err.Error(), Fix: fix}}
	}
	return nil
}

func join(lists ...[]cliconf.Problem) []cliconf.Problem {
	var out []cliconf.Problem
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// attribute fills in each problem's current value and where it came from.
func attribute(fs *flag.FlagSet, src cliconf.Sources, problems []cliconf.Problem) []cliconf.Problem {
	for i := range problems {
		p := &problems[i]
		if p.Key == "" {
			continue
		}
		p.Source = src[p.Key]
		if f := fs.Lookup(p.Key); f != nil && p.Value == "" {
			p.Value = f.Value.String()
		}
	}
	return problems
}

// mustWork is what a command asks right after parsing its flags: an
// *cliconf.Error naming every value that cannot work, or nil. A daemon
// returns it, and so exits with cliconf.ExitConfig at once instead of
// retrying what can only fail again.
func mustWork(fs *flag.FlagSet, src cliconf.Sources, problems []cliconf.Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &cliconf.Error{Command: fs.Name(), Problems: attribute(fs, src, problems)}
}

// explain fills in each value and its source in the problems of a
// configuration error found after mustWork passed: when a radio is opened
// again and the key file has gone, or a driver refuses the settings only
// once it meets the module.
func explain(fs *flag.FlagSet, src cliconf.Sources, err error) error {
	var ce *cliconf.Error
	if errors.As(err, &ce) {
		attribute(fs, src, ce.Problems)
	}
	return err
}

// configFault reports whether err means the configuration cannot work (exit
// status cliconf.ExitConfig): a problem the checks above found, a rejected
// import, or settings a driver, the link or a service refused when it was
// built. Such an error does not heal by retrying.
func configFault(err error) bool {
	var ce *cliconf.Error
	if errors.As(err, &ce) {
		return true
	}
	for _, sentinel := range []error{firstboot.ErrRejected, lora.ErrInvalidParams, rylr.ErrInvalidOpts, sx127x.ErrInvalidOpts,
		sim.ErrInvalidOpts, chunking.ErrInvalidOpts, relay.ErrInvalidOpts, agent.ErrInvalidOpts} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	return false
}

// exitStatus is the process exit status for what a command returned.
func exitStatus(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case configFault(err):
		return cliconf.ExitConfig
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// checkConfig validates configuration file b: its keys (checkKeys) and each
// command that has a section, as it would start from the file alone, with
// files read through read.
func checkConfig(b []byte, read readFunc) ([]string, error) {
	sets := map[string]*flag.FlagSet{}
	for name, mk := range commandFlagSets() {
		sets[name] = mk()
	}
	problems, err := checkKeys(b, sets)
	if err != nil {
		return nil, err
	}
	sections, err := cliconf.Sections(b)
	if err != nil {
		return nil, err
	}
	cmds := commandConfigs()
	for _, sec := range sections {
		mk, ok := cmds[sec]
		if !ok {
			continue
		}
		c := mk()
		c.fs.SetOutput(io.Discard)
		// A value that does not parse keeps its default here; checkKeys
		// reported it.
		src, _ := cliconf.ApplyFile(c.fs, b, "", sec)
		for _, p := range attribute(c.fs, src, c.check(read)) {
			problems = append(problems, sec+": "+p.String())
		}
	}
	return problems, nil
}

// checkImport is firstboot's check of the configuration it would install.
func checkImport(b []byte, name string, read firstboot.ReadFunc) []string {
	problems, err := checkConfig(b, readFunc(read))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	return problems
}

// checkKeys reports the keys of configuration file b that are not flags of
// the command whose section they are in (top-level keys: of any command),
// and values those flags do not accept.
func checkKeys(b []byte, flagSets map[string]*flag.FlagSet) ([]string, error) {
	sections, err := cliconf.Sections(b)
	if err != nil {
		return nil, err
	}
	var problems []string
	isSection := map[string]bool{}
	for _, sec := range sections {
		isSection[sec] = true
		fs, ok := flagSets[sec]
		if !ok {
			if _, isFlag := anyFlag(flagSets, sec); !isFlag {
				problems = append(problems, fmt.Sprintf("unknown section %q (sections: %s)", sec, strings.Join(sortedKeys(flagSets), ", ")))
			}
			continue
		}
		values, err := sectionOnly(b, sec)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(values) {
			if fs.Lookup(k) == nil {
				problems = append(problems, fmt.Sprintf("%s.%s: not a flag of 'nexfield %s'", sec, k, sec))
				continue
			}
			if err := fs.Set(k, values[k]); err != nil {
				problems = append(problems, fmt.Sprintf("%s.%s: %v", sec, k, err))
			}
		}
	}
	top, err := cliconf.Decode(b, "")
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(top) {
		if isSection[k] {
			continue // reported above
		}
		fs, ok := anyFlag(flagSets, k)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not a flag of any command", k))
			continue
		}
		if err := fs.Set(k, top[k]); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
		}
	}
	return problems, nil
}

// sectionOnly returns the keys of one section without the top level.
func sectionOnly(b []byte, sec string) (map[string]string, error) {
	all, err := cliconf.Decode(b, sec)
	if err != nil {
		return nil, err
	}
	top, err := cliconf.Decode(b, "")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range all {
		if tv, inTop := top[k]; !inTop || tv != v || k == sec {
			out[k] = v
		}
	}
	return out, nil
}

func anyFlag(sets map[string]*flag.FlagSet, name string) (*flag.FlagSet, bool) {
	for _, k := range sortedKeys(sets) {
		if sets[k].Lookup(name) != nil {
			return sets[k], true
		}
	}
	return nil, false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
