package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/nexfield/nexfield/agent/nexapi"
)

// hasAuth reports whether c carries credentials or TLS material, i.e.
// whether a connection made with it differs from the bootstrap one in more
// than the server list.
func hasAuth(c nexapi.NatsConnectionData) bool {
	return c.NatsUserJWT != "" || c.NatsUserSeed != "" || c.NatsUserNkey != "" ||
		c.NatsUserName != "" || c.NatsUserPassword != "" || c.TLSCert != "" || c.TLSCA != "" || c.TLSFirst
}

// connOptions turns NatsConnectionData into client options, with the rule
// the Nex SDK uses: seed+JWT → JWT auth; nkey+seed → nkey auth;
// user+password → basic auth. TLS fields are file paths.
func connOptions(c nexapi.NatsConnectionData) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case c.NatsUserJWT != "" && c.NatsUserSeed != "":
		opts = append(opts, nats.UserJWTAndSeed(c.NatsUserJWT, c.NatsUserSeed))
	case c.NatsUserNkey != "" && c.NatsUserSeed != "":
		kp, err := nkeys.FromSeed([]byte(c.NatsUserSeed))
		if err != nil {
			return nil, fmt.Errorf("agent: nkey seed: %w", err)
		}
		pub := c.NatsUserNkey
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case c.NatsUserName != "":
		opts = append(opts, nats.UserInfo(c.NatsUserName, c.NatsUserPassword))
	}
	if c.TLSCert != "" && c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	if c.ConnName != "" {
		opts = append(opts, nats.Name(c.ConnName))
	}
	return opts, nil
}

// baseOptions are the options of every long-lived agent connection: never
// give up reconnecting (a Pi on a flaky uplink must come back by itself).
func (a *Agent) baseOptions(name string) []nats.Option {
	return append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(a.opts.ReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(a.opts.PingInterval),
		nats.MaxPingsOutstanding(2),
	}, a.opts.NATSOptions...)
}

// dialBootstrap connects with the operator's servers and credentials file.
// RetryOnFailedConnect lets the agent start before the network is up.
func (a *Agent) dialBootstrap() (*nats.Conn, error) {
	opts := a.baseOptions("nexfield agent " + a.opts.Name)
	// Output that waited for the connection goes out as soon as it is up.
	kick := func(*nats.Conn) { a.logs.kick() }
	opts = append(opts, nats.RetryOnFailedConnect(true), nats.ConnectHandler(kick), nats.ReconnectHandler(kick))
	if a.opts.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.opts.CredsFile))
	}
	nc, err := nats.Connect(strings.Join(a.opts.Servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("agent: connect %s: %w", strings.Join(a.opts.Servers, ","), err)
	}
	return nc, nil
}

// dialWith connects with connection data handed out by the node. A node
// started with -s nats://127.0.0.1:4222 hands out 127.0.0.1, unreachable
// from a Pi, so when those servers fail the bootstrap servers are tried
// with the same credentials. Without credentials the bootstrap connection
// itself is returned (shared reports that), which also saves the memory of
// a second connection on a small board.
func (a *Agent) dialWith(ctx context.Context, c nexapi.NatsConnectionData, name string, persistent bool) (nc *nats.Conn, shared bool, err error) {
	if !hasAuth(c) {
		return a.boot, true, nil
	}
	copts, err := connOptions(c)
	if err != nil {
		return nil, false, err
	}
	var base []nats.Option
	if persistent {
		base = a.baseOptions(name)
	} else {
		base = append([]nats.Option{nats.Name(name)}, a.opts.NATSOptions...)
	}
	base = append(base, nats.Timeout(5*time.Second))
	var tries [][]string
	if len(c.NatsServers) > 0 {
		tries = append(tries, c.NatsServers)
	}
	if !slices.Equal(c.NatsServers, a.opts.Servers) {
		tries = append(tries, a.opts.Servers)
	}
	var last error
	for _, servers := range tries {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		nc, err := nats.Connect(strings.Join(servers, ","), append(base, copts...)...)
		if err == nil {
			return nc, false, nil
		}
		last = err
		a.log.Debug("connect with node credentials failed", "servers", strings.Join(servers, ","), "err", err)
	}
	return nil, false, fmt.Errorf("agent: connect with node credentials: %w", last)
}
