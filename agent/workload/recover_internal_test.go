package workload

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestCloseTruncatedJSON cuts a record at every byte: what comes back
// always parses and holds only values the record really had, none of them
// cut (a pid of 12 from 12345 would name another process).
func TestCloseTruncatedJSON(t *testing.T) {
	full, err := json.MarshalIndent(record{
		Status: Status{Spec: Spec{ID: "w1", Name: "relay", Namespace: "ns", Lifecycle: Service, URI: "nats://b/o",
			Argv: []string{"relay", "--address", "1"}, Env: map[string]string{"A": "x"}, Creds: Creds{Servers: []string{"nats://h:4222"}, User: "u"},
			Request: json.RawMessage(`{"request":{"name":"relay","tags":{"a":"b"}},"n":[1,2,3]}`)},
			State: Running, PID: 12345, StartedAt: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC), ExitCode: 0},
		PIDStart: 987654, BootID: "2f7c", Digest: "SHA-256=abc", Path: "/var/lib/nexfield/artifacts/abc", UpdatedAt: time.Date(2026, 11, 26, 8, 0, 1, 0, time.UTC),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(full, &want); err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= len(full); n++ {
		got := closeTruncatedJSON(full[:n])
		if len(got) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("cut at %d: %q does not parse: %v", n, got, err)
		}
		if !within(v, want) {
			t.Fatalf("cut at %d: %s holds a value the record did not have", n, got)
		}
	}
	if got := closeTruncatedJSON(full); !reflect.DeepEqual(got, full) {
		t.Errorf("a whole record changed: %s", got)
	}
	if got := closeTruncatedJSON(append(append([]byte(nil), full...), "\n  ],\n  \"pid\": 9\n}"...)); !reflect.DeepEqual(got, full) {
		t.Errorf("garbage after a whole record kept: %s", got)
	}
}

// within reports whether every value in got is the one at the same place
// in want (objects may lack keys, arrays may end early).
func within(got, want any) bool {
	switch g := got.(type) {
	case map[string]any:
		w, ok := want.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range g {
			if wv, ok := w[k]; !ok || !within(v, wv) {
				return false
			}
		}
		return true
	case []any:
		w, ok := want.([]any)
		if !ok || len(g) > len(w) {
			return false
		}
		for i := range g {
			if !within(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}
