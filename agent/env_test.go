package agent

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/nexapi"
)

func TestOpenEnvironment(t *testing.T) {
	agentKey, _ := nkeys.CreateCurveKeys()
	agentPub, _ := agentKey.PublicKey()
	sender, _ := nkeys.CreateCurveKeys()
	senderPub, _ := sender.PublicKey()
	other, _ := nkeys.CreateCurveKeys()
	otherPub, _ := other.PublicKey()
	a := &Agent{xkp: agentKey}

	seal := func(v any, to string) map[string]string {
		b, _ := json.Marshal(v)
		sealed, err := sender.Seal(b, to)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"encrypted_by": senderPub, "base64_encrypted_env": base64.StdEncoding.EncodeToString(sealed)}
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    map[string]string
		wantErr string
	}{
		{"plain map", map[string]string{"A": "1"}, map[string]string{"A": "1"}, ""},
		{"nil", nil, nil, ""},
		{"three keys is plain", map[string]string{"encrypted_by": "x", "base64_encrypted_env": "y", "Z": "1"}, map[string]string{"encrypted_by": "x", "base64_encrypted_env": "y", "Z": "1"}, ""},
		{"sealed to us", seal(map[string]string{"TOKEN": "s3cret"}, agentPub), map[string]string{"TOKEN": "s3cret"}, ""},
		{"sealed to another agent", seal(map[string]string{"TOKEN": "s3cret"}, otherPub), nil, "cannot open"},
		{"not base64", map[string]string{"encrypted_by": senderPub, "base64_encrypted_env": "%%%"}, nil, "base64"},
		{"not a string map", seal([]int{1}, agentPub), nil, "JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.openEnvironment(tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestCredsServers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		boot, creds []string
		want        []string
	}{
		{"empty uses ours", []string{"nats://10.0.0.1:4222"}, nil, []string{"nats://10.0.0.1:4222"}},
		{"loopback from a remote node gets ours too", []string{"nats://10.0.0.1:4222"}, []string{"nats://127.0.0.1:4222"}, []string{"nats://127.0.0.1:4222", "nats://10.0.0.1:4222"}},
		{"loopback on loopback kept", []string{"nats://127.0.0.1:4222"}, []string{"nats://localhost:4222"}, []string{"nats://localhost:4222"}},
		{"routable kept", []string{"nats://10.0.0.1:4222"}, []string{"nats://nats.farm:4222"}, []string{"nats://nats.farm:4222"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{opts: Opts{Servers: tc.boot}}
			got := a.credsOf(nexapi.NatsConnectionData{NatsServers: tc.creds}).Servers
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestXkeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), xkeyFile)
	a, err := loadXkey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadXkey(path)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := a.PublicKey()
	pb, _ := b.PublicKey()
	if pa != pb || !strings.HasPrefix(pa, "X") {
		t.Fatalf("public xkey changed across loads: %s, %s", pa, pb)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	os.WriteFile(path, []byte("not a seed"), 0o600)
	if _, err := loadXkey(path); err == nil {
		t.Fatal("corrupt seed accepted")
	}
}
