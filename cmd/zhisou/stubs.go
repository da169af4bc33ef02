package main

import "context"

func cmdServe(ctx context.Context, env *cmdEnv, args []string) error  { return nil }
func cmdIngest(ctx context.Context, env *cmdEnv, args []string) error { return nil }
func cmdSearch(ctx context.Context, env *cmdEnv, args []string) error { return nil }
