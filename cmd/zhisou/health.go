package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const healthUsage = `usage: zhisou health [-addr HOST:PORT] [-timeout D]

Asks a running server whether it serves (the standard gRPC health check, which
needs no API key) and prints its answer. Exit status 0 when it is SERVING, 1
otherwise: the container image's HEALTHCHECK, which has no shell or curl.

`

func cmdHealth(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou health", flag.ContinueOnError)
	var c common
	c.register(fs)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, healthUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	conn, _, err := c.dial()
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("health %s: %w", c.addr, err)
	}
	fmt.Fprintf(env.stdout, "%s %s\n", c.addr, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return exitError{code: 1}
	}
	return nil
}
