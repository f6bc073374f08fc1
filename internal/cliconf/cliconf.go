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
package cliconf

import (
	"errors"
	"flag"
	"fmt"
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
// named explicitly; the default path may be absent.
func Parse(fs *flag.FlagSet, args []string, o Options) error {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	path, explicit := configPath(fs, args, o, lookup)
	if path != "" {
		values, err := ReadFile(path, o.Section)
		switch {
		case err == nil:
			if err := apply(fs, values, "config "+path); err != nil {
				return err
			}
		case errors.Is(err, os.ErrNotExist) && !explicit:
		default:
			return err
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
				return
			}
		}
	})
	if err := apply(fs, env, "environment"); err != nil {
		return err
	}
	return fs.Parse(args)
}

func configPath(fs *flag.FlagSet, args []string, o Options, lookup func(string) (string, bool)) (string, bool) {
	f := fs.Lookup("config")
	if f == nil {
		return "", false
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	if v, ok := lookup(o.EnvName("config")); ok && v != "" {
		return v, true
	}
	return f.DefValue, false
}

func apply(fs *flag.FlagSet, values map[string]string, from string) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			continue // keys of other commands share the file
		}
		if err := fs.Set(k, values[k]); err != nil {
			return fmt.Errorf("%s: %s: %w", from, k, err)
		}
	}
	return nil
}

// ReadFile returns the flat key/value view of a configuration file for one
// section: top-level keys overlaid with the section's keys. Lists are joined
// with commas and mappings become "k=v,k=v" (the forms list flags accept).
// Mappings of other sections show up flattened too; Parse ignores keys that
// are not flags of the command.
func ReadFile(path, section string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Decode(b, section)
}

// Decode is ReadFile on bytes already read.
func Decode(b []byte, section string) (map[string]string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	out := map[string]string{}
	for k, v := range doc {
		if k == section {
			continue
		}
		s, err := scalar(v)
		if err != nil {
			return nil, fmt.Errorf("config: key %q: %w", k, err)
		}
		out[k] = s
	}
	if sec, ok := doc[section].(map[string]any); ok && section != "" {
		for k, v := range sec {
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("config: key %s.%s: %w", section, k, err)
			}
			out[k] = s
		}
	}
	return out, nil
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

func scalar(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(t), nil
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			s, err := scalar(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(t))
		for _, k := range keys {
			s, err := scalar(t[k])
			if err != nil {
				return "", err
			}
			parts = append(parts, k+"="+s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("unsupported value %v (%T)", v, v)
	}
}
