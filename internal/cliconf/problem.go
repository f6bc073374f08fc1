package cliconf

import (
	"cmp"
	"fmt"
	"strings"
)

// ExitConfig is the exit status of a command whose configuration cannot work
// (EX_CONFIG of sysexits.h). The daemons' units name it in
// RestartPreventExitStatus=, so systemd does not restart a daemon that would
// only fail the same way again.
const ExitConfig = 78

// SourceKind is the layer of the configuration a value came from.
type SourceKind uint8

const (
	FromDefault SourceKind = iota // the flag's default
	FromFile                      // a key of the configuration file
	FromEnv                       // a NEXFIELD_ (or alias) environment variable
	FromFlag                      // the command line
)

// Source says where a flag's value came from, so a message can tell the
// operator what to change.
type Source struct {
	Kind SourceKind
	// Name is the flag as typed ("--sf"), the environment variable
	// ("NEXFIELD_SF") or the file's path (empty when the reader knows
	// which file it is).
	Name string
	// Key is the file's key as written: "peer.sf" in the peer section, "sf"
	// at the top level.
	Key string
}

func (s Source) String() string {
	switch s.Kind {
	case FromFile:
		var where string
		if sec, _, ok := strings.Cut(s.Key, "."); ok {
			where = "section " + sec
		} else if s.Key != "" {
			where = "top level"
		}
		switch {
		case s.Name == "":
			return cmp.Or(where, "configuration file")
		case where == "":
			return s.Name
		}
		return s.Name + ", " + where
	case FromEnv:
		return "environment " + s.Name
	case FromFlag:
		if s.Name == "" {
			return "command line"
		}
		return "flag " + s.Name
	}
	return "default"
}

// Sources maps flag names to where their values came from. A flag that is
// not in it has its default (the zero Source).
type Sources map[string]Source

// A Problem is one configuration value a command cannot work with.
type Problem struct {
	// Key is the flag name; empty for a problem of the whole file or
	// command line.
	Key    string
	Value  string
	Source Source
	// Msg says what is wrong, Fix what to do about it (may be empty).
	Msg, Fix string
}

// String is "sf=13 (/etc/nexfield/nexfield.yaml, section peer): MSG; FIX".
func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		if p.Value == "" {
			fmt.Fprintf(&b, "%s=\"\" ", p.Key)
		} else {
			fmt.Fprintf(&b, "%s=%s ", p.Key, p.Value)
		}
	}
	fmt.Fprintf(&b, "(%s): %s", p.Source, p.Msg)
	if p.Fix != "" {
		b.WriteString("; " + p.Fix)
	}
	return b.String()
}

// Error is a configuration a command cannot work with; a daemon that gets
// one exits with ExitConfig instead of retrying.
type Error struct {
	Command  string // "peer"
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("%s: configuration cannot work: %s", e.Command, e.Problems[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: configuration cannot work (%d problems):", e.Command, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}
