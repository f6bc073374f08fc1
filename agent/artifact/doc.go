// Package artifact fetches workload binaries into a digest-keyed cache on
// local disk, streaming them from a JetStream object store (or taking them
// from a local path), verifying their SHA-256 and checking that they can run
// on this machine before anything executes them.
package artifact
