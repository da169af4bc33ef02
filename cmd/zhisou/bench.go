package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// cmdBench is a load test: it drives a running server with the queries of an
// eval set from several clients for a fixed time, then does the same with bare
// health checks (a gRPC round trip that does no work), and prints throughput
// and latency percentiles for both, and the median of the time the server
// reports for its own search (SearchResponse.took): the rest of a call's time
// is the call. With -ingest, a third phase searches the
// same way while files are ingested through the server, until they are done:
// search latency under writes.
func cmdBench(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou bench", flag.ContinueOnError)
	var c common
	c.register(fs)
	queries := fs.String("queries", "testdata/eval/queries.jsonl", "queries to send, one JSON object with \"text\" per line")
	concurrency := fs.Int("concurrency", 4, "concurrent clients (each with its own connection)")
	duration := fs.Duration("duration", 10*time.Second, "how long each phase runs")
	k := fs.Int("k", 10, "top_k of each search")
	warmup := fs.Duration("warmup", 2*time.Second, "searches sent before the measured phases, not counted (the server's caches fill)")
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
	set, err := loadQueries(*queries)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	texts := make([]string, len(set))
	for i, q := range set {
		texts[i] = q.Text
	}
	search := func(ctx context.Context, client retrievalv1.RetrievalServiceClient, _ healthpb.HealthClient, i int) (time.Duration, error) {
		resp, err := client.Search(ctx, &retrievalv1.SearchRequest{Collection: c.collection, Query: texts[i%len(texts)], TopK: int32(*k)})
		return resp.GetTook().AsDuration(), err
	}
	ping := func(ctx context.Context, _ retrievalv1.RetrievalServiceClient, h healthpb.HealthClient, _ int) (time.Duration, error) {
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return 0, err
	}
	fmt.Fprintf(env.stdout, "bench %s, collection %q, %d queries, concurrency %d, %s per phase after %s of warm-up\n", c.addr, c.collection, len(texts), *concurrency, *duration, *warmup)
	if *warmup > 0 {
		if _, err := runBench(ctx, c.addr, *concurrency, *warmup, search); err != nil {
			return fmt.Errorf("bench warm-up: %w", err)
		}
	}
	fmt.Fprintf(env.stdout, "%-13s %9s %7s %9s %9s %9s %9s %12s\n", "phase", "requests", "errors", "qps", "p50 ms", "p95 ms", "p99 ms", "server p50")
	var p50 [2]float64
	var server float64
	for i, phase := range []struct {
		name string
		call benchCall
	}{{"search", search}, {"grpc-ping", ping}} {
		r, err := runBench(ctx, c.addr, *concurrency, *duration, phase.call)
		if err != nil {
			return fmt.Errorf("bench %s: %w", phase.name, err)
		}
		r.print(env, phase.name)
		p50[i] = r.p[0]
		if i == 0 {
			server = r.server
		}
		if r.firstErr != nil {
			fmt.Fprintf(env.stderr, "bench %s: first error: %v\n", phase.name, r.firstErr)
		}
	}
	if p50[1] > 0 {
		fmt.Fprintf(env.stdout, "search p50 / bare gRPC round trip p50 = %.2f", p50[0]/p50[1])
		if server >= 0 {
			fmt.Fprintf(env.stdout, "; the server's own search p50 %.3f ms, the rest %.3f ms = %.2f round trips", server, p50[0]-server, (p50[0]-server)/p50[1])
		}
		fmt.Fprintln(env.stdout)
	}
	if *ingestPath != "" {
		return benchUnderIngest(ctx, env, c.addr, *concurrency, search, *ingestPath, *ingestColl)
	}
	return nil
}

// benchUnderIngest runs the searches from n clients while path is ingested
// into collection through the server at addr, and prints the phase's line
// and the ingest's report.
func benchUnderIngest(ctx context.Context, env *cmdEnv, addr string, n int, search benchCall, path, collection string) error {
	conn, client, err := grpcapi.Dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	gs := grpcapi.Sink{Addr: addr, Client: client}
	if err := gs.EnsureCollection(ctx, collection); err != nil {
		return fmt.Errorf("bench -ingest: %w", err)
	}
	ictx, done := context.WithCancel(ctx)
	var rep ingest.Report
	var ierr error
	go func() {
		defer done()
		rep, ierr = ingest.Run(ctx, gs, []string{path}, ingest.Options{Collection: collection})
	}()
	r, err := runBench(ictx, addr, n, time.Hour, search)
	<-ictx.Done()
	if ierr != nil {
		return fmt.Errorf("bench -ingest: %w", ierr)
	}
	if errors.Is(err, errNoRequest) {
		err = nil // the ingest ended before a search did: a line of zeros
	}
	if err != nil {
		return fmt.Errorf("bench search+ingest: %w", err)
	}
	r.print(env, "search+ingest")
	var text int64
	for _, f := range rep.Formats {
		text += f.TextBytes
	}
	fmt.Fprintf(env.stdout, "ingest into %q meanwhile: %d files (%d failed), %.3f MB of text, %d documents added, %d updated, in %.2f s\n",
		collection, rep.Files, len(rep.Failed), float64(text)/1e6, rep.Added, rep.Updated, rep.Took.Seconds())
	if r.firstErr != nil {
		fmt.Fprintf(env.stderr, "bench search+ingest: first error: %v\n", r.firstErr)
	}
	return nil
}

// loadQueries reads the "text" of each line of a queries.jsonl file.
func loadQueries(path string) ([]eval.Query, error) {
	set, err := eval.LoadQueries(path)
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return nil, errors.New(path + ": no queries")
	}
	return set, nil
}

// errNoRequest is runBench's error when no call completed in the phase.
var errNoRequest = errors.New("no request completed")

// benchCall makes call i; it returns the time the server reports it took,
// if it reports one (0 if not).
type benchCall func(ctx context.Context, c retrievalv1.RetrievalServiceClient, h healthpb.HealthClient, i int) (time.Duration, error)

type benchResult struct {
	requests, errors int
	qps              float64
	p                [3]float64 // p50, p95, p99 in ms
	server           float64    // p50 of the times the server reported, in ms; -1 when none did
	firstErr         error
}

// print writes the phase's line of the table.
func (r benchResult) print(env *cmdEnv, phase string) {
	server := "-"
	if r.server >= 0 {
		server = fmt.Sprintf("%.3f", r.server)
	}
	fmt.Fprintf(env.stdout, "%-13s %9d %7d %9.0f %9.3f %9.3f %9.3f %12s\n", phase, r.requests, r.errors, r.qps, r.p[0], r.p[1], r.p[2], server)
}

// runBench runs call from n clients until d has passed; every loop is bounded
// by that deadline.
func runBench(ctx context.Context, addr string, n int, d time.Duration, call benchCall) (benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var mu sync.Mutex
	var lat, server []time.Duration
	var res benchResult
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		conn, client, err := grpcapi.Dial(addr)
		if err != nil {
			return res, err
		}
		defer conn.Close()
		h := healthpb.NewHealthClient(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine, mineServer []time.Duration
			errs := 0
			var first error
			for i := w; ctx.Err() == nil; i += n {
				t0 := time.Now()
				took, err := call(ctx, client, h, i)
				if ctx.Err() != nil || !time.Now().Before(deadline) {
					break // the phase ended during this call: do not count it
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				if took > 0 {
					mineServer = append(mineServer, took)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			server = append(server, mineServer...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.requests = len(lat) + res.errors
	if len(lat) == 0 {
		if res.firstErr != nil {
			return res, res.firstErr
		}
		return res, errNoRequest
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	slices.Sort(lat)
	for i, q := range []float64{0.50, 0.95, 0.99} {
		res.p[i] = ms(lat[min(len(lat)-1, int(q*float64(len(lat))))])
	}
	res.server = -1
	if len(server) > 0 {
		slices.Sort(server)
		res.server = ms(server[len(server)/2])
	}
	res.qps = float64(len(lat)) / elapsed.Seconds()
	return res, nil
}
