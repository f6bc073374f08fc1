//go:build !field

package main

// build names this binary's kind in `nexfield version` and the usage line.
const build = "development build"

// labCommands are the commands of the development binary beyond the field
// roles: the demo, the performance reports and the trainer. They carry the
// embedded NATS server, the Nex node stand-in, the simulators and the
// training data, none of which a Pi in the field runs; the field build
// (-tags field, lab_field.go) answers them with an error instead.
func labCommands() map[string]command {
	return map[string]command{
		"demo":  {"run the whole path on this machine with a simulated radio", runDemo},
		"bench": {"performance reports: bench radio | inference | pull | rss", runBench},
		"train": {"rebuild the default sentiment model from the shipped data", runTrain},
	}
}

// labRadioCommands are the "nexfield radio" subcommands of the development
// binary only.
func labRadioCommands() map[string]command {
	return map[string]command{
		"emulate": {"run emulated RYLR998 modules on pseudo-terminals", runRadioEmulate},
	}
}
