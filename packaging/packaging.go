// Package packaging holds the files the .deb package installs that the
// binary needs too, so each exists once: the example configuration that
// becomes /etc/nexfield/nexfield.yaml and that "nexfield config example"
// prints.
package packaging

import _ "embed"

//go:embed nexfield.yaml
var exampleConfig string

// ExampleConfig returns the documented example configuration, every key
// commented out.
func ExampleConfig() []byte { return []byte(exampleConfig) }
