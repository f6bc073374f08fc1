package main

import "context"

func runRelay(ctx context.Context, e env, args []string) error { return errNotBuilt }

func runPeer(ctx context.Context, e env, args []string) error { return errNotBuilt }

func runSend(ctx context.Context, e env, args []string) error { return errNotBuilt }

func runDemo(ctx context.Context, e env, args []string) error { return errNotBuilt }
