package agent_test

import (
	"errors"
	"testing"

	"github.com/nexfield/nexfield/agent"
)

func TestInvalidOpts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts agent.Opts
		ok   bool
	}{
		{"defaults", agent.Opts{}, true},
		{"ingress ip", agent.Opts{IngressHost: "192.168.4.20"}, true},
		{"ingress ipv6", agent.Opts{IngressHost: "fd00::7"}, true},
		{"ingress name", agent.Opts{IngressHost: "gw-1.farm.example"}, true},
		{"ingress with port", agent.Opts{IngressHost: "10.0.0.1:80"}, false},
		{"ingress with space", agent.Opts{IngressHost: "gw 1"}, false},
		{"nexus with dot", agent.Opts{Nexus: "a.b"}, false},
		{"type with underscore", agent.Opts{Type: "nex_field"}, false},
		{"name with slash", agent.Opts{Name: "pi/1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.StateDir = t.TempDir()
			_, err := agent.New(&o)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, agent.ErrInvalidOpts)) {
				t.Errorf("New: %v", err)
			}
		})
	}
}
