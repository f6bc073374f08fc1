package main

import "context"

func runRadio(ctx context.Context, e env, args []string) error { return errNotBuilt }
