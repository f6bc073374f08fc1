package main

import "context"

func runClassify(ctx context.Context, e env, args []string) error { return errNotBuilt }

func runTrain(ctx context.Context, e env, args []string) error { return errNotBuilt }

func runBenchInference(ctx context.Context, e env, args []string) error { return errNotBuilt }
