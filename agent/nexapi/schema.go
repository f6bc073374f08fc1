package nexapi

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ErrSchema marks a start request that does not satisfy the agent's schema.
var ErrSchema = errors.New("nexapi: start request does not match schema")

// StartRequestSchema is a compiled start_request_schema, the JSON Schema an
// agent sends (as a string) at REGISTER and the node and the agent validate
// run_request strings against.
type StartRequestSchema struct {
	s *jsonschema.Schema
}

// CompileStartRequestSchema parses and compiles a schema string, as the node
// does at REGISTER ("{}" is valid). Remote and file $refs are not followed.
func CompileStartRequestSchema(schema string) (*StartRequestSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("nexapi: parse start request schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource("start_request.json", doc); err != nil {
		return nil, fmt.Errorf("nexapi: start request schema: %w", err)
	}
	s, err := c.Compile("start_request.json")
	if err != nil {
		return nil, fmt.Errorf("nexapi: compile start request schema: %w", err)
	}
	return &StartRequestSchema{s: s}, nil
}

// Validate checks that runRequest is one JSON document satisfying the
// schema. The error wraps ErrSchema for schema violations and says where.
func (s *StartRequestSchema) Validate(runRequest []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(runRequest))
	if err != nil {
		return fmt.Errorf("nexapi: run_request is not valid JSON: %w", err)
	}
	if err := s.s.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w: %s", ErrSchema, violations(ve))
		}
		return fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return nil
}

// violations turns the library's multi-line report into one line without
// the schema's internal URL: "at '/argv/0': got number, want string".
func violations(ve *jsonschema.ValidationError) string {
	lines := strings.Split(strings.TrimSpace(ve.Error()), "\n")
	if len(lines) > 1 {
		lines = lines[1:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(strings.TrimSpace(l), "- ")
	}
	return strings.Join(lines, "; ")
}
