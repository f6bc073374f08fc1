package main

import "context"

func runBenchPull(ctx context.Context, e env, args []string) error { return errNotBuilt }
