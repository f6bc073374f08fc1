// Command nexfield is the one binary of the nexfield project: the remote Nex
// agent, the radio relay workload, the air-gapped peer and their tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// env carries what every command needs from the process, so commands stay
// testable without touching globals.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// self is the path of the running executable (the demo uploads it).
	self string
}

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

// commands are the field roles and their tools, which every build carries,
// and labCommands (lab.go; lab_field.go in the field build).
func commands() map[string]command {
	cmds := map[string]command{
		"version":   {"print the version stamped at build time and which build this is", runVersion},
		"agent":     {"run the remote Nexlet (registers with a Nex node, runs workloads)", runAgent},
		"relay":     {"run the radio relay NATS service (usually started by the agent)", runRelay},
		"peer":      {"run the air-gapped peer: radio -> reassembly -> inference -> reply", runPeer},
		"send":      {"send one message over the radio link and print the answer", runSend},
		"classify":  {"classify text read from arguments or stdin", runClassify},
		"radio":     {"bench tools for a radio module: probe | listen | send | emulate", runRadio},
		"config":    {"configuration tools: config check FILE", runConfig},
		"firstboot": {"import configuration from the boot partition (run by a oneshot unit)", runFirstboot},
	}
	maps.Copy(cmds, labCommands())
	return cmds
}

func main() {
	self, _ := os.Executable()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, self: self}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, e, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "nexfield: %v\n", err)
		}
		os.Exit(exitStatus(err))
	}
}

// usageError marks errors caused by how the command was called (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func dispatch(ctx context.Context, e env, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout, cmds)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(e.stderr, cmds)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "nexfield %s (%s): Nex workloads on Raspberry Pis and over 915 MHz LoRa\n\nusage: nexfield COMMAND [flags]\n\ncommands:\n", version, build)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'nexfield COMMAND -h' for the flags of a command.\n")
}

func runVersion(ctx context.Context, e env, args []string) error {
	fmt.Fprintf(e.stdout, "nexfield %s (%s)\n", version, build)
	return nil
}

// subcommands dispatches "nexfield NAME SUB ..." to one of subs.
func subcommands(ctx context.Context, e env, name string, args []string, subs map[string]command) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(e.stderr, "usage: nexfield %s {%s} [flags]\n", name, strings.Join(names, "|"))
		for _, n := range names {
			fmt.Fprintf(e.stderr, "  %-10s %s\n", n, subs[n].summary)
		}
		if len(args) == 0 {
			return usageError{fmt.Sprintf("%s: no subcommand given", name)}
		}
		return nil
	}
	c, ok := subs[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("%s: unknown subcommand %q", name, args[0])}
	}
	return c.run(ctx, e, args[1:])
}
