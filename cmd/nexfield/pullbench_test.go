//go:build !field

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nexfield/nexfield/internal/natstest"
)

func TestBenchPullAgainstServer(t *testing.T) {
	s := natstest.RunServer(t)
	var out, errb bytes.Buffer
	args := []string{"--server", s.ClientURL(), "--size", "2", "--runs", "1", "--dir", t.TempDir()}
	if err := runBenchPull(t.Context(), env{stdout: &out, stderr: &errb}, args); err != nil {
		t.Fatalf("bench pull: %v\n%s", err, errb.String())
	}
	for _, want := range []string{"object 2 MiB, 1 runs", "get  (ObjectStore.Get", "pull (cache:", "ratio pull/get throughput"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := runBenchPull(t.Context(), env{stdout: &out, stderr: &errb}, []string{"--size", "0"}); err == nil {
		t.Errorf("--size 0 accepted")
	}
}
