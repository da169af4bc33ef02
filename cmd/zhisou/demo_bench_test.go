package main

import (
	"context"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// BenchmarkDemoSearch is what the server does for one search on the demo
// store (the testdata courses): the eval queries, top 10, fused, converted to
// the API's response. Compare with 'zhisou bench' to see the gRPC overhead.
func BenchmarkDemoSearch(b *testing.B) {
	ctx := context.Background()
	st, err := index.Open(ctx, b.TempDir(), testAnalyzer(b), index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
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
	if _, err := st.Upsert(ctx, "c", docs); err != nil {
		b.Fatal(err)
	}
	set, err := loadEvalSet("../../testdata/eval", "")
	if err != nil {
		b.Fatal(err)
	}
	s := retrieve.New(st, retrieve.Options{})
	for _, q := range set.queries { // warm the caches
		if _, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: q.Text}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: set.queries[i%len(set.queries)].Text})
		if err != nil {
			b.Fatal(err)
		}
		_ = searchResultToProto(res)
		i++
	}
}
