package workload

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// GroupsUsage reads /proc once and sums, for each of pgids, the live
// processes of that process group (a workload's group, led by the process
// the supervisor started). A group without a live process is absent from
// the result. One scan serves every workload: it costs about as much as
// reading one stat file per process on the machine.
func GroupsUsage(pgids ...int) (map[int]Usage, error) {
	out := make(map[int]Usage, len(pgids))
	want := make(map[int]bool, len(pgids))
	for _, g := range pgids {
		if g > 0 {
			want[g] = true
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	dir, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("workload: usage: %w", err)
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("workload: usage: %w", err)
	}
	page := uint64(os.Getpagesize())
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		// A process may exit between the listing and the read: skip it.
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		st, ok := parseStat(b)
		if !ok || !want[st.pgrp] || st.state == 'Z' || st.state == 'X' {
			continue
		}
		u := out[st.pgrp]
		u.Processes++
		u.Threads += st.threads
		u.CPU += ticks(st.utime + st.stime + st.cutime + st.cstime)
		u.RSS += st.rssPages * page
		out[st.pgrp] = u
	}
	return out, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / userHZ) }

type procStat struct {
	state                        byte
	pgrp                         int
	utime, stime, cutime, cstime uint64
	threads                      int
	rssPages                     uint64
}

// parseStat reads the fields of /proc/<pid>/stat that GroupUsage needs.
// The command name (field 2) may contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); rss is field 24.
	if len(f) < 22 || len(f[0]) != 1 {
		return procStat{}, false
	}
	num := func(k int) (uint64, bool) {
		v, err := strconv.ParseUint(string(f[k]), 10, 64)
		return v, err == nil
	}
	var st procStat
	var ok [7]bool
	var pgrp, threads uint64
	st.state = f[0][0]
	pgrp, ok[0] = num(2)
	st.utime, ok[1] = num(11)
	st.stime, ok[2] = num(12)
	// cutime and cstime are signed in the kernel's format, never negative
	// in practice.
	st.cutime, ok[3] = num(13)
	st.cstime, ok[4] = num(14)
	threads, ok[5] = num(17)
	st.rssPages, ok[6] = num(21)
	for _, o := range ok {
		if !o {
			return procStat{}, false
		}
	}
	st.pgrp, st.threads = int(pgrp), int(threads)
	return st, true
}
