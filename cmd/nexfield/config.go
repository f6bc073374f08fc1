package main

import "context"

func runConfig(ctx context.Context, e env, args []string) error { return errNotBuilt }
