package workload

import "time"

// Usage is what the live processes of one workload's process group use.
type Usage struct {
	Processes int
	Threads   int
	// CPU is user+system time of the live processes and of the children
	// they have reaped; time of processes that exited unreaped is lost.
	CPU time.Duration
	RSS uint64 // resident set, bytes
}

// userHZ is the unit of the /proc tick counters: fixed at 100 by the Linux
// ABI on every architecture, whatever the kernel's internal HZ.
const userHZ = 100
