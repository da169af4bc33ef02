package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/rerank/fakellm"
	"github.com/zhisou/zhisou/retrieve"
)

// TestBenchCommand runs the load test briefly against a server on loopback.
func TestBenchCommand(t *testing.T) {
	lis, c := serveTCP(t)
	if _, err := c.CreateCollection(t.Context(), &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpsertDocuments(t.Context(), &retrievalv1.UpsertDocumentsRequest{Collection: "default", Documents: []*retrievalv1.Document{{Id: "a", Content: grpcapitest.SalesMD, Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN}}}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := runT(t, []string{"bench", "-addr", lis.Addr().String(), "-duration", "300ms", "-concurrency", "2", "-queries", "../../testdata/eval/queries.jsonl"}, envOf(nil), &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut.String())
	}
	var requests, errs int
	var qps, p50, p95, p99, server float64
	pingServer := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "search "); ok {
			fmt.Sscanf(rest, "%d %d %f %f %f %f %f", &requests, &errs, &qps, &p50, &p95, &p99, &server)
		}
		if f := strings.Fields(line); len(f) == 8 && f[0] == "grpc-ping" {
			pingServer = f[7]
		}
	}
	if requests == 0 || errs != 0 || pingServer != "-" {
		t.Errorf("bench output:\n%s\nwant search requests > 0 with no errors, and a grpc-ping phase without a server time", out.String())
	}
	// Every search's own time is within its call's, so their medians are
	// in that order too.
	if server <= 0 || server > p50 || !strings.Contains(out.String(), "the server's own search p50") {
		t.Errorf("bench output:\n%s\nwant the server's own search p50 (%v) above 0 and at most the call's p50 (%v), and in the summary", out.String(), server, p50)
	}
	if err := runT(t, []string{"bench", "-addr", lis.Addr().String(), "-concurrency", "0"}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "-concurrency") {
		t.Errorf("bench -concurrency 0 = %v, want an error naming -concurrency", err)
	}
	if err := runT(t, []string{"bench", "-addr", lis.Addr().String(), "-ingest", filepath.Join(t.TempDir(), "missing")}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "-ingest") {
		t.Errorf("bench -ingest missing = %v, want an error naming -ingest", err)
	}

	// -ingest: a last phase searches while the courses are ingested into
	// another collection through the server; they are there afterwards.
	out.Reset()
	err = runT(t, []string{"bench", "-addr", lis.Addr().String(), "-duration", "200ms", "-warmup", "0s", "-concurrency", "1",
		"-queries", "../../testdata/eval/queries.jsonl", "-ingest", "../../testdata/courses", "-ingest-collection", "live"}, envOf(nil), &out, &errOut)
	if err != nil {
		t.Fatalf("bench -ingest: %v\n%s", err, errOut.String())
	}
	var files, failed int
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, `ingest into "live" meanwhile: `); ok {
			fmt.Sscanf(rest, "%d files (%d failed)", &files, &failed)
		}
	}
	if !strings.Contains(out.String(), "search+ingest") || files == 0 || failed != 0 {
		t.Errorf("bench -ingest output:\n%s\nwant a search+ingest phase and the ingest's files, none failed", out.String())
	}
	got, err := c.GetCollection(t.Context(), &retrievalv1.GetCollectionRequest{Name: "live"})
	if err != nil || got.GetCollection().GetDocumentCount() < int64(files) {
		t.Errorf("collection live after bench -ingest: %v, %v; want at least %d documents", got, err, files)
	}
}

// serveTCP runs the gRPC server on loopback, for the commands that dial an
// address, and returns the listener and a client.
func serveTCP(t *testing.T) (net.Listener, retrievalv1.RetrievalServiceClient) {
	t.Helper()
	srv := grpcapitest.Serve(t, retrieve.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC.Serve(lis) // ends when the test's cleanup stops the server
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lis, retrievalv1.NewRetrievalServiceClient(conn)
}

// TestServerRerank: a reranker configured from the serve flags, against the
// fake OpenAI-protocol server.
func TestServerRerank(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name       string
		mode       fakellm.Mode
		req        retrievalv1.RerankMode
		wantCode   codes.Code
		wantStatus string
		reordered  bool
	}{
		{"permutation followed", fakellm.Permutation(3, 1, 2), retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED, codes.OK, "ok", true},
		{"refusal falls back", fakellm.DashScopeRefusal(), retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED, codes.OK, "refused", false},
		{"server error, rerank required", fakellm.HTMLError(502), retrievalv1.RerankMode_RERANK_MODE_REQUIRED, codes.Unavailable, "", false},
		{"off for this request", fakellm.Permutation(3, 1, 2), retrievalv1.RerankMode_RERANK_MODE_OFF, codes.OK, "off", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakellm.New(t, tt.mode)
			rf := rerankFlags{url: fake.URL, model: "qwen-turbo", keyEnv: "TEST_KEY", vendor: "dashscope", timeout: 2 * time.Second, hedge: time.Second}
			reranker, err := rf.build(envOf(map[string]string{"TEST_KEY": "sk-test"}))
			if err != nil {
				t.Fatal(err)
			}
			c := grpcapitest.Serve(t, retrieve.Options{Reranker: reranker}).Client
			grpcapitest.Seed(t, c)
			plain, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3, Rerank: retrievalv1.RerankMode_RERANK_MODE_OFF})
			if err != nil || len(plain.GetHits()) < 3 {
				t.Fatalf("Search without rerank = %v, %v", plain, err)
			}
			res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3, Rerank: tt.req})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("Search = %v, want %v", err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if got := res.GetRerank().GetStatus(); got != tt.wantStatus {
				t.Errorf("rerank status = %q, want %q", got, tt.wantStatus)
			}
			if tt.reordered {
				want := []string{plain.GetHits()[2].GetChunkId(), plain.GetHits()[0].GetChunkId(), plain.GetHits()[1].GetChunkId()}
				var got []string
				for _, h := range res.GetHits() {
					got = append(got, h.GetChunkId())
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("reranked order (-want +got):\n%s", diff)
				}
			} else if res.GetHits()[0].GetChunkId() != plain.GetHits()[0].GetChunkId() {
				t.Errorf("first hit %s, want the fused first %s", res.GetHits()[0].GetChunkId(), plain.GetHits()[0].GetChunkId())
			}
		})
	}
	// A provider without its key is a startup error naming the provider.
	rf := rerankFlags{url: "http://127.0.0.1:1/v1", model: "m", keyEnv: "MISSING_KEY", timeout: time.Second}
	if _, err := rf.build(envOf(nil)); err == nil || !strings.Contains(err.Error(), "default") {
		t.Errorf("rerank flags without a key = %v, want an error naming the provider", err)
	}
	c := grpcapitest.Serve(t, retrieve.Options{}).Client
	grpcapitest.Seed(t, c)
	_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价值", RerankTimeout: durationpb.New(-time.Second)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "rerank_timeout") {
		t.Errorf("Search(rerank_timeout -1s) = %v, want INVALID_ARGUMENT naming rerank_timeout", err)
	}
	_, err = c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价值", Rerank: retrievalv1.RerankMode_RERANK_MODE_REQUIRED})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Search(rerank required, no reranker) = %v, want UNAVAILABLE", err)
	}
}

// TestRerankConfig: providers from a file, in priority order with hedging,
// and the file's errors.

// TestRerankConfig: providers from a file, in priority order with hedging,
// and the file's errors.
func TestRerankConfig(t *testing.T) {
	slow := fakellm.New(t, fakellm.Delay(5*time.Second, fakellm.Permutation(1)))
	fast := fakellm.New(t, fakellm.Permutation(3, 1, 2))
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", fmt.Sprintf(`[
  {"name": "qwen", "base_url": %q, "model": "qwen-turbo", "api_key_env": "K1", "send_zero_temperature": true},
  {"name": "doubao", "base_url": %q, "model": "doubao-lite", "api_key_env": "K2", "vendor": "no-thinking", "extra_body": {"user": "zhisou"}, "price_prompt": 0.3, "price_completion": 0.6}
]`, slow.URL, fast.URL))
	env := envOf(map[string]string{"K1": "a", "K2": "b"})
	rf := rerankFlags{config: good, timeout: 3 * time.Second, hedge: 100 * time.Millisecond}
	reranker, err := rf.build(env)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcapitest.Serve(t, retrieve.Options{Reranker: reranker})
	c, reg := srv.Client, srv.Registry
	grpcapitest.Seed(t, c)
	res, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ri := res.GetRerank(); ri.GetStatus() != "ok" || ri.GetProvider() != "doubao" || ri.GetTook().AsDuration() > 2*time.Second {
		t.Errorf("rerank = %v, want ok from the hedge doubao well before the slow provider", ri)
	}
	ri := res.GetRerank()
	if want := (float64(ri.GetPromptTokens())*0.3 + float64(ri.GetCompletionTokens())*0.6) / 1e6; ri.GetPromptTokens() == 0 || math.Abs(ri.GetCost()-want) > 1e-12 {
		t.Errorf("rerank cost %v for %d+%d tokens, want %v", ri.GetCost(), ri.GetPromptTokens(), ri.GetCompletionTokens(), want)
	}
	if n := counterValue(t, reg, "zhisou_rerank_total", map[string]string{"provider": "doubao", "status": "ok"}); n != 1 {
		t.Errorf("zhisou_rerank_total{provider=doubao,status=ok} = %v, want 1", n)
	}
	if sr := slow.Requests(); len(sr) == 0 || !strings.Contains(string(sr[0].Body), `"temperature":0`) {
		t.Errorf("the first provider's request %q lacks temperature 0 (send_zero_temperature)", sr)
	}
	reqs := fast.Requests()
	if len(reqs) == 0 || !strings.Contains(string(reqs[0].Body), `"user":"zhisou"`) || !strings.Contains(string(reqs[0].Body), `"thinking"`) {
		t.Errorf("the second provider's request %q lacks the configured extra body fields", reqs)
	}

	for _, tt := range []struct{ name, content, want string }{
		{"unknown field", `[{"name": "x", "base_url": "http://h/v1", "model": "m", "api_key_env": "K1", "colour": "red"}]`, "colour"},
		{"missing url", `[{"name": "kimi", "model": "m", "api_key_env": "K1"}]`, "kimi"},
		{"missing key", `[{"name": "glm", "base_url": "http://h/v1", "model": "m", "api_key_env": "NOPE"}]`, "glm"},
		{"unknown vendor", `[{"name": "v", "base_url": "http://h/v1", "model": "m", "api_key_env": "K1", "vendor": "acme"}]`, "acme"},
		{"empty", `[]`, "no provider"},
	} {
		rf := rerankFlags{config: write(tt.name+".json", tt.content), timeout: time.Second}
		if _, err := rf.build(env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: build = %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

// counterValue sums the counters of a metric family whose labels include want.

// counterValue sums the counters of a metric family whose labels include want.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestRerankTimeoutUnderLoad: with a provider that answers in 3 s and a
// 300 ms rerank deadline, 200 concurrent searches all get the fused order with
// status timeout. The p99 overshoot past the deadline is logged (the README
// reports it from a run without -race), not asserted: timings on shared CI
// machines are noise.

// TestRerankTimeoutUnderLoad: with a provider that answers in 3 s and a
// 300 ms rerank deadline, 200 concurrent searches all get the fused order with
// status timeout. The p99 overshoot past the deadline is logged (the README
// reports it from a run without -race), not asserted: timings on shared CI
// machines are noise.
func TestRerankTimeoutUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("200 concurrent searches; skipped under -short")
	}
	fake := fakellm.New(t, fakellm.Delay(3*time.Second, fakellm.Permutation(2, 1)))
	const deadline = 300 * time.Millisecond
	rf := rerankFlags{url: fake.URL, model: "m", keyEnv: "K", timeout: deadline, hedge: time.Second}
	reranker, err := rf.build(envOf(map[string]string{"K": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	c := grpcapitest.Serve(t, retrieve.Options{Reranker: reranker}).Client
	grpcapitest.Seed(t, c)
	plain, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3, Rerank: retrievalv1.RerankMode_RERANK_MODE_OFF})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	lat := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			res, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3})
			lat[i] = time.Since(start)
			switch {
			case err != nil:
				errs <- err
			case res.GetRerank().GetStatus() != "timeout":
				errs <- fmt.Errorf("search %d: rerank status %q, want timeout", i, res.GetRerank().GetStatus())
			case res.GetHits()[0].GetChunkId() != plain.GetHits()[0].GetChunkId():
				errs <- fmt.Errorf("search %d: first hit %s, want the fused first %s", i, res.GetHits()[0].GetChunkId(), plain.GetHits()[0].GetChunkId())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	slices.Sort(lat)
	p99 := lat[n*99/100-1]
	t.Logf("200 concurrent searches, rerank deadline %v: p50 %v, p99 %v (p99 - deadline = %v)", deadline, lat[n/2], p99, p99-deadline)
	if p99 > deadline+3*time.Second {
		t.Errorf("p99 %v: the searches waited for the slow provider instead of the deadline", p99)
	}
}

// TestServerRerankStreamPartial: a streamed reply cut by the deadline still
// reorders by the ids that arrived.

// TestServerRerankStreamPartial: a streamed reply cut by the deadline still
// reorders by the ids that arrived.
func TestServerRerankStreamPartial(t *testing.T) {
	fake := fakellm.New(t, fakellm.StreamPermutation(400*time.Millisecond, 3, 1, 2))
	rf := rerankFlags{url: fake.URL, model: "m", keyEnv: "K", timeout: 600 * time.Millisecond, hedge: time.Second, stream: true}
	reranker, err := rf.build(envOf(map[string]string{"K": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	c := grpcapitest.Serve(t, retrieve.Options{Reranker: reranker}).Client
	grpcapitest.Seed(t, c)
	plain, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3, Rerank: retrievalv1.RerankMode_RERANK_MODE_OFF})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "价值 预算 客户", TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	ri := res.GetRerank()
	if ri.GetStatus() != "ok" || !ri.GetPartial() || res.GetHits()[0].GetChunkId() != plain.GetHits()[2].GetChunkId() {
		t.Errorf("rerank %v, first hit %s; want ok, partial, and the fused third hit first (the one id that arrived)", ri, res.GetHits()[0].GetChunkId())
	}
}

// TestServerTranscript: a transcript sent over gRPC keeps whole turns.

// TestSearchRerankThroughServer is the rerank demo while a server holds the
// store: 'zhisou search -rerank -rerank-url' fetches the hits from the
// server and reranks them here, in the fake LLM's order; the server itself
// has no reranker.
func TestSearchRerankThroughServer(t *testing.T) {
	lis, c := serveTCP(t)
	grpcapitest.Seed(t, c)
	addr := lis.Addr().String()
	search := func(extra ...string) (hits []hitView, rerank map[string]any) {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append(append([]string{"search", "-addr", addr, "-collection", "kb", "-k", "3", "-json"}, extra...), "价值 预算 客户")
		if err := runT(t, args, envOf(map[string]string{"ZHISOU_RERANK_API_KEY": "x"}), &out, &errOut); err != nil {
			t.Fatalf("zhisou %q: %v\n%s", args, err, errOut.String())
		}
		var res struct {
			Hits   []hitView      `json:"hits"`
			Rerank map[string]any `json:"rerank"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("zhisou %q printed %q: %v", args, out.String(), err)
		}
		return res.Hits, res.Rerank
	}
	plain, _ := search("-rerank=off")
	if len(plain) < 3 {
		t.Fatalf("search without rerank: %d hits, want 3", len(plain))
	}
	fake := fakellm.New(t, fakellm.Permutation(3, 1, 2))
	hits, ri := search("-rerank", "-rerank-url", fake.URL, "-rerank-model", "m")
	var got []string
	for _, h := range hits {
		got = append(got, h.ChunkID)
	}
	want := []string{plain[2].ChunkID, plain[0].ChunkID, plain[1].ChunkID}
	if diff := cmp.Diff(want, got); diff != "" || ri["status"] != "ok" || ri["top_changed"] != true {
		t.Errorf("search -rerank through the server: rerank %v, order (-want +got):\n%s", ri, diff)
	}
	if fake.Count() == 0 {
		t.Error("the fake LLM got no request")
	}
	// Required, and the provider fails: an error, not the retrieval order.
	broken := fakellm.New(t, fakellm.HTMLError(502))
	var out, errOut bytes.Buffer
	err := runT(t, []string{"search", "-addr", addr, "-collection", "kb", "-rerank", "-rerank-url", broken.URL, "-rerank-model", "m", "价值"},
		envOf(map[string]string{"ZHISOU_RERANK_API_KEY": "x"}), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "rerank unavailable") {
		t.Errorf("search -rerank with a failing provider = %v, want rerank unavailable", err)
	}
}
