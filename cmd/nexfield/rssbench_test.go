//go:build !field

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nexfield/nexfield/internal/footprint"
)

func TestBenchRSSTable(t *testing.T) {
	m := func(rss, anon float64) footprint.Memory {
		return footprint.Memory{RSS: uint64(rss * (1 << 20)), HWM: uint64(rss * (1 << 20)), Anon: uint64(anon * (1 << 20)), File: uint64((rss - anon) * (1 << 20))}
	}
	reps := []*footprint.Report{
		{Bin: "/tmp/x/field", AgentIdle: m(12, 4), AgentServices: m(15, 7), Peer: m(14, 5), Services: 50, Messages: 5},
		{Bin: "/tmp/x/full", AgentIdle: m(22, 6), AgentServices: m(25, 8), Peer: m(26, 8), Services: 50, Messages: 5},
	}
	var out bytes.Buffer
	writeRSSTable(env{stdout: &out}, reps, []string{"GOGC=50"}, 3*time.Second)
	for _, want := range []string{"after 3s idle, environment [GOGC=50]", "field", "full",
		"agent, 50 sleeping services", "15.0 / 15.0 (7.0 + 8.0)", "peer, sim radio, 5 classified", "26.0 / 26.0 (8.0 + 18.0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchRSSUsage(t *testing.T) {
	err := dispatch(t.Context(), env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, []string{"bench", "rss", "--services", "0"})
	if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "--services") {
		t.Errorf("got %v, want a usage error about --services", err)
	}
}
