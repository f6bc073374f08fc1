package main

import "context"

func runFirstboot(ctx context.Context, e env, args []string) error { return errNotBuilt }
