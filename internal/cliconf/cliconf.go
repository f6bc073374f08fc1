// Package cliconf fills a flag.FlagSet from a YAML configuration file,
// environment variables and the command line, in that order of precedence,
// so that every configuration key is also a flag and an environment variable.
//
// A configuration file is a YAML mapping. Keys are flag names. Keys at the top
// level apply to every command; a mapping named after the command (for
// example "agent:" or "peer:") holds keys for that command only and wins over
// the top level:
//
//	server: nats://10.0.0.1:4222
//	agent:
//	  nexus: farm
//	  heartbeat: 5s
//
// The environment variable of flag "state-dir" is NEXFIELD_STATE_DIR.
//
// ParseSources also says which layer set each value (Source), so a command
// that finds a value it cannot work with can name the key, where it came from
// and what to do (Problem); Error carries such problems, and ExitConfig is the
// exit status they end a daemon with.
package cliconf

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultConfigPath is where packaged installs keep their configuration.
const DefaultConfigPath = "/etc/nexfield/nexfield.yaml"

// Options says how Parse finds values outside the command line.
type Options struct {
	// Section is the command's mapping in the configuration file ("agent").
	Section string
	// EnvPrefix prefixes environment variable names. Zero means "NEXFIELD_".
	EnvPrefix string
	// EnvAliases maps a flag name to further environment variables consulted
	// when the prefixed one is unset, for example "server": {"NATS_URL"}.
	EnvAliases map[string][]string
	// LookupEnv reads the environment. Nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Alias registers short as another name of the already defined flag long,
// so that "-s" and "--server" set the same value.
func Alias(fs *flag.FlagSet, short, long string) {
	f := fs.Lookup(long)
	if f == nil {
		panic("cliconf: alias for undefined flag " + long)
	}
	fs.Var(f.Value, short, "short for -"+long)
}

// EnvName is the environment variable that sets flag name.
func (o Options) EnvName(name string) string {
	p := o.EnvPrefix
	if p == "" {
		p = "NEXFIELD_"
	}
	return p + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse sets fs from the file named by the "config" flag (if fs defines one and
// it is set on the command line or in NEXFIELD_CONFIG), then from the
// environment, then parses args. A missing file is an error only when it was
// named explicitly; the default path may be absent. A value that does not
// parse, a file that cannot be read and a bad command line are an *Error.
func Parse(fs *flag.FlagSet, args []string, o Options) error {
	_, err := ParseSources(fs, args, o)
	return err
}

// ParseSources is Parse that also returns where each value came from.
func ParseSources(fs *flag.FlagSet, args []string, o Options) (Sources, error) {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	src := Sources{}
	path, pathSrc := configPath(fs, args, o, lookup)
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := applyFile(fs, b, path, o.Section, src); err != nil {
				return nil, err
			}
		case errors.Is(err, os.ErrNotExist) && pathSrc.Kind == FromDefault:
		default:
			return nil, &Error{Command: fs.Name(), Problems: []Problem{{Key: "config", Value: path, Source: pathSrc,
				Msg: err.Error(), Fix: "name a readable file, or leave config unset to use " + DefaultConfigPath}}}
		}
	}
	env := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		names := append([]string{o.EnvName(f.Name)}, o.EnvAliases[f.Name]...)
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				env[f.Name] = v
				src[f.Name] = Source{Kind: FromEnv, Name: n}
				return
			}
		}
	})
	if err := apply(fs, env, src); err != nil {
		return nil, err
	}
	for name, typed := range commandLine(fs, args) {
		src[name] = Source{Kind: FromFlag, Name: typed}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &Error{Command: fs.Name(), Problems: []Problem{{Source: Source{Kind: FromFlag}, Msg: err.Error(),
			Fix: fmt.Sprintf("'nexfield %s -h' lists the flags", fs.Name())}}}
	}
	return src, nil
}

// ApplyFile sets fs from the configuration file b (read from path) as Parse
// would, without the environment or a command line, for checking a file
// before a command reads it. It sets every value that parses and returns
// their sources even when others do not (the *Error lists those).
func ApplyFile(fs *flag.FlagSet, b []byte, path, section string) (Sources, error) {
	src := Sources{}
	err := applyFile(fs, b, path, section, src)
	return src, err
}

func applyFile(fs *flag.FlagSet, b []byte, path, section string, src Sources) error {
	values, keys, err := decode(b, section)
	if err != nil {
		return &Error{Command: fs.Name(), Problems: []Problem{{Source: Source{Kind: FromFile, Name: path},
			Msg: err.Error(), Fix: "fix the YAML (nexfield config check names every problem)"}}}
	}
	for k := range values {
		src[k] = Source{Kind: FromFile, Name: path, Key: keys[k]}
	}
	return apply(fs, values, src)
}

// configPath is the configuration file Parse reads and where its name came
// from (FromDefault: the flag's default, which may be absent).
func configPath(fs *flag.FlagSet, args []string, o Options, lookup func(string) (string, bool)) (string, Source) {
	f := fs.Lookup("config")
	if f == nil {
		return "", Source{}
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1], Source{Kind: FromFlag, Name: p}
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, Source{Kind: FromFlag, Name: p}
			}
		}
	}
	if n := o.EnvName("config"); n != "" {
		if v, ok := lookup(n); ok && v != "" {
			return v, Source{Kind: FromEnv, Name: n}
		}
	}
	return f.DefValue, Source{}
}

// apply sets the flags of fs named in values (keys of other commands that
// share the file are skipped); a value that does not parse is an *Error
// naming its source.
func apply(fs *flag.FlagSet, values map[string]string, src Sources) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []Problem
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			continue
		}
		if err := fs.Set(k, values[k]); err != nil {
			problems = append(problems, Problem{Key: k, Value: values[k], Source: src[k], Msg: err.Error(),
				Fix: fmt.Sprintf("'nexfield %s -h' says what %s takes", fs.Name(), k)})
		}
	}
	if len(problems) > 0 {
		return &Error{Command: fs.Name(), Problems: problems}
	}
	return nil
}

// commandLine returns the flags args sets, by name (an alias counts for the
// flag it stands for), each with the form a user types ("--sf", "-s"). It
// parses args into a scratch set of the same flags, so fs's values and its
// usage text stay as they are; fs.Parse reports any error.
func commandLine(fs *flag.FlagSet, args []string) map[string]string {
	scratch := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	scratch.Usage = func() {}
	set := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		name := f.Name
		if long, ok := strings.CutPrefix(f.Usage, "short for -"); ok && fs.Lookup(long) != nil {
			name = long // an Alias
		}
		typed := "--" + f.Name
		if len(f.Name) == 1 {
			typed = "-" + f.Name
		}
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		scratch.Var(&marker{set: set, name: name, typed: typed, bool: isBool && b.IsBoolFlag()}, f.Name, "")
	})
	_ = scratch.Parse(args)
	return set
}

// marker is a scratch flag value that records that it was set.
type marker struct {
	set         map[string]string
	name, typed string
	bool        bool
}

func (m *marker) String() string   { return "" }
func (m *marker) IsBoolFlag() bool { return m != nil && m.bool }
func (m *marker) Set(string) error { m.set[m.name] = m.typed; return nil }

// Decode returns the flat key/value view of configuration file b for one
// section: top-level keys overlaid with the section's keys. Lists are joined
// with commas and mappings become "k=v,k=v" (the forms list flags accept).
// Mappings of other sections show up flattened too; Parse ignores keys that
// are not flags of the command.
func Decode(b []byte, section string) (map[string]string, error) {
	values, _, err := decode(b, section)
	return values, err
}

// decode is Decode that also returns each value's key as written in the
// file: "peer.sf" from the section, "sf" from the top level. Scalars keep
// their text as written, so "sync-word: 0x34" is "0x34" and not YAML's 52.
func decode(b []byte, section string) (values, keys map[string]string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	values, keys = map[string]string{}, map[string]string{}
	if len(doc.Content) == 0 {
		return values, keys, nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("config: line %d: want a mapping of flag names to values", root.Line)
	}
	var sec *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, resolve(root.Content[i+1])
		if k == section && section != "" {
			if v.Kind == yaml.MappingNode {
				sec = v
			}
			continue
		}
		s, err := text(v)
		if err != nil {
			return nil, nil, fmt.Errorf("config: key %q: %w", k, err)
		}
		values[k], keys[k] = s, k
	}
	if sec != nil {
		for i := 0; i+1 < len(sec.Content); i += 2 {
			k := sec.Content[i].Value
			s, err := text(resolve(sec.Content[i+1]))
			if err != nil {
				return nil, nil, fmt.Errorf("config: key %s.%s: %w", section, k, err)
			}
			values[k], keys[k] = s, section+"."+k
		}
	}
	return values, keys, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// text is a value as a flag takes it: a scalar as written (null is empty),
// a list joined with commas, a mapping as "k=v,k=v" in key order.
func text(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			s, err := text(resolve(e))
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	case yaml.MappingNode:
		kv := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			s, err := text(resolve(n.Content[i+1]))
			if err != nil {
				return "", err
			}
			kv[n.Content[i].Value] = s
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+kv[k])
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value at line %d", n.Line)
}

// Sections returns the names of the mappings at the top level of a file.
func Sections(b []byte) ([]string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var out []string
	for k, v := range doc {
		if _, isMap := v.(map[string]any); isMap {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}
