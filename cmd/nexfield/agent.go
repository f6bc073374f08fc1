package main

import "context"

func runAgent(ctx context.Context, e env, args []string) error { return errNotBuilt }
