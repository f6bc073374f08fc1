//go:build !field

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchRadioJSON(t *testing.T) {
	var out, errb bytes.Buffer
	plot := filepath.Join(t.TempDir(), "g.svg")
	e := env{stdout: &out, stderr: &errb}
	err := runBenchRadio(t.Context(), e, []string{"--runs", "3", "--sizes", "1024", "--loss", "0,0.2", "--json", "--plot", plot})
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	cells, exchanges := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if m["kind"] == "exchange" {
			exchanges++
			continue
		}
		cells++
		for _, k := range []string{"scheme", "size", "loss", "channel", "goodput_ratio", "delivered", "runs", "failures", "airtime_s"} {
			if _, ok := m[k]; !ok {
				t.Errorf("key %q missing in %s", k, line)
			}
		}
		if m["runs"].(float64) != 3 || m["size"].(float64) != 1024 {
			t.Errorf("cell %s", line)
		}
	}
	// 2 i.i.d. channels + the bursty one, for every scheme.
	if n := len(schemeNames()); cells != 3*n || exchanges != n {
		t.Errorf("%d cells and %d exchanges, want %d and %d", cells, exchanges, 3*n, n)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("</svg>")) {
		t.Errorf("plot: %v %.60q", err, svg)
	}
}

// TestBenchRadioFades: --ge-step clocks the bursty channel by time and
// --outage adds a channel with outages.
func TestBenchRadioFades(t *testing.T) {
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb}
	err := runBenchRadio(t.Context(), e, []string{"--runs", "2", "--sizes", "512", "--loss", "0", "--schemes", "nexfield",
		"--ge", "0.02,0.05,0.05,0.99", "--ge-step", "400ms", "--outage", "20s,60s", "--exchange=false", "--json"})
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var channels []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		channels = append(channels, m["channel"].(string))
		if m["failures"].(float64) != 0 {
			t.Errorf("cell %s failed", line)
		}
	}
	if strings.Join(channels, ",") != "iid,ge,outage" {
		t.Errorf("channels %v, want iid, ge, outage", channels)
	}
}

func TestBenchRadioBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--loss", "1.5"}, {"--sizes", "x"}, {"--schemes", "carrier-pigeon"}, {"--sf", "13"}, {"--ge", "0.1,0.2"}, {"--runs", "0"}, {"extra"},
		{"--outage", "60s"}, {"--outage", "60s,30s"}, {"--outage", "x,100s"}, {"--ge-step", "-1s"},
	} {
		var out bytes.Buffer
		err := runBenchRadio(t.Context(), env{stdout: &out, stderr: &out}, args)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}
