package retrieve_test

import (
	"testing"

	"github.com/zhisou/zhisou/retrieve"
)

// BenchmarkSearch measures one search over the test corpus: analysis, BM25
// and hydration, without the section context; a two-character keyword and a
// 30-character everyday question.
func BenchmarkSearch(b *testing.B) {
	s := testSearcher(b, retrieve.Options{})
	for _, bm := range []struct{ name, query string }{
		{"short", "价格"},
		{"question30", "新来的员工第一天到公司报到的时候应该先去找谁领取工牌和电脑呢"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			req := retrieve.Request{Collection: "c", Query: bm.query}
			for b.Loop() {
				if _, err := s.Search(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
