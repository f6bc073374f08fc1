package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/nexfield/nexfield/internal/cliconf"
)

func runConfig(ctx context.Context, e env, args []string) error {
	return subcommands(ctx, e, "config", args, map[string]command{
		"check": {"validate a configuration file (default " + cliconf.DefaultConfigPath + ")", runConfigCheck},
	})
}

// runConfigCheck validates every key of a configuration file against the
// flags of the command whose section it is in, and top-level keys against
// the flags of all commands, so a typo is reported before a unit starts.
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
	problems, err := checkConfig(path, commandFlagSets())
	if err != nil {
		return err
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

// commandFlagSets returns, per command that reads the configuration file,
// a constructor of its flag set (built without running the command).
func commandFlagSets() map[string]func() *flag.FlagSet {
	return map[string]func() *flag.FlagSet{
		"agent": func() *flag.FlagSet { fs, _ := agentFlags(); return fs },
		"relay": func() *flag.FlagSet { fs, _ := relayFlags(); return fs },
		"peer":  func() *flag.FlagSet { fs, _ := peerFlags(); return fs },
		"send":  func() *flag.FlagSet { fs, _ := sendFlags(); return fs },
		"radio": func() *flag.FlagSet { fs, _ := radioCmdFlags("probe"); return fs },
	}
}

func checkConfig(path string, cmds map[string]func() *flag.FlagSet) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config check: %w", err)
	}
	sections, err := cliconf.Sections(b)
	if err != nil {
		return nil, err
	}
	flagSets := map[string]*flag.FlagSet{}
	for name, mk := range cmds {
		flagSets[name] = mk()
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
