package nexapi_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// getenvOf is os.Getenv over KEY=VALUE entries.
func getenvOf(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestWorkloadEnvRoundTrip(t *testing.T) {
	servers := []string{"nats://a:4222", "nats://b:4222"}
	for _, tc := range []struct {
		name     string
		in       nexapi.WorkloadNATS
		wantAuth string
		wantEnv  int
	}{
		{"servers only", nexapi.WorkloadNATS{Servers: servers}, nexapi.AuthNone, 3},
		{"jwt", nexapi.WorkloadNATS{Servers: servers, JWT: "eyJ0eXAi.eyJqdGki.sig", Seed: "SUAJWTSEED"}, nexapi.AuthJWT, 3},
		{"nkey", nexapi.WorkloadNATS{Servers: servers, Seed: "SUANKEYSEED"}, nexapi.AuthNkey, 3},
		{"user", nexapi.WorkloadNATS{Servers: servers, User: "alice", Password: "pa=ss,word"}, nexapi.AuthBasic, 5},
		{"user without password", nexapi.WorkloadNATS{Servers: servers, User: "bob"}, nexapi.AuthBasic, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.in.Environ()
			if len(env) != tc.wantEnv {
				t.Errorf("got %d variables %q, want %d", len(env), env, tc.wantEnv)
			}
			got, err := nexapi.ParseWorkloadEnv(getenvOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Errorf("got %+v, want %+v", got, tc.in)
			}
			if got.Auth() != tc.wantAuth {
				t.Errorf("auth %q, want %q", got.Auth(), tc.wantAuth)
			}
		})
	}
}

// TestWorkloadEnvNative reads what the native nexlet writes: the three
// variables, the empty ones included, the JWT in standard base64.
func TestWorkloadEnvNative(t *testing.T) {
	got, err := nexapi.ParseWorkloadEnv(getenvOf([]string{
		"NEX_WORKLOAD_NATS_SERVERS=nats://127.0.0.1:4222",
		"NEX_WORKLOAD_NATS_NKEY=",
		"NEX_WORKLOAD_NATS_B64_JWT=",
	}))
	if err != nil || got.Auth() != nexapi.AuthNone || len(got.Servers) != 1 {
		t.Errorf("got %+v, %v; want one server and no credentials", got, err)
	}
	got, err = nexapi.ParseWorkloadEnv(getenvOf([]string{
		"NEX_WORKLOAD_NATS_NKEY=SUAX",
		"NEX_WORKLOAD_NATS_B64_JWT=ZXlKMGVYQWkuZXlKcWRHa2kuc2ln", // eyJ0eXAi.eyJqdGki.sig
	}))
	if err != nil || got.JWT != "eyJ0eXAi.eyJqdGki.sig" || got.Auth() != nexapi.AuthJWT {
		t.Errorf("got %+v, %v; want the decoded JWT", got, err)
	}
}

func TestWorkloadEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		wantText string
	}{
		{"jwt without seed", []string{"NEX_WORKLOAD_NATS_B64_JWT=ZXlK"}, "NEX_WORKLOAD_NATS_NKEY holds no seed"},
		{"jwt not base64", []string{"NEX_WORKLOAD_NATS_B64_JWT=!!", "NEX_WORKLOAD_NATS_NKEY=SUAX"}, "not base64"},
		{"account seed", []string{"NEX_WORKLOAD_NATS_NKEY=SAAX"}, "does not hold a user nkey seed"},
		{"password without user", []string{"NEX_WORKLOAD_NATS_PASSWORD=x"}, "NEX_WORKLOAD_NATS_PASSWORD is set without NEX_WORKLOAD_NATS_USER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nexapi.ParseWorkloadEnv(getenvOf(tc.env))
			if !errors.Is(err, nexapi.ErrWorkloadEnv) || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("got %v, want ErrWorkloadEnv containing %q", err, tc.wantText)
			}
		})
	}
}
