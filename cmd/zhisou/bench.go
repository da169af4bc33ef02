package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/internal/loadtest"
)

// cmdBench is the load test (see package loadtest): a running server is
// driven with the queries of an eval set from several clients, then with
// bare health checks, and, with -ingest, while files are ingested through
// it; it prints throughput and latency percentiles for each phase.
func cmdBench(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou bench", flag.ContinueOnError)
	var c common
	c.register(fs)
	queries := fs.String("queries", "testdata/eval/queries.jsonl", "queries to send, one JSON object with \"text\" per line")
	concurrency := fs.Int("concurrency", 4, "concurrent clients (each with its own connection)")
	duration := fs.Duration("duration", 10*time.Second, "how long each phase runs")
	k := fs.Int("k", 10, "top_k of each search")
	warmup := fs.Duration("warmup", 2*time.Second, "searches sent before the measured phases, not counted (the server's caches fill)")
	writers := fs.Int("writers", 0, "clients that upsert fresh documents without pause during a last phase of searches (a hostile write load)")
	writeMB := fs.Float64("write-mb", 2, "size of each -writers document, in MB")
	httpAddr := fs.String("http-addr", "", "also send the searches to the server's HTTP/JSON door at ADDR (127.0.0.1:7701), in a phase of their own, to compare with gRPC")
	ingestPath := fs.String("ingest", "", "a file or folder to ingest through the server during a last phase of searches (search latency under writes)")
	ingestColl := fs.String("ingest-collection", "", "collection -ingest writes to (default: -collection, the one searched)")
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou bench [-addr 127.0.0.1:7700] [-collection default] [-concurrency 4] [-duration 10s] [-warmup 2s] [-ingest PATH]\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *concurrency < 1 || *concurrency > 256:
		return fmt.Errorf("bench: -concurrency %d: want 1..256", *concurrency)
	case *duration <= 0 || *duration > time.Hour:
		return fmt.Errorf("bench: -duration %s: want more than 0 and at most 1h", *duration)
	case *writers < 0 || *writers > 1024:
		return fmt.Errorf("bench: -writers %d: want 0..1024", *writers)
	case *writeMB <= 0 || *writeMB > 64:
		return fmt.Errorf("bench: -write-mb %g: want more than 0 and at most 64", *writeMB)
	case *warmup < 0 || *warmup > time.Hour:
		return fmt.Errorf("bench: -warmup %s: want 0 to 1h", *warmup)
	}
	if *ingestPath != "" {
		if _, err := os.Stat(*ingestPath); err != nil {
			return fmt.Errorf("bench: -ingest: %w", err)
		}
	}
	if *ingestColl == "" {
		*ingestColl = c.collection
	}
	set, err := eval.LoadQueries(*queries)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if len(set) == 0 {
		return fmt.Errorf("bench: %s: no queries", *queries)
	}
	tlsCfg, err := c.clientTLS()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	texts := make([]string, len(set))
	for i, q := range set {
		texts[i] = q.Text
	}
	return loadtest.Run(ctx, loadtest.Config{
		Addr: c.addr, APIKey: c.apiKey, TLS: tlsCfg, Collection: c.collection, Queries: texts, TopK: *k,
		Concurrency: *concurrency, Duration: *duration, Warmup: *warmup,
		IngestPath: *ingestPath, IngestCollection: *ingestColl, HTTPAddr: *httpAddr,
		Writers: *writers, WriteBytes: int(*writeMB * 1e6),
	}, env.stdout, env.stderr)
}
