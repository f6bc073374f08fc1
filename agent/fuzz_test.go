package agent

import (
	"encoding/json"
	"testing"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// FuzzStartRequest feeds arbitrary STARTWORKLOAD bodies through the
// validation that runs before anything else. It must never panic, and what
// it accepts must be a complete, runnable spec.
func FuzzStartRequest(f *testing.F) {
	for _, s := range []string{
		`{"request":{"description":"","name":"hello","namespace":"default","run_request":"{\"uri\":\"nats://artifacts/echo\",\"argv\":[\"hi\"]}","tags":{},"workload_lifecycle":"service","workload_type":"nexfield"},"workload_creds":{"conn_name":"","nats_servers":["nats://127.0.0.1:4222"],"nats_user_jwt":"","nats_user_name":"","nats_user_nkey":"","nats_user_password":"","nats_user_seed":"","tls_ca":"","tls_cert":"","tls_first":false,"tls_key":""}}`,
		`{"request":{"name":"f","namespace":"default","run_request":"{\"uri\":\"file:///bin/cat\",\"trigger_subject\":\"a.b\",\"trigger_timeout\":\"2s\"}","workload_lifecycle":"function"}}`,
		`{"request":{"name":"s","namespace":"ns","run_request":"{\"uri\":\"nats://b/o:v2\",\"digest\":\"SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\",\"restart\":{\"max_restarts\":3,\"initial_backoff\":\"1s\",\"max_backoff\":\"1m\"},\"workdir\":\"/tmp\"}","workload_lifecycle":"service"}}`,
		`{"request":{"run_request":"{}"}}`,
		`{}`, `null`, `[]`, `{"request":`,
	} {
		f.Add([]byte(s))
	}
	schema, err := nexapi.CompileStartRequestSchema(StartRequestSchema)
	if err != nil {
		f.Fatal(err)
	}
	a := &Agent{schema: schema, opts: Opts{Type: DefaultType}}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, _, err := a.specFor("FUZZID", body)
		if err != nil {
			if _, ok := err.(*badRequestError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if spec.ID != "FUZZID" || spec.URI == "" || spec.Namespace == "" || spec.Name == "" || !json.Valid(spec.Request) {
			t.Fatalf("accepted incomplete spec %+v", spec)
		}
		switch spec.Lifecycle {
		case lifecycleService, lifecycleJob:
			if spec.TriggerSubject != "" {
				t.Fatalf("trigger subject on %s", spec.Lifecycle)
			}
		case lifecycleFunction:
			if spec.TriggerSubject == "" {
				t.Fatal("function without trigger subject")
			}
		default:
			t.Fatalf("accepted lifecycle %q", spec.Lifecycle)
		}
		if spec.Restart.InitialBackoff < 0 || spec.Restart.MaxBackoff < 0 || spec.TriggerTimeout < 0 {
			t.Fatalf("negative duration in %+v", spec)
		}
	})
}
