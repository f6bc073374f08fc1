// Package workload supervises the processes of workloads on the agent's
// machine: services restarted with back-off, jobs run once, functions kept
// warm behind a NATS trigger subject, each recorded on disk so that an agent
// restart (or a power cut) re-adopts them instead of losing or duplicating them.
package workload
