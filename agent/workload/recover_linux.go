package workload

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// outputHolder finds the process a workload's output (outs) belongs to
// without its record: the leader of a process group (a workload runs in
// its own) whose stdout or stderr is that file. Its children hold the file
// too but do not lead the group.
func outputHolder(outs [2]string) (pid int, start uint64, ok bool) {
	var want [2]syscall.Stat_t
	have := false
	for i, p := range outs {
		if syscall.Stat(p, &want[i]) == nil {
			have = true
		}
	}
	if !have {
		return 0, 0, false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	self := os.Getpid()
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == self || procGroup(p) != p {
			continue
		}
		for _, fd := range []string{"1", "2"} {
			var st syscall.Stat_t
			if syscall.Stat("/proc/"+e.Name()+"/fd/"+fd, &st) != nil {
				continue
			}
			for _, w := range want {
				if w.Ino != 0 && st.Dev == w.Dev && st.Ino == w.Ino {
					if start, err := procStart(p); err == nil {
						return p, start, true
					}
				}
			}
		}
	}
	return 0, 0, false
}

// procGroup is the process group of pid, -1 when unknown.
func procGroup(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	st, ok := parseStat(b)
	if !ok {
		return -1
	}
	return st.pgrp
}

// startTime turns a /proc start time (clock ticks since boot) into
// wall-clock time, from btime in /proc/stat.
func startTime(start uint64) time.Time {
	b, _ := os.ReadFile("/proc/stat")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			if bt, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(bt, 0).Add(ticks(start))
			}
		}
	}
	return time.Time{}
}
