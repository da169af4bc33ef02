// Package loadtest drives a running server with queries from several
// clients for a fixed time, then with bare health checks (a gRPC round trip
// that does no work), and optionally while files are ingested through it;
// it reports throughput and latency percentiles for each phase.
package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// Config is one load test.
type Config struct {
	// Addr is the server; Collection the collection searched.
	Addr, Collection string
	// APIKey is sent with every call when set.
	APIKey string
	// TLS, when set, is the client's TLS configuration.
	TLS *tls.Config
	// Queries are sent in turn, each client starting at its own offset.
	Queries []string
	// TopK is the top_k of each search (0: the server's default).
	TopK int
	// Concurrency is the number of clients, each with its own connection.
	Concurrency int
	// Duration is the length of each measured phase.
	Duration time.Duration
	// Warmup is the time searches are sent, uncounted, before the phases.
	Warmup time.Duration
	// HTTPAddr, if set, is the server's HTTP/JSON door: the searches are also
	// sent there, in a phase of their own, to compare with gRPC.
	HTTPAddr string
	// Writers, if above 0, is the number of clients that upsert fresh
	// Markdown documents of WriteBytes each into IngestCollection, without
	// pause, during a last phase of searches (the hostile write load).
	Writers    int
	WriteBytes int
	// IngestPath, if set, is a file or folder ingested through the server
	// into IngestCollection during a last phase of searches.
	IngestPath, IngestCollection string
}

// Validate reports a Config that Run cannot use.
func (c Config) Validate() error {
	switch {
	case len(c.Queries) == 0:
		return errors.New("no queries")
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want at least 1", c.Concurrency)
	case c.Duration <= 0:
		return fmt.Errorf("duration %s: want more than 0", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warm-up %s: want 0 or more", c.Warmup)
	}
	return nil
}

// Run runs the load test and writes the report to out (a line a phase,
// then the comparison of a search with a bare round trip) and the phases'
// first errors to errOut.
func Run(ctx context.Context, cfg Config, out, errOut io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	search := func(ctx context.Context, client retrievalv1.RetrievalServiceClient, _ healthpb.HealthClient, i int) (time.Duration, error) {
		resp, err := client.Search(ctx, &retrievalv1.SearchRequest{Collection: cfg.Collection, Query: cfg.Queries[i%len(cfg.Queries)], TopK: int32(cfg.TopK)})
		return resp.GetTook().AsDuration(), err
	}
	ping := func(ctx context.Context, _ retrievalv1.RetrievalServiceClient, h healthpb.HealthClient, _ int) (time.Duration, error) {
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return 0, err
	}
	fmt.Fprintf(out, "bench %s, collection %q, %d queries, concurrency %d, %s per phase after %s of warm-up\n", cfg.Addr, cfg.Collection, len(cfg.Queries), cfg.Concurrency, cfg.Duration, cfg.Warmup)
	if cfg.Warmup > 0 {
		if _, err := runPhase(ctx, cfg, cfg.Concurrency, cfg.Warmup, search); err != nil {
			return fmt.Errorf("bench warm-up: %w", err)
		}
	}
	fmt.Fprintf(out, "%-13s %9s %7s %9s %9s %9s %9s %12s\n", "phase", "requests", "errors", "qps", "p50 ms", "p95 ms", "p99 ms", "server p50")
	phases := []struct {
		name string
		call call
	}{{"search", search}, {"grpc-ping", ping}}
	if cfg.HTTPAddr != "" {
		phases = append(phases, struct {
			name string
			call call
		}{"http-search", httpSearch(cfg)})
	}
	rs := make([]result, len(phases))
	for i, phase := range phases {
		r, err := runPhase(ctx, cfg, cfg.Concurrency, cfg.Duration, phase.call)
		if err != nil {
			return fmt.Errorf("bench %s: %w", phase.name, err)
		}
		r.print(out, errOut, phase.name)
		rs[i] = r
	}
	if len(rs) > 2 && rs[2].requests > 0 {
		fmt.Fprintf(out, "HTTP/JSON search p50 - gRPC search p50 = %+.3f ms\n", rs[2].p[0]-rs[0].p[0])
	}
	if p50 := rs[1].p[0]; p50 > 0 {
		fmt.Fprintf(out, "search p50 / bare gRPC round trip p50 = %.2f", rs[0].p[0]/p50)
		if server := rs[0].server; server >= 0 {
			fmt.Fprintf(out, "; the server's own search p50 %.3f ms, the rest %.3f ms = %.2f round trips", server, rs[0].p[0]-server, (rs[0].p[0]-server)/p50)
		}
		fmt.Fprintln(out)
	}
	if cfg.IngestPath != "" {
		if err := underIngest(ctx, cfg, search, out, errOut); err != nil {
			return err
		}
	}
	if cfg.Writers > 0 {
		return underWrites(ctx, cfg, search, out, errOut)
	}
	return nil
}

// underWrites runs the searches for cfg.Duration while cfg.Writers clients
// upsert fresh documents of cfg.WriteBytes each, and prints the searches'
// line and how many writes were applied and refused (RESOURCE_EXHAUSTED).
func underWrites(ctx context.Context, cfg Config, search call, out, errOut io.Writer) error {
	conn, client, err := grpcapi.Dial(cfg.Addr, cfg.APIKey, cfg.TLS)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := (grpcapi.Sink{Addr: cfg.Addr, Client: client}).EnsureCollection(ctx, cfg.IngestCollection); err != nil {
		return fmt.Errorf("bench -writers: %w", err)
	}
	wctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	para := strings.Repeat("客户说价格太贵时，先确认预算，再说明产品的价值和节能收益。", 8) + "\n\n"
	var applied, refused, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.Writers {
		wg.Go(func() {
			wconn, wc, err := grpcapi.Dial(cfg.Addr, cfg.APIKey, cfg.TLS)
			if err != nil {
				failed.Add(1)
				return
			}
			defer wconn.Close()
			for i := 0; wctx.Err() == nil; i++ {
				var b strings.Builder
				fmt.Fprintf(&b, "# 压力文档 %d-%d\n\n", w, i)
				for n := 0; b.Len() < cfg.WriteBytes; n++ {
					fmt.Fprintf(&b, "## 第%d节\n\n%s", n, para)
				}
				_, err := wc.UpsertDocuments(wctx, &retrievalv1.UpsertDocumentsRequest{Collection: cfg.IngestCollection,
					Documents: []*retrievalv1.Document{{Id: fmt.Sprintf("load/%d-%d", w, i), Content: b.String(), Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN}}})
				switch {
				case err == nil:
					applied.Add(1)
				case status.Code(err) == codes.ResourceExhausted:
					refused.Add(1)
				case wctx.Err() == nil:
					failed.Add(1)
				}
			}
		})
	}
	r, err := runPhase(ctx, cfg, cfg.Concurrency, cfg.Duration, search)
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("bench search+writes: %w", err)
	}
	r.print(out, errOut, "search+writes")
	fmt.Fprintf(out, "%d writers of %.1f MB documents into %q meanwhile: %d applied, %d refused (RESOURCE_EXHAUSTED), %d failed otherwise\n",
		cfg.Writers, float64(cfg.WriteBytes)/1e6, cfg.IngestCollection, applied.Load(), refused.Load(), failed.Load())
	return nil
}

// httpSearch is the search call over the HTTP/JSON door: the same request
// as JSON, the answer decoded as the gRPC client decodes its own.
func httpSearch(cfg Config) call {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, TLSClientConfig: cfg.TLS}}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	url := scheme + "://" + cfg.HTTPAddr + "/v1/collections/" + cfg.Collection + ":search"
	return func(ctx context.Context, _ retrievalv1.RetrievalServiceClient, _ healthpb.HealthClient, i int) (time.Duration, error) {
		body, err := protojson.Marshal(&retrievalv1.SearchRequest{Query: cfg.Queries[i%len(cfg.Queries)], TopK: int32(cfg.TopK)})
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if cfg.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
		}
		// A JSON client reads the answer with its JSON parser (JSON.parse,
		// json.loads): encoding/json here, not protojson, which is several
		// times slower and would be the client's cost, not the door's.
		var sr struct {
			Took string            `json:"took"`
			Hits []json.RawMessage `json:"hits"`
		}
		if err := json.Unmarshal(b, &sr); err != nil {
			return 0, err
		}
		took, err := time.ParseDuration(sr.Took)
		if err != nil {
			return 0, fmt.Errorf("took %q: %w", sr.Took, err)
		}
		return took, nil
	}
}

// underIngest runs the searches while cfg.IngestPath is ingested into
// cfg.IngestCollection through the server, and prints the phase's line and
// the ingest's report.
func underIngest(ctx context.Context, cfg Config, search call, out, errOut io.Writer) error {
	conn, client, err := grpcapi.Dial(cfg.Addr, cfg.APIKey, cfg.TLS)
	if err != nil {
		return err
	}
	defer conn.Close()
	gs := grpcapi.Sink{Addr: cfg.Addr, Client: client}
	if err := gs.EnsureCollection(ctx, cfg.IngestCollection); err != nil {
		return fmt.Errorf("bench -ingest: %w", err)
	}
	ictx, done := context.WithCancel(ctx)
	var rep ingest.Report
	var ierr error
	go func() {
		defer done()
		rep, ierr = ingest.Run(ctx, gs, []string{cfg.IngestPath}, ingest.Options{Collection: cfg.IngestCollection})
	}()
	r, err := runPhase(ictx, cfg, cfg.Concurrency, time.Hour, search)
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
	r.print(out, errOut, "search+ingest")
	var text int64
	for _, f := range rep.Formats {
		text += f.TextBytes
	}
	fmt.Fprintf(out, "ingest into %q meanwhile: %d files (%d failed), %.3f MB of text, %d documents added, %d updated, in %.2f s\n",
		cfg.IngestCollection, rep.Files, len(rep.Failed), float64(text)/1e6, rep.Added, rep.Updated, rep.Took.Seconds())
	return nil
}

// errNoRequest is runPhase's error when no call completed in the phase.
var errNoRequest = errors.New("no request completed")

// call makes call i; it returns the time the server reports it took, if it
// reports one (0 if not).
type call func(ctx context.Context, c retrievalv1.RetrievalServiceClient, h healthpb.HealthClient, i int) (time.Duration, error)

// result is one phase's numbers.
type result struct {
	requests, errors int
	qps              float64
	p                [3]float64 // p50, p95, p99 in ms
	server           float64    // p50 of the times the server reported, in ms; -1 when none did
	firstErr         error
}

// print writes the phase's line of the table to out, and its first error,
// if any, to errOut.
func (r result) print(out, errOut io.Writer, phase string) {
	server := "-"
	if r.server >= 0 {
		server = fmt.Sprintf("%.3f", r.server)
	}
	fmt.Fprintf(out, "%-13s %9d %7d %9.0f %9.3f %9.3f %9.3f %12s\n", phase, r.requests, r.errors, r.qps, r.p[0], r.p[1], r.p[2], server)
	if r.firstErr != nil {
		fmt.Fprintf(errOut, "bench %s: first error: %v\n", phase, r.firstErr)
	}
}

// runPhase runs call from n clients until d has passed; every loop is
// bounded by that deadline.
func runPhase(ctx context.Context, cfg Config, n int, d time.Duration, call call) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var mu sync.Mutex // guards lat, server and res below
	var lat, server []time.Duration
	var res result
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		conn, client, err := grpcapi.Dial(cfg.Addr, cfg.APIKey, cfg.TLS)
		if err != nil {
			return res, err
		}
		defer conn.Close()
		h := healthpb.NewHealthClient(conn)
		wg.Go(func() {
			mine, mineServer, errs, first := drive(ctx, deadline, client, h, w, n, call)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			server = append(server, mineServer...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
		})
	}
	wg.Wait()
	return res.summarise(lat, server, time.Since(start))
}

// drive is one client: it makes calls w, w+n, w+2n, ... until ctx ends, and
// returns the latencies and server times of the calls that completed within
// the phase, and the count and first of its errors.
func drive(ctx context.Context, deadline time.Time, client retrievalv1.RetrievalServiceClient, h healthpb.HealthClient, w, n int, call call) (lat, server []time.Duration, errs int, first error) {
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
		lat = append(lat, time.Since(t0))
		if took > 0 {
			server = append(server, took)
		}
	}
	return lat, server, errs, first
}

// summarise fills in the counts and percentiles from the latencies of the
// completed calls.
func (res result) summarise(lat, server []time.Duration, elapsed time.Duration) (result, error) {
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
