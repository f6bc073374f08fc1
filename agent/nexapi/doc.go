// Package nexapi holds the wire types of the Nex node ↔ agent protocol and
// the subjects they travel on, so that nexfield speaks the same JSON as the
// real Nex node (synadia-io/nex at e828c58).
//
// The real node decodes with generated structs that reject a message when a
// "required" key is missing, even when its value may be empty. Every required
// key therefore has no omitempty here; only keys the schemas mark optional and
// the node omits on the wire carry omitempty. JSON names follow the schemas in
// docs/nex-protocol.md; where schema and Go structs of the node disagree, the
// structs won (for example AgentSummary.SupportedLifecycles is a comma-joined
// string, and the register request's "capabilities" key does not exist).
package nexapi
