package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/nexapi"
	"github.com/nexfield/nexfield/internal/natstest"
	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
	"github.com/nexfield/nexfield/relay"
)

// TestRelayTellsSystemdOnceServing runs "nexfield relay" on the simulated
// channel against an embedded server with NOTIFY_SOCKET set: READY=1 comes
// once the relay serves (a request sent the moment it arrives is answered,
// here with 404 for a peer nobody configured), the service carries the
// build's version, and STOPPING=1 ends it.
func TestRelayTellsSystemdOnceServing(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	read := func(timeout time.Duration) string {
		conn.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub, err := sim.ListenHub(ctx, "127.0.0.1:0", &sim.HubOpts{Opts: sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}}})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	s := natstest.RunServer(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "link.key")
	if err := os.WriteFile(key, []byte(testKey), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, env{stdout: io.Discard, stderr: io.Discard}, []string{"relay",
			"--driver", "sim", "--hub", hub.Addr(), "--server", s.ClientURL(), "--psk-file", key,
			"--state-dir", dir, "--peers", "north=2"})
	}()
	var first string
	for deadline := time.Now().Add(10 * time.Second); first == "" && time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("relay ended before it was ready: %v", err)
		default:
		}
		first = read(100 * time.Millisecond)
	}
	if first != "READY=1\nSTATUS=serving field.> for peers [north=2]: 0 answered, 0 errors, 0 queued" {
		t.Fatalf("first message %q, want READY with the relay's status", first)
	}
	client := natstest.Connect(t, s)
	resp, err := client.Request("field.sentiment.south", []byte("anyone?"), 5*time.Second)
	if err != nil {
		t.Fatalf("request right after READY: %v", err)
	}
	if c := resp.Header.Get(micro.ErrorCodeHeader); c != "404" {
		t.Errorf("unknown peer: code %q, want 404", c)
	}
	resp, err = client.Request("$SRV.INFO.nexfield-relay", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(resp.Data, &info); err != nil || info.Version != semver(version) {
		t.Errorf("service version %q (%v), want %q", info.Version, err, semver(version))
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	stopping := false
	for m := read(time.Second); m != ""; m = read(200 * time.Millisecond) {
		stopping = stopping || strings.HasPrefix(m, "STOPPING=1")
	}
	if !stopping {
		t.Error("no STOPPING=1 on the way out")
	}
}

// TestSemver turns build stamps into versions the relay (and micro) take.
func TestSemver(t *testing.T) {
	for _, tc := range []struct{ stamp, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-4-g1a2b3c4", "1.2.3+4.g1a2b3c4"},
		{"v1.2.3-4-g1a2b3c4-dirty", "1.2.3+4.g1a2b3c4.dirty"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc.1", "1.2.3-rc.1"},
		{"v1.2.3-rc.1-2-g0abc123", "1.2.3-rc.1+2.g0abc123"},
		{"454a088", "0.0.0+454a088"},
		{"0454a08-dirty", "0.0.0+0454a08-dirty"},
		{"dev", "0.0.0+dev"},
		{"", "0.0.0"},
		{"v1.2", "0.0.0+v1.2"},
		{"weird/branch name", "0.0.0+weird-branch-name"},
	} {
		got := semver(tc.stamp)
		if got != tc.want {
			t.Errorf("semver(%q) = %q, want %q", tc.stamp, got, tc.want)
		}
		if _, err := relay.New(&nats.Conn{}, relay.OverLink(nil), &relay.Opts{Version: got}); err != nil {
			t.Errorf("semver(%q) = %q: the relay refuses it: %v", tc.stamp, got, err)
		}
	}
}

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
