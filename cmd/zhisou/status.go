package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

const statusUsage = `usage: zhisou status [-addr HOST:PORT[,HOST:PORT...]] [-digest]

Asks each server in -addr where it stands in the write log: the position it has
applied, the log's last position and the lag between them, and the records it
set aside (quarantined). Replicas of one log (serve -nats) that have caught up
show the same position; with -digest (an admin key), also the same digest.
Exit status 1 when a server does not answer.

`

func cmdStatus(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou status", flag.ContinueOnError)
	var c common
	c.register(fs)
	digest := fs.Bool("digest", false, "also sum each server's whole state (reads every document; needs an admin key)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for each server")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, statusUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tLOG\tPOSITION\tLOG LAST\tLAG\tQUARANTINED\tDIGEST")
	failed := 0
	for _, addr := range strings.Split(c.addr, ",") {
		addr = strings.TrimSpace(addr)
		one := c
		one.addr = addr
		st, err := nodeStatus(ctx, &one, *digest, *timeout)
		if err != nil {
			failed++
			fmt.Fprintf(tw, "%s\t(%v)\n", addr, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", addr, st.GetLog(), st.GetPosition(), st.GetLogLast(), st.GetLag(), st.GetQuarantined(), st.GetDigest())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return exitError{code: 1}
	}
	return nil
}

func nodeStatus(ctx context.Context, c *common, digest bool, timeout time.Duration) (*retrievalv1.GetStatusResponse, error) {
	conn, client, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return client.GetStatus(ctx, &retrievalv1.GetStatusRequest{Digest: digest}, grpc.WaitForReady(true))
}
