// Package agent is the remote Nexlet that runs on a gateway Raspberry Pi: it
// registers with a Nex node (RREGISTER, then REGISTER), heartbeats, serves
// the seven agent endpoints as a NATS micro service, validates start
// requests against its JSON Schema, runs workloads through the workload
// supervisor, publishes their logs and events on the namespace subjects, and
// registers again when the node restarts or forgets it, without stopping the
// workloads. The wire protocol is described in docs/nex-protocol.md and
// implemented with the types of package nexapi.
package agent
