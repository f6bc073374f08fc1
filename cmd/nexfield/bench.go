//go:build !field

package main

import "context"

func runBench(ctx context.Context, e env, args []string) error {
	return subcommands(ctx, e, "bench", args, map[string]command{
		"radio":     {"link goodput vs the LoRa airtime limit on the virtual-time simulator", runBenchRadio},
		"inference": {"classifier accuracy, baselines and latency", runBenchInference},
		"pull":      {"artifact pull throughput from the object store", runBenchPull},
		"rss":       {"resident memory of the agent and the peer, per binary", runBenchRSS},
	})
}
