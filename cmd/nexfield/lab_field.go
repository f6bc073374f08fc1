//go:build field

package main

import (
	"context"
	"fmt"
)

// build names this binary's kind in `nexfield version` and the usage line.
const build = "field build"

// labCommands are the development binary's commands (lab.go), which the
// field build leaves out; each answers at once with how to get it.
func labCommands() map[string]command { return notInField("", "demo", "bench", "train") }

// labRadioCommands are the development binary's "nexfield radio"
// subcommands, left out here the same way.
func labRadioCommands() map[string]command { return notInField("radio ", "emulate") }

func notInField(parent string, names ...string) map[string]command {
	m := make(map[string]command, len(names))
	for _, n := range names {
		full := parent + n
		m[n] = command{"not in the field build (development binary: make build)", func(context.Context, env, []string) error {
			return fmt.Errorf("%s is not in the field build; build the development binary with `make build`", full)
		}}
	}
	return m
}
