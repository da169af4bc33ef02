package grpcapi_test

import (
	"context"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// loadDemoCourses ingests the demo courses into collection c of st and
// returns the eval query texts.
func loadDemoCourses(b testing.TB, st *store.Store, c string) []string {
	ctx := context.Background()
	if err := st.CreateCollection(ctx, index.DefaultCollection(c)); err != nil {
		b.Fatal(err)
	}
	ins, _, err := ingest.ReadAll([]string{"../../testdata/courses"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]index.Document, 0, len(ins))
	for _, in := range ins {
		d, err := ingest.Build(in, ingest.ChunkOptions{})
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, d)
	}
	if _, err := st.Upsert(ctx, c, docs); err != nil {
		b.Fatal(err)
	}
	set, err := eval.LoadQueries("../../testdata/eval/queries.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	queries := make([]string, len(set))
	for i, q := range set {
		queries[i] = q.Text
	}
	return queries
}

// BenchmarkDemoSearch is what the server does for one search on the demo
// store (the testdata courses): the eval queries, top 10, fused, converted to
// the API's response. Compare with 'zhisou bench' to see the gRPC overhead.
func BenchmarkDemoSearch(b *testing.B) {
	ctx := context.Background()
	st := storetest.Open(b)
	queries := loadDemoCourses(b, st, "c")
	s := retrieve.New(st, retrieve.Options{})
	for _, q := range queries { // warm the caches
		if _, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: q}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: queries[i%len(queries)]})
		if err != nil {
			b.Fatal(err)
		}
		_ = grpcapi.SearchResultToProto(res)
		i++
	}
}

// BenchmarkGRPCDemoSearch is BenchmarkDemoSearch through the gRPC server
// (interceptors, validation, conversion, marshalling) over an in-memory
// connection; its ping sub-benchmark is the bare round trip (a health check)
// on the same connection.
func BenchmarkGRPCDemoSearch(b *testing.B) {
	srv := grpcapitest.Serve(b, retrieve.Options{})
	c, conn := srv.Client, srv.Conn
	queries := loadDemoCourses(b, srv.Store, "c")
	ctx := context.Background()
	search := func(i int) error {
		_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "c", Query: queries[i%len(queries)]})
		return err
	}
	for i := range queries { // warm the caches
		if err := search(i); err != nil {
			b.Fatal(err)
		}
	}
	h := healthpb.NewHealthClient(conn)
	for _, bc := range []struct {
		name string
		call func(i int) error
	}{
		{"search", search},
		{"ping", func(int) error { _, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := bc.call(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
