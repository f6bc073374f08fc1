// Package nodesim plays the node's side of the Nex agent protocol on a NATS
// connection, for tests and the demo: it answers RREGISTER and REGISTER
// (with existing_state when it keeps state), tracks agent heartbeats and
// health like the real node, publishes the node heartbeat, and sends
// STARTWORKLOAD, STOPWORKLOAD, QUERYWORKLOADS, GETWORKLOAD, PING and
// SETLAMEDUCK to agents. It can be restarted to forget its registrations.
// Its messages match a capture of the real node field for field; it is not a
// replacement for the real node.
package nodesim
