package main

import (
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/internal/natstest"
)

// TestRelayConnectsWithWorkloadCredentials runs one embedded server per
// credential shape the agent can hand a workload, each requiring that shape
// and nothing else. The environment is the one nexapi.WorkloadNATS.Environ
// writes (agent/workload puts exactly that into the process), read back the
// way "nexfield relay" reads it: the right credentials connect, wrong ones
// fail with an error naming what was tried, none at all fail too.
func TestRelayConnectsWithWorkloadCredentials(t *testing.T) {
	user := newKeys(t, nkeys.CreateUser)
	other := newKeys(t, nkeys.CreateUser)
	op := newOperator(t)
	for _, tc := range []struct {
		name        string
		server      func(*server.Options)
		right       func(url string) nexapi.WorkloadNATS
		wrong       func(url string) nexapi.WorkloadNATS
		wantMention string // in the error of the wrong credential
	}{
		{
			name:        "jwt",
			server:      op.configure,
			right:       func(u string) nexapi.WorkloadNATS { return op.user(t, op.account, u) },
			wrong:       func(u string) nexapi.WorkloadNATS { return op.user(t, newKeys(t, nkeys.CreateAccount), u) },
			wantMention: "JWT credentials from NEX_WORKLOAD_NATS_B64_JWT and NEX_WORKLOAD_NATS_NKEY",
		},
		{
			name:        "nkey",
			server:      func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: user.pub}} },
			right:       func(u string) nexapi.WorkloadNATS { return nexapi.WorkloadNATS{Servers: []string{u}, Seed: user.seed} },
			wrong:       func(u string) nexapi.WorkloadNATS { return nexapi.WorkloadNATS{Servers: []string{u}, Seed: other.seed} },
			wantMention: "nkey credentials from NEX_WORKLOAD_NATS_NKEY (" + other.pub + ")",
		},
		{
			name:   "user and password",
			server: func(o *server.Options) { o.Users = []*server.User{{Username: "relay", Password: "pa55"}} },
			right: func(u string) nexapi.WorkloadNATS {
				return nexapi.WorkloadNATS{Servers: []string{u}, User: "relay", Password: "pa55"}
			},
			wrong: func(u string) nexapi.WorkloadNATS {
				return nexapi.WorkloadNATS{Servers: []string{u}, User: "relay", Password: "wrong"}
			},
			wantMention: "user relay from NEX_WORKLOAD_NATS_USER",
		},
		{
			// Nex connection data has no token field; a token travels in
			// the server URL, which the relay dials as it is.
			name:   "token in the server URL",
			server: func(o *server.Options) { o.Authorization = "t0ken" },
			right: func(u string) nexapi.WorkloadNATS {
				return nexapi.WorkloadNATS{Servers: []string{strings.Replace(u, "nats://", "nats://t0ken@", 1)}}
			},
			wrong: func(u string) nexapi.WorkloadNATS {
				return nexapi.WorkloadNATS{Servers: []string{strings.Replace(u, "nats://", "nats://wr0ng@", 1)}}
			},
			wantMention: "nats://REDACTED@127.0.0.1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := natstest.Options(t)
			o.JetStream = false // operator mode would need a system account for it
			tc.server(o)
			s := natstest.RunServerWithOptions(t, o)
			url := s.ClientURL()

			w := tc.right(url)
			nc, err := connectRelay(strings.Join(w.Servers, ","), "", "relay-test", getenvOf(w.Environ()))
			if err != nil {
				t.Fatalf("right credentials: %v", err)
			}
			if err := nc.Flush(); err != nil {
				t.Errorf("right credentials: round trip: %v", err)
			}
			nc.Close()

			w = tc.wrong(url)
			_, err = connectRelay(strings.Join(w.Servers, ","), "", "relay-test", getenvOf(w.Environ()))
			if err == nil || !strings.Contains(err.Error(), "Authorization Violation") || !strings.Contains(err.Error(), tc.wantMention) {
				t.Errorf("wrong credentials: got %v, want an authorization violation naming %q", err, tc.wantMention)
			}
			if strings.Contains(err.Error(), "wr0ng") {
				t.Errorf("wrong credentials: the error shows the token: %v", err)
			}

			none := nexapi.WorkloadNATS{Servers: []string{url}}
			if nc, err := connectRelay(url, "", "relay-test", getenvOf(none.Environ())); err == nil {
				nc.Close()
				t.Errorf("no credentials: connected, want the server to require %s", tc.name)
			}
		})
	}
}

func TestRelayRejectsBrokenWorkloadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, env, want string
	}{
		{"jwt without seed", "NEX_WORKLOAD_NATS_B64_JWT=ZXlK", "NEX_WORKLOAD_NATS_NKEY holds no seed"},
		{"seed that is no seed", "NEX_WORKLOAD_NATS_NKEY=SUNOTASEED", "NEX_WORKLOAD_NATS_NKEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connectRelay("nats://127.0.0.1:1", "", "relay-test", getenvOf([]string{tc.env}))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "relay: ") {
				t.Errorf("got %v, want a relay error about %q", err, tc.want)
			}
		})
	}
}

// getenvOf is os.Getenv over KEY=VALUE entries.
func getenvOf(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

type keys struct {
	kp        nkeys.KeyPair
	pub, seed string
}

func newKeys(t *testing.T, create func() (nkeys.KeyPair, error)) keys {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	return keys{kp: kp, pub: pub, seed: string(seed)}
}

// operator is a server in operator mode trusting one operator that signed
// one account.
type operator struct {
	claims  *jwt.OperatorClaims
	account keys
	accJWT  string
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	okeys := newKeys(t, nkeys.CreateOperator)
	ojwt, err := jwt.NewOperatorClaims(okeys.pub).Encode(okeys.kp)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	acc := newKeys(t, nkeys.CreateAccount)
	ajwt, err := jwt.NewAccountClaims(acc.pub).Encode(okeys.kp)
	if err != nil {
		t.Fatal(err)
	}
	return &operator{claims: oc, account: acc, accJWT: ajwt}
}

func (op *operator) configure(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{op.claims}
	r := &server.MemAccResolver{}
	_ = r.Store(op.account.pub, op.accJWT)
	o.AccountResolver = r
}

// user mints a user JWT signed by account (the server knows only
// op.account) and returns it as the workload's connection.
func (op *operator) user(t *testing.T, account keys, url string) nexapi.WorkloadNATS {
	t.Helper()
	u := newKeys(t, nkeys.CreateUser)
	ujwt, err := jwt.NewUserClaims(u.pub).Encode(account.kp)
	if err != nil {
		t.Fatal(err)
	}
	return nexapi.WorkloadNATS{Servers: []string{url}, JWT: ujwt, Seed: u.seed}
}
