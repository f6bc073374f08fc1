package nexapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// The environment variables that carry a workload's NATS connection into its
// process. The first three are the native nexlet's names and meanings
// (docs/nex-protocol.md §8); the native nexlet writes all three, empty or
// not, and nothing else. Nex's connection data also has user and password,
// which the native nexlet drops; nexfield passes them under the last two
// names, so a workload given a user is not left to connect anonymously.
const (
	// EnvNATSServers holds the servers, comma-separated. A server URL may
	// itself carry credentials (nats://TOKEN@host, nats://user:pass@host),
	// which the NATS client uses as they are.
	EnvNATSServers = "NEX_WORKLOAD_NATS_SERVERS"
	// EnvNATSNkey holds the user nkey seed (SU…), despite its name: with a
	// JWT the seed signs for it, alone it is nkey authentication.
	EnvNATSNkey = "NEX_WORKLOAD_NATS_NKEY"
	// EnvNATSB64JWT holds the user JWT, standard base64.
	EnvNATSB64JWT = "NEX_WORKLOAD_NATS_B64_JWT"
	// EnvNATSUser and EnvNATSPassword are basic authentication; written
	// only when the connection data names a user.
	EnvNATSUser     = "NEX_WORKLOAD_NATS_USER"
	EnvNATSPassword = "NEX_WORKLOAD_NATS_PASSWORD"
)

// ErrWorkloadEnv wraps every inconsistency ParseWorkloadEnv finds.
var ErrWorkloadEnv = errors.New("nexapi: workload environment")

// WorkloadNATS is a workload's NATS connection as its environment carries
// it. Which credentials apply follows the rule the Nex SDK uses: a JWT with
// a seed is JWT authentication, a seed alone nkey authentication, a user
// basic authentication (Auth names the one that applies).
type WorkloadNATS struct {
	Servers  []string
	JWT      string // the user JWT itself, not base64
	Seed     string // user nkey seed
	User     string
	Password string
}

// Kinds of authentication Auth reports.
const (
	AuthNone  = ""
	AuthJWT   = "jwt"
	AuthNkey  = "nkey"
	AuthBasic = "user"
)

// Auth is the kind of authentication w carries: AuthJWT, AuthNkey,
// AuthBasic or AuthNone (credentials, if any, are then in the server URLs).
func (w WorkloadNATS) Auth() string {
	switch {
	case w.JWT != "" && w.Seed != "":
		return AuthJWT
	case w.Seed != "":
		return AuthNkey
	case w.User != "":
		return AuthBasic
	}
	return AuthNone
}

// Source says which credentials w carries and from which variables, for
// error messages ("nkey credentials from NEX_WORKLOAD_NATS_NKEY").
func (w WorkloadNATS) Source() string {
	switch w.Auth() {
	case AuthJWT:
		return "JWT credentials from " + EnvNATSB64JWT + " and " + EnvNATSNkey
	case AuthNkey:
		return "nkey credentials from " + EnvNATSNkey
	case AuthBasic:
		return "user " + w.User + " from " + EnvNATSUser
	}
	return "no credentials (beyond any in the server URLs)"
}

// Environ is w as KEY=VALUE entries for a process environment, in a fixed
// order: the native nexlet's three, then user and password if there is a
// user.
func (w WorkloadNATS) Environ() []string {
	env := []string{
		EnvNATSServers + "=" + strings.Join(w.Servers, ","),
		EnvNATSNkey + "=" + w.Seed,
		EnvNATSB64JWT + "=" + base64.StdEncoding.EncodeToString([]byte(w.JWT)),
	}
	if w.User != "" {
		env = append(env, EnvNATSUser+"="+w.User, EnvNATSPassword+"="+w.Password)
	}
	return env
}

// ParseWorkloadEnv reads what Environ wrote (or the native nexlet did)
// through getenv, os.Getenv in a workload. An empty variable counts as
// unset, as the native nexlet writes all three of its own even when empty.
// Credentials that cannot work are an error wrapping ErrWorkloadEnv that
// names the variable, rather than a silent fall-back to connecting without
// them.
func ParseWorkloadEnv(getenv func(string) string) (WorkloadNATS, error) {
	var w WorkloadNATS
	for _, s := range strings.Split(getenv(EnvNATSServers), ",") {
		if s = strings.TrimSpace(s); s != "" {
			w.Servers = append(w.Servers, s)
		}
	}
	if b64 := getenv(EnvNATSB64JWT); b64 != "" {
		jwt, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			// Tolerate the unpadded URL alphabet some tools write.
			if jwt, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
				return WorkloadNATS{}, fmt.Errorf("%w: %s is not base64: %w", ErrWorkloadEnv, EnvNATSB64JWT, err)
			}
		}
		w.JWT = string(jwt)
	}
	w.Seed = getenv(EnvNATSNkey)
	w.User, w.Password = getenv(EnvNATSUser), getenv(EnvNATSPassword)
	switch {
	case w.Seed != "" && !strings.HasPrefix(w.Seed, "SU"):
		return WorkloadNATS{}, fmt.Errorf("%w: %s does not hold a user nkey seed (one starting with SU)", ErrWorkloadEnv, EnvNATSNkey)
	case w.JWT != "" && w.Seed == "":
		return WorkloadNATS{}, fmt.Errorf("%w: %s is set but %s holds no seed to sign with", ErrWorkloadEnv, EnvNATSB64JWT, EnvNATSNkey)
	case w.Password != "" && w.User == "":
		return WorkloadNATS{}, fmt.Errorf("%w: %s is set without %s", ErrWorkloadEnv, EnvNATSPassword, EnvNATSUser)
	}
	return w, nil
}
