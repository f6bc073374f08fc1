package workload

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Field 2 is the command name in parentheses; it may hold spaces and
	// parentheses of its own.
	line := "4242 (a) (b c)) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 6 0 12345 1000000 321 18446744073709551615\n"
	st, ok := parseStat([]byte(line))
	if !ok {
		t.Fatal("not parsed")
	}
	want := procStat{state: 'S', pgrp: 4240, utime: 250, stime: 50, cutime: 7, cstime: 3, threads: 6, rssPages: 321}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", "4242 (x) S 1 4240 4240 0 -1 4194560 100 0 0 0 2x5 50 7 3 20 0 6 0 1 1 321"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

// TestGroupsUsage: every live process of a group counts, none outside it.
func TestGroupsUsage(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	// No process has a pid above pid_max (at most 2^22), so no group has
	// that id either.
	nobody := 1<<22 + 1
	var got map[int]Usage
	deadline := time.Now().Add(5 * time.Second)
	for got[cmd.Process.Pid].Processes != 3 && time.Now().Before(deadline) {
		var err error
		if got, err = GroupsUsage(cmd.Process.Pid, nobody, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if u := got[cmd.Process.Pid]; u.Processes != 3 || u.Threads != 3 || u.RSS == 0 {
		t.Errorf("usage of sh + 2 sleeps: %+v", u)
	}
	if len(got) != 1 {
		t.Errorf("usage of groups without processes: %v", got)
	}
}

// BenchmarkGroupsUsage: one metrics reading, a scan of every process.
func BenchmarkGroupsUsage(b *testing.B) {
	n, _ := os.ReadDir("/proc")
	b.ReportMetric(float64(len(n)), "proc_entries")
	for b.Loop() {
		if _, err := GroupsUsage(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}
