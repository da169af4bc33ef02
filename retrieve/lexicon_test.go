package retrieve_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/retrieve"
)

func TestQueryTermsWithLexicon(t *testing.T) {
	store := testStore(t)
	_, err := store.ReplaceLexicon(t.Context(), "c", index.Lexicon{
		Terms: []string{"三明治反馈法", "天枢X9"},
		Synonyms: []index.Synonym{
			{Term: "降价", Alternatives: []string{"折扣"}},
			{Term: "折扣", Alternatives: []string{"降价"}}, // a cycle: one hop each way
			{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}},
		},
		StopWords: []string{"请问", "公司"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := retrieve.New(store, retrieve.Options{})
	word := func(term string, w float64) index.QueryTerm { return index.QueryTerm{Term: term, Weight: w} }
	gram := func(term string, w float64) index.QueryTerm {
		return index.QueryTerm{Term: term, Weight: w, Gram: true}
	}
	tests := []struct {
		query string
		want  []index.QueryTerm
	}{
		// A lexicon term is one word; its usual pieces are sub-words.
		{"三明治反馈法", []index.QueryTerm{
			word("三明治反馈法", 1), word("三明治", 0.4), word("反馈", 0.4),
			gram("三明", 1), gram("明治", 1), gram("治反", 1), gram("反馈", 1), gram("馈法", 1),
		}},
		{"天樞Ｘ９", []index.QueryTerm{word("天枢x9", 1), word("天枢", 0.4), word("x9", 0.4), gram("天枢", 1)}},
		// Stop words leave the words and the bigrams.
		{"请问公司的价格", []index.QueryTerm{word("的", 0.1), word("价格", 1), gram("的价", 1), gram("价格", 1)}},
		// A query of stop words only is searched as written.
		{"公司", []index.QueryTerm{word("公司", 1), gram("公司", 1)}},
		// Synonyms add their alternatives at half weight, one hop: a cycle
		// does not bring the query word back at a lower weight.
		{"降价", []index.QueryTerm{word("降价", 1), word("折扣", 0.5), gram("降价", 1), gram("折扣", 0.5)}},
		{"折扣", []index.QueryTerm{word("折扣", 1), word("降价", 0.5), gram("折扣", 1), gram("降价", 0.5)}},
		{"降价和折扣", []index.QueryTerm{word("降价", 1), word("和", 0.1), word("折扣", 1), gram("降价", 1), gram("价和", 1), gram("和折", 1), gram("折扣", 1)}},
		// An alternative that is a lexicon term stays whole.
		{"汉堡包反馈法", []index.QueryTerm{
			word("汉堡包", 1), word("反馈", 1), word("法", 1), word("三明治反馈法", 0.5),
			gram("汉堡", 1), gram("堡包", 1), gram("包反", 1), gram("反馈", 1), gram("馈法", 1),
			gram("三明", 0.5), gram("明治", 0.5), gram("治反", 0.5),
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, s.QueryTermsIn("c", tt.query)); diff != "" {
			t.Errorf("QueryTermsIn(c, %q) mismatch (-want +got):\n%s", tt.query, diff)
		}
	}
	// Another collection, or none, has no lexicon.
	for _, coll := range []string{"t", "missing"} {
		for _, q := range []string{"三明治反馈法", "请问公司的价格", "降价"} {
			if diff := cmp.Diff(s.QueryTerms(q), s.QueryTermsIn(coll, q)); diff != "" {
				t.Errorf("QueryTermsIn(%s, %q) differs from QueryTerms without a lexicon:\n%s", coll, q, diff)
			}
		}
	}
}

// BenchmarkSearchLexicon runs the same searches on collection "c" without a
// lexicon and then with one (terms, synonyms and stop words that the queries
// hit). Compare the two within one run.
func BenchmarkSearchLexicon(b *testing.B) {
	store := testStore(b)
	s := retrieve.New(store, retrieve.Options{})
	queries := []struct{ name, query string }{
		{"short", "价格"},
		{"question30", "新来的员工第一天到公司报到的时候应该先去找谁领取工牌和电脑呢"},
	}
	run := func(prefix string) {
		for _, bm := range queries {
			b.Run(prefix+"/"+bm.name, func(b *testing.B) {
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
	run("none")
	if _, err := store.ReplaceLexicon(b.Context(), "c", index.Lexicon{
		Terms:     []string{"领取工牌", "价格异议", "三明治反馈法"},
		Synonyms:  []index.Synonym{{Term: "价格", Alternatives: []string{"报价"}}, {Term: "电脑", Alternatives: []string{"笔记本"}}},
		StopWords: []string{"的", "呢"},
	}); err != nil {
		b.Fatal(err)
	}
	if err := store.WaitReindex(b.Context(), "c"); err != nil {
		b.Fatal(err)
	}
	run("lexicon")
}
