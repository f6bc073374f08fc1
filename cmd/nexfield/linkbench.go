package main

import "context"

func runBenchRadio(ctx context.Context, e env, args []string) error { return errNotBuilt }
