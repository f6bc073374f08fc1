package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nexfield/nexfield/agent"
	"github.com/nexfield/nexfield/internal/cliconf"
)

// agentConfig is what the agent's flags fill in.
type agentConfig struct {
	server, creds, nexus, typ, name, description string
	stateDir, secrets, ingressHost               string
	heartbeat, nodeSilence, stopGrace, metrics   time.Duration
	adoptUnknown                                 bool
	tags                                         tagsFlag
	log                                          *logFlags
}

// agentFlags defines the flags of "nexfield agent" (also used by config check).
func agentFlags() (*flag.FlagSet, *agentConfig) {
	c := &agentConfig{tags: tagsFlag{}}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("config", cliconf.DefaultConfigPath, "YAML configuration file (keys are flag names; section \"agent:\")")
	fs.StringVar(&c.server, "server", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated (env NATS_URL)")
	cliconf.Alias(fs, "s", "server")
	fs.StringVar(&c.creds, "creds", "", "NATS .creds file for the bootstrap connection")
	fs.StringVar(&c.nexus, "nexus", agent.DefaultNexus, "nexus name of the Nex node(s) to register with")
	fs.StringVar(&c.typ, "type", agent.DefaultType, "register type (nex workload start --type); must not be a prefix of another agent type on the node")
	fs.StringVar(&c.name, "name", "", "agent name shown by the node (default nexfield-<hostname>)")
	fs.StringVar(&c.description, "description", "", "agent description shown by the node")
	fs.Var(c.tags, "tags", "k=v,k=v labels reported in the heartbeat data")
	fs.StringVar(&c.stateDir, "state-dir", agent.DefaultStateDir, "artifact cache and workload records")
	fs.DurationVar(&c.heartbeat, "heartbeat", agent.DefaultHeartbeat, "heartbeat period (the node marks an agent degraded after 10s)")
	fs.DurationVar(&c.nodeSilence, "node-silence", agent.DefaultNodeSilence, "register again when the node heartbeat is missing this long")
	fs.DurationVar(&c.stopGrace, "stop-grace", 5*time.Second, "SIGTERM to SIGKILL delay when stopping a workload")
	fs.BoolVar(&c.adoptUnknown, "adopt-unknown", false, "start workloads from the node's stored state that this agent has no record of (one agent per type only)")
	fs.StringVar(&c.secrets, "secrets", "", "secret store file resolving secret://KEY values")
	fs.DurationVar(&c.metrics, "metrics-interval", agent.DefaultMetricsInterval, "publish each workload's CPU and memory use this often on $NEX.FEED.<ns>.metrics.<id> (0: never)")
	fs.StringVar(&c.ingressHost, "ingress-host", "", "address where this machine's workloads are reachable; announces each workload's first expose_ports entry to an ingress proxy")
	c.log = addLogFlags(fs)
	return fs, c
}

func runAgent(ctx context.Context, e env, args []string) error {
	fs, c := agentFlags()
	fs.SetOutput(e.stderr)
	src, err := cliconf.ParseSources(fs, args, cliconf.Options{Section: "agent", EnvAliases: map[string][]string{"server": {"NATS_URL"}}})
	if err != nil {
		return err
	}
	if err := mustWork(fs, src, c.check(readDisk)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("agent: unexpected arguments %q", fs.Args())}
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	var servers []string
	for _, s := range strings.Split(c.server, ",") {
		if s = strings.TrimSpace(s); s != "" {
			servers = append(servers, s)
		}
	}
	a, err := agent.New(&agent.Opts{
		Servers:      servers,
		CredsFile:    c.creds,
		Nexus:        c.nexus,
		Type:         c.typ,
		Name:         c.name,
		Description:  c.description,
		Version:      semver(version),
		Tags:         c.tags,
		StateDir:     c.stateDir,
		Heartbeat:    c.heartbeat,
		NodeSilence:  c.nodeSilence,
		SecretsFile:  c.secrets,
		AdoptUnknown: c.adoptUnknown,
		StopGrace:    c.stopGrace,
		// The flag's 0 means off; the option's zero means the default.
		MetricsInterval: cmp.Or(c.metrics, -1),
		IngressHost:     c.ingressHost,
		Logger:          log.With("component", "agent"),
	})
	if err != nil {
		return err
	}
	log.Info("agent starting", "servers", c.server, "nexus", c.nexus, "type", c.typ, "state_dir", c.stateDir)
	return runUnderSystemd(ctx, log, a.Run, a.Ready(), a.Status, func() error {
		// Waiting for a node or for NATS to come back is the loop working,
		// not stuck: a restart would not help, so the pings go on.
		if err := a.Healthy(); err != nil && !errors.Is(err, agent.ErrNotRegistered) && !errors.Is(err, agent.ErrDisconnected) {
			return err
		}
		return nil
	})
}

// logFlags are --log-format and --log-level of the daemons.
type logFlags struct{ format, level string }

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	return l
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) { return newLogger(w, l.format, l.level) }

// newLogger builds the process logger from --log-format and --log-level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("invalid log level %q", level)}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Sprintf("invalid log format %q (text or json)", format)}
}

// tagsFlag is a k=v,k=v flag; repeated flags add up.
type tagsFlag map[string]string

func (t tagsFlag) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+t[k])
	}
	return strings.Join(parts, ",")
}

func (t tagsFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("tag %q is not k=v", kv)
		}
		t[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return nil
}
