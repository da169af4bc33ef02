package retrieve_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/retrieve"
)

// goodSearch checks that the searcher still answers a plain query: a bad
// request must not leave it broken.
func goodSearch(t *testing.T, s *retrieve.Searcher) {
	t.Helper()
	res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "价格"})
	if err != nil || len(res.Hits) == 0 || res.Hits[0].DocID != "sales-objections" {
		t.Fatalf("after a bad request: Search(%q) = %v, %v, want hits from sales-objections", "价格", res.Hits, err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	store := testStore(t)
	tests := []struct {
		name string
		opts retrieve.Options
		want retrieve.Options
	}{
		{"zero", retrieve.Options{}, retrieve.Options{MaxTopK: 100, DefaultTopK: 10, MaxQueryRunes: 8000, MaxContextRunes: 2000}},
		{"negative", retrieve.Options{MaxTopK: -1, DefaultTopK: -1, MaxQueryRunes: -1, MaxContextRunes: -1}, retrieve.Options{MaxTopK: 100, DefaultTopK: 10, MaxQueryRunes: 8000, MaxContextRunes: 2000}},
		{"set", retrieve.Options{MaxTopK: 50, DefaultTopK: 5, MaxQueryRunes: 20, MaxContextRunes: 30}, retrieve.Options{MaxTopK: 50, DefaultTopK: 5, MaxQueryRunes: 20, MaxContextRunes: 30}},
		// The default page never exceeds the cap.
		{"cap below default", retrieve.Options{MaxTopK: 3}, retrieve.Options{MaxTopK: 3, DefaultTopK: 3, MaxQueryRunes: 8000, MaxContextRunes: 2000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, retrieve.New(store, tt.opts).Options()); diff != "" {
				t.Errorf("New(%+v).Options() mismatch (-want +got):\n%s", tt.opts, diff)
			}
		})
	}
}

func TestSearchValidation(t *testing.T) {
	store := testStore(t)
	s := retrieve.New(store, retrieve.Options{})
	tight := retrieve.New(store, retrieve.Options{MaxTopK: 5, MaxQueryRunes: 6})
	tests := []struct {
		name string
		req  retrieve.Request
		// tight runs the request with small configured limits.
		tight   bool
		wantErr error
		// wantMsg are substrings the message must contain: it names the problem.
		wantMsg []string
	}{
		{"empty query", retrieve.Request{Collection: "c", Query: ""}, false, retrieve.ErrEmptyQuery, []string{"query"}},
		{"whitespace query", retrieve.Request{Collection: "c", Query: " \t\n\u3000 "}, false, retrieve.ErrEmptyQuery, []string{"query"}},
		{"punctuation query", retrieve.Request{Collection: "c", Query: "，。！？"}, false, retrieve.ErrEmptyQuery, []string{"query", "，。！？"}},
		{"symbols query", retrieve.Request{Collection: "c", Query: "+-*:()\"'"}, false, retrieve.ErrEmptyQuery, []string{"query"}},
		{"long query", retrieve.Request{Collection: "c", Query: strings.Repeat("价", 10000)}, false, retrieve.ErrInvalid, []string{"query", "10000", "limit", "1000"}},
		{"invalid UTF-8", retrieve.Request{Collection: "c", Query: "\xff\xfe"}, false, retrieve.ErrInvalid, []string{"query", "UTF-8"}},
		{"invalid UTF-8 inside text", retrieve.Request{Collection: "c", Query: "价格\xff客户"}, false, retrieve.ErrInvalid, []string{"UTF-8"}},
		{"negative top_k", retrieve.Request{Collection: "c", Query: "价格", TopK: -1}, false, retrieve.ErrInvalid, []string{"top_k", "-1", "negative"}},
		{"huge top_k", retrieve.Request{Collection: "c", Query: "价格", TopK: 1_000_000}, false, retrieve.ErrInvalid, []string{"top_k", "1000000", "limit", "100"}},
		{"top_k just over the limit", retrieve.Request{Collection: "c", Query: "价格", TopK: 101}, false, retrieve.ErrInvalid, []string{"top_k", "101", "limit"}},
		{"empty heading_prefix element", retrieve.Request{Collection: "c", Query: "价格", Filter: index.Filter{HeadingPrefix: []string{"销售异议处理", " "}}}, false, retrieve.ErrInvalid, []string{"heading_prefix[1]", "empty"}},
		{"empty collection", retrieve.Request{Query: "价格"}, false, retrieve.ErrInvalid, []string{"collection"}},
		{"unknown collection", retrieve.Request{Collection: "nope", Query: "价格"}, false, index.ErrNotFound, []string{"nope"}},
		{"unknown metadata field", retrieve.Request{Collection: "c", Query: "价格", Filter: index.Filter{Metadata: map[string]string{"department": "hr"}}}, false, retrieve.ErrInvalid, []string{"metadata", "department"}},
		{"query over a configured limit", retrieve.Request{Collection: "c", Query: "价格价格价格价"}, true, retrieve.ErrInvalid, []string{"query", "7 characters", "limit of 6"}},
		{"top_k over a configured limit", retrieve.Request{Collection: "c", Query: "价格", TopK: 6}, true, retrieve.ErrInvalid, []string{"top_k", "limit of 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			searcher := s
			if tt.tight {
				searcher = tight
			}
			res, err := searcher.Search(t.Context(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Search(%q) = %v, %v, want error %v", truncate(tt.req.Query), res, err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Search(%q) error %q does not name %q", truncate(tt.req.Query), err, m)
				}
			}
			if diff := cmp.Diff(retrieve.Result{}, res); diff != "" {
				t.Errorf("Search(%q) returned a result with its error (-want +got):\n%s", truncate(tt.req.Query), diff)
			}
			goodSearch(t, s)
		})
	}
}

// truncate shortens a query for a failure message.
func truncate(q string) string {
	if utf8.RuneCountInString(q) <= 40 {
		return q
	}
	return string([]rune(q)[:40]) + "…"
}

func TestSearchTopK(t *testing.T) {
	store := testStore(t)
	s := retrieve.New(store, retrieve.Options{})
	// 客户 is in every section of customer-faq and in sales-objections:
	// more chunks than a default page.
	all, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "客户", TopK: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Hits) <= 10 {
		t.Fatalf("Search(%q) = %d hits, want more than 10 for this test", "客户", len(all.Hits))
	}
	tests := []struct {
		topK, want int
	}{
		{0, 10}, // the default
		{1, 1},
		{3, 3},
		{10, 10},
		{100, len(all.Hits)}, // the limit itself is allowed
	}
	for _, tt := range tests {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "客户", TopK: tt.topK})
		if err != nil {
			t.Fatalf("Search(%q, top_k %d) = %v", "客户", tt.topK, err)
		}
		if len(res.Hits) != tt.want {
			t.Errorf("Search(%q, top_k %d) = %d hits, want %d", "客户", tt.topK, len(res.Hits), tt.want)
		}
		// A shorter page is the top of a longer one. (Chunks with equal
		// scores may trade places: see canonical.)
		if diff := cmp.Diff(scores(all.Hits[:len(res.Hits)]), scores(res.Hits), approx); diff != "" {
			t.Errorf("Search(%q, top_k %d) is not the top of the full ranking (-want +got):\n%s", "客户", tt.topK, diff)
		}
	}

	// A configured default applies when the request leaves top_k unset, and
	// it obeys a configured cap.
	for _, tt := range []struct {
		opts retrieve.Options
		want int
	}{
		{retrieve.Options{DefaultTopK: 4}, 4},
		{retrieve.Options{MaxTopK: 3}, 3},
		{retrieve.Options{MaxTopK: 6, DefaultTopK: 8}, 6},
	} {
		s := retrieve.New(store, tt.opts)
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "客户"})
		if err != nil || len(res.Hits) != tt.want {
			t.Errorf("Search(%q) with %+v = %d hits, %v, want %d", "客户", tt.opts, len(res.Hits), err, tt.want)
		}
		req := retrieve.Request{Collection: "c", Query: "客户"}
		if err := s.Validate(&req); err != nil || req.TopK != tt.want {
			t.Errorf("Validate(%+v) with %+v = %v, top_k %d, want top_k %d", req, tt.opts, err, req.TopK, tt.want)
		}
	}
}

func TestSearchRanking(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	tests := []struct {
		name, query string
		collection  string
		wantDoc     string
		// wantHeading, when set, is the last part of the top hit's heading path.
		wantHeading string
	}{
		{"keyword", "价格", "c", "sales-objections", "第一章 价格异议"},
		{"keyword in one chapter", "信任", "c", "sales-objections", "第二章 信任异议"},
		{"product code", "PPR-9087", "c", "product-ppr", ""},
		{"product code lower case", "ppr-9087", "c", "product-ppr", ""},
		{"product code full width", "ＰＰＲ－９０８７", "c", "product-ppr", ""},
		{"product code in traditional corpus", "PPR-9087", "t", "product-trad", ""},
		{"article number", "第十二条", "c", "safety-rules", "第十二条"},
		{"article number and topic", "第十三条 动火", "c", "safety-rules", "第十三条"},
		// Not "客户嫌贵怎么办": 嫌贵 is one dictionary word, and none of the
		// query's terms matches 太贵, so only 客户 is left to rank on.
		{"paraphrase with question words", "客户觉得价格太贵怎么办", "c", "sales-objections", "第一章 价格异议"},
		{"how-to question", "如何处理客户的价格异议", "c", "sales-objections", "第一章 价格异议"},
		{"which question", "动火作业需要办理哪些手续", "c", "safety-rules", "第十三条"},
		{"what-is question", "什么是有限空间作业", "c", "safety-rules", "第十二条"},
		{"why question", "为什么有限空间作业要先通风", "c", "safety-rules", "第十二条"},
		{"how question", "新任经理怎么和下属沟通", "c", "new-manager", "第一周"},
		{"traditional query", "客戶關心價格", "c", "sales-objections", "第一章 价格异议"},
		{"simplified query on traditional text", "价格", "t", "product-trad", ""},
		{"long everyday question", "新员工第一天入职的时候应该去哪里领取工牌和电脑呢", "c", "onboarding", "第一天"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Search(t.Context(), retrieve.Request{Collection: tt.collection, Query: tt.query})
			if err != nil {
				t.Fatalf("Search(%q) = %v", tt.query, err)
			}
			if len(res.Hits) == 0 {
				t.Fatalf("Search(%q) = no hits, want %s first", tt.query, tt.wantDoc)
			}
			top := res.Hits[0]
			if top.DocID != tt.wantDoc {
				t.Errorf("Search(%q) = %v, want %s first", tt.query, docIDs(res.Hits), tt.wantDoc)
			}
			if tt.wantHeading != "" && (len(top.HeadingPath) == 0 || top.HeadingPath[len(top.HeadingPath)-1] != tt.wantHeading) {
				t.Errorf("Search(%q) top hit heading = %v, want it to end in %q", tt.query, top.HeadingPath, tt.wantHeading)
			}
		})
	}
}

// approx compares scores that went through float additions in different
// orders.
var approx = cmpopts.EquateApprox(0, 1e-12)

// canonical returns hits in an order that does not depend on rounding. The
// index adds document evidence in map order, so the same search can give equal
// chunks scores that differ in the last bit, and they trade places; rounding
// the scores and breaking ties by chunk id gives the order the scores mean.
func canonical(hits []retrieve.Hit) []retrieve.Hit {
	out := slices.Clone(hits)
	for i := range out {
		out[i].Score = math.Round(out[i].Score*1e9) / 1e9
		// Evidence carries per-source scores, which a function word
		// ("or") shifts without changing the order.
		out[i].Evidence = retrieve.Evidence{}
	}
	slices.SortStableFunc(out, func(a, b retrieve.Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.ChunkID, b.ChunkID)
	})
	return out
}

func scores(hits []retrieve.Hit) []float64 {
	var out []float64
	for _, h := range hits {
		out = append(out, h.Score)
	}
	return out
}

func docIDs(hits []retrieve.Hit) []string {
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.DocID)
	}
	return ids
}

func chunkIDs(hits []retrieve.Hit) []string {
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ChunkID)
	}
	return ids
}

// TestSearchQuerySyntaxIsText checks that operators, field prefixes and quotes
// in a query are plain text: no error, and the hits are those of the same
// words without the syntax.
func TestSearchQuerySyntaxIsText(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	tests := []struct {
		query, words string
	}{
		{"a AND -b title:x", "a and b title x"},
		{"价格 OR 客户", "价格 or 客户"},
		{"价格 OR 客户", "价格 客户"}, // "or" is in no document
		{"+价格 -客户", "价格 客户"},
		{"价格 AND -降价 title:审批", "价格 and 降价 title 审批"},
		{`"价格异议"`, "价格异议"},
		{"价格* 客户?", "价格 客户"},
		{"(价格 OR 客户) AND NOT 降价", "价格 or 客户 and not 降价"},
		{"course:safety 作业", "course safety 作业"},
		{"PPR-9087^2 节能~", "PPR-9087 2 节能"},
		{"价格\\ 客户", "价格 客户"},
	}
	for _, tt := range tests {
		got, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.query, TopK: 100})
		if err != nil {
			t.Errorf("Search(%q) = %v, want no error", tt.query, err)
			continue
		}
		want, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.words, TopK: 100})
		if err != nil {
			t.Fatalf("Search(%q) = %v", tt.words, err)
		}
		if diff := cmp.Diff(canonical(want.Hits), canonical(got.Hits)); diff != "" {
			t.Errorf("Search(%q) differs from Search(%q) (-want +got):\n%s", tt.query, tt.words, diff)
		}
	}
}

// TestSearchQuestionWords checks that question words and particles neither
// stop a query from matching nor, alone, make it fail.
func TestSearchQuestionWords(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	for _, q := range []string{"什么", "如何", "怎么", "为什么", "哪些", "是什么", "怎么样呢", "什么？", "what is"} {
		if _, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: q}); err != nil {
			t.Errorf("Search(%q) = %v, want no error", q, err)
		}
	}
	// The question adds nothing the content words do not say: the top hit is
	// the same with and without it.
	tests := []struct{ question, words string }{
		{"什么是有限空间作业", "有限空间作业"},
		{"如何处理价格异议", "处理价格异议"},
		{"客户不信任怎么办", "客户不信任"},
		{"为什么要办理动火许可证", "办理动火许可证"},
		{"新员工入职需要哪些步骤", "新员工入职步骤"},
	}
	for _, tt := range tests {
		q, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.question})
		if err != nil || len(q.Hits) == 0 {
			t.Errorf("Search(%q) = %v, %v, want hits", tt.question, q.Hits, err)
			continue
		}
		w, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.words})
		if err != nil || len(w.Hits) == 0 {
			t.Fatalf("Search(%q) = %v, %v, want hits", tt.words, w.Hits, err)
		}
		if q.Hits[0].ChunkID != w.Hits[0].ChunkID {
			t.Errorf("Search(%q) = %v, want the top hit of Search(%q) %v first", tt.question, chunkIDs(q.Hits), tt.words, w.Hits[0].ChunkID)
		}
	}
}

// checkHits checks what every result must satisfy: hits carry their document,
// title and heading path; scores descend; highlights are sorted, disjoint
// byte ranges of Text on rune boundaries, each covering a matched term.
func checkHits(t *testing.T, an *analysis.Analyzer, query string, hits []retrieve.Hit) {
	t.Helper()
	for i, h := range hits {
		if h.DocID == "" || !strings.HasPrefix(h.ChunkID, h.DocID+"#") {
			t.Errorf("Search(%q) hit %d: chunk %q of document %q", query, i, h.ChunkID, h.DocID)
		}
		if h.Title == "" || len(h.HeadingPath) == 0 {
			t.Errorf("Search(%q) hit %d (%s): title %q, heading path %v, want both set", query, i, h.ChunkID, h.Title, h.HeadingPath)
		}
		if i > 0 && h.Score > hits[i-1].Score {
			t.Errorf("Search(%q) hit %d score %v > hit %d score %v, want descending", query, i, h.Score, i-1, hits[i-1].Score)
		}
		// A hit shares a word with the query, unless the keyword graph
		// reached it through a neighbour keyword ([seed, neighbour]).
		if len(h.Matched) == 0 && len(h.Evidence.GraphPath) != 2 {
			t.Errorf("Search(%q) hit %d (%s): no matched terms, evidence %+v", query, i, h.ChunkID, h.Evidence)
		}
		if seen := slices.Compact(slices.Sorted(slices.Values(h.Matched))); len(seen) != len(h.Matched) {
			t.Errorf("Search(%q) hit %d matched = %q, want no duplicates", query, i, h.Matched)
		}
		checkHighlights(t, an, query, h.Text, h.Matched, h.Highlights)
	}
}

func checkHighlights(t *testing.T, an *analysis.Analyzer, query, text string, matched []string, spans []retrieve.Span) {
	t.Helper()
	for j, sp := range spans {
		if sp.Start < 0 || sp.End > len(text) || sp.Start >= sp.End {
			t.Errorf("Search(%q) highlight %v outside %q (%d bytes) or empty", query, sp, text, len(text))
			continue
		}
		if j > 0 && sp.Start < spans[j-1].End {
			t.Errorf("Search(%q) highlights %v not sorted and disjoint", query, spans)
		}
		if !utf8.RuneStart(text[sp.Start]) || (sp.End < len(text) && !utf8.RuneStart(text[sp.End])) {
			t.Errorf("Search(%q) highlight %v splits a character of %q", query, sp, text)
			continue
		}
		hl := an.Normalize(text[sp.Start:sp.End]).Text
		if !slices.ContainsFunc(matched, func(m string) bool { return strings.Contains(hl, m) }) {
			t.Errorf("Search(%q) highlight %q (%v) contains none of the matched terms %q", query, text[sp.Start:sp.End], sp, matched)
		}
	}
	// Every matched term that occurs in the text is highlighted somewhere.
	norm := an.Normalize(text).Text
	for _, m := range matched {
		if !strings.Contains(norm, m) {
			continue // matched in the title or heading
		}
		if !slices.ContainsFunc(spans, func(sp retrieve.Span) bool {
			return sp.Start < sp.End && sp.End <= len(text) && strings.Contains(an.Normalize(text[sp.Start:sp.End]).Text, m)
		}) {
			t.Errorf("Search(%q) matched %q occurs in %q but highlights %v miss it", query, m, text, spans)
		}
	}
}

func TestSearchHits(t *testing.T) {
	an := testAnalyzer(t)
	s := testSearcher(t, retrieve.Options{})
	queries := []struct{ collection, query string }{
		{"c", "价格"},
		{"c", "客户 价格"},
		{"c", "PPR-9087 节能"},
		{"c", "什么是有限空间作业"},
		{"c", "第十二条"},
		{"c", "客户说太贵怎么办"},
		{"c", "新员工第一天入职的时候应该去哪里领取工牌和电脑呢"},
		{"c", "什么"},
		{"c", "ＰＰＲ－９０８７"},
		{"t", "PPR-9087 价格"},
		{"t", "客户关心价格时怎么说明价值"},
	}
	for _, q := range queries {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: q.collection, Query: q.query, TopK: 20})
		if err != nil {
			t.Fatalf("Search(%q) = %v", q.query, err)
		}
		checkHits(t, an, q.query, res.Hits)
	}
}

// highlighted returns the highlighted substrings of a hit.
func highlighted(h retrieve.Hit) []string {
	var out []string
	for _, sp := range h.Highlights {
		out = append(out, h.Text[sp.Start:sp.End])
	}
	return out
}

// TestSearchHighlights checks the exact highlights of top hits, including
// traditional and full-width text searched in simplified Chinese: the spans
// point into the original text.
func TestSearchHighlights(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	tests := []struct {
		collection, query string
		wantDoc           string
		want              []string
	}{
		{"c", "价格", "sales-objections", []string{"价格"}},
		{"c", "客户 价格", "sales-objections", []string{"客户", "价格", "客户"}},
		{"c", "客户说太贵怎么办", "sales-objections", []string{"客户说", "太贵", "客户", "说"}},
		{"c", "PPR-9087", "product-ppr", []string{"PPR-9087"}},
		{"c", "ppr-9087 节能", "product-ppr", []string{"PPR-9087", "节能"}},
		{"c", "有限空间作业", "safety-rules", []string{"有限空间作业", "作业", "作业"}},
		// Traditional characters and full-width letters, found from simplified
		// and half-width queries: the spans cover the original characters.
		{"t", "价格", "product-trad", []string{"價格", "價格"}},
		{"t", "PPR-9087", "product-trad", []string{"ＰＰＲ－９０８７"}},
		{"t", "PPR-9087 价格", "product-trad", []string{"ＰＰＲ－９０８７", "價格", "價格"}},
		{"t", "ｐｐｒ－９０８７ 價格", "product-trad", []string{"ＰＰＲ－９０８７", "價格", "價格"}},
		{"t", "客户关心价格", "product-trad", []string{"價格", "客戶關心價格"}},
	}
	for _, tt := range tests {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: tt.collection, Query: tt.query})
		if err != nil || len(res.Hits) == 0 {
			t.Fatalf("Search(%q) = %v, %v, want hits", tt.query, res.Hits, err)
		}
		top := res.Hits[0]
		if top.DocID != tt.wantDoc {
			t.Fatalf("Search(%q) = %v, want %s first", tt.query, docIDs(res.Hits), tt.wantDoc)
		}
		if diff := cmp.Diff(tt.want, highlighted(top)); diff != "" {
			t.Errorf("Search(%q) highlights %v in %q mismatch (-want +got):\n%s", tt.query, top.Highlights, top.Text, diff)
		}
	}
}

func TestHighlights(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	tests := []struct {
		name    string
		text    string
		matched []string
		want    []retrieve.Span
	}{
		{"no terms", "客户说价格太贵", nil, nil},
		{"absent term", "客户说价格太贵", []string{"折扣"}, nil},
		{"empty term", "客户说价格太贵", []string{""}, nil},
		{"one term", "客户说价格太贵", []string{"价格"}, []retrieve.Span{{9, 15}}},
		{"repeated term", "客户说客户", []string{"客户"}, []retrieve.Span{{0, 6}, {9, 15}}},
		{"terms out of order", "客户说价格太贵", []string{"太贵", "客户"}, []retrieve.Span{{0, 6}, {15, 21}}},
		{"overlapping terms merge", "有限空间作业", []string{"有限空间", "空间作业"}, []retrieve.Span{{0, 18}}},
		{"nested terms merge", "有限空间作业", []string{"空间", "有限空间作业"}, []retrieve.Span{{0, 18}}},
		{"adjacent terms merge", "价格太贵", []string{"价格", "太贵"}, []retrieve.Span{{0, 12}}},
		{"duplicate terms", "价格太贵", []string{"价格", "价格"}, []retrieve.Span{{0, 6}}},
		{"upper case", "型号 PPR-9087 节能", []string{"ppr-9087"}, []retrieve.Span{{7, 15}}},
		{"full width", "型號ＰＰＲ－９０８７的", []string{"ppr-9087"}, []retrieve.Span{{6, 30}}},
		{"traditional", "客戶關心價格時", []string{"客户", "价格"}, []retrieve.Span{{0, 6}, {12, 18}}},
		// One original character that normalises to several: the span covers
		// the whole character, never an empty or split range.
		{"expanding character, whole", "㍿会社", []string{"株式会社"}, []retrieve.Span{{0, 3}}},
		{"expanding character, prefix", "㍿", []string{"株式"}, []retrieve.Span{{0, 3}}},
		{"expanding character, suffix", "㍿", []string{"会社"}, []retrieve.Span{{0, 3}}},
		{"ligature", "ﬁle", []string{"fi"}, []retrieve.Span{{0, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Highlights(tt.text, tt.matched)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Highlights(%q, %q) mismatch (-want +got):\n%s", tt.text, tt.matched, diff)
			}
		})
	}
}

func TestSearchFilters(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	meta := map[string]map[string]string{}
	for _, src := range corpus {
		meta[src.id] = src.meta
	}
	hasPrefix := func(path, prefix []string) bool {
		return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
	}
	tests := []struct {
		name   string
		query  string
		filter index.Filter
		// keep says which unfiltered hits the filter keeps.
		keep func(h retrieve.Hit) bool
	}{
		{"one document", "客户", index.Filter{DocIDs: []string{"sales-objections"}},
			func(h retrieve.Hit) bool { return h.DocID == "sales-objections" }},
		{"two documents", "客户 价格 节能", index.Filter{DocIDs: []string{"product-ppr", "sales-objections"}},
			func(h retrieve.Hit) bool { return h.DocID == "product-ppr" || h.DocID == "sales-objections" }},
		{"unknown document", "客户", index.Filter{DocIDs: []string{"no-such-doc"}},
			func(retrieve.Hit) bool { return false }},
		{"metadata", "作业 客户 价格", index.Filter{Metadata: map[string]string{"course": "safety"}},
			func(h retrieve.Hit) bool { return meta[h.DocID]["course"] == "safety" }},
		{"metadata, several documents", "价格 节能 客户", index.Filter{Metadata: map[string]string{"course": "sales"}},
			func(h retrieve.Hit) bool { return meta[h.DocID]["course"] == "sales" }},
		{"metadata value nobody has", "客户", index.Filter{Metadata: map[string]string{"course": "finance"}},
			func(retrieve.Hit) bool { return false }},
		{"heading prefix: one chapter", "客户", index.Filter{HeadingPrefix: []string{"销售异议处理", "第二章 信任异议"}},
			func(h retrieve.Hit) bool {
				return hasPrefix(h.HeadingPath, []string{"销售异议处理", "第二章 信任异议"})
			}},
		{"heading prefix: a chapter with articles", "作业 必须 事故", index.Filter{HeadingPrefix: []string{"安全生产规定", "第三章 作业安全"}},
			func(h retrieve.Hit) bool {
				return hasPrefix(h.HeadingPath, []string{"安全生产规定", "第三章 作业安全"})
			}},
		{"heading prefix: one article", "作业 必须 事故", index.Filter{HeadingPrefix: []string{"安全生产规定", "第三章 作业安全", "第十三条"}},
			func(h retrieve.Hit) bool {
				return hasPrefix(h.HeadingPath, []string{"安全生产规定", "第三章 作业安全", "第十三条"})
			}},
		{"heading prefix: whole document", "客户", index.Filter{HeadingPrefix: []string{"销售异议处理"}},
			func(h retrieve.Hit) bool { return h.DocID == "sales-objections" }},
		{"heading prefix: case and spaces ignored", "节能 维修 客户", index.Filter{HeadingPrefix: []string{" ppr-9087 节能空压机 "}},
			func(h retrieve.Hit) bool { return h.DocID == "product-ppr" }},
		{"heading prefix: no such heading", "客户", index.Filter{HeadingPrefix: []string{"第九章"}},
			func(retrieve.Hit) bool { return false }},
		{"document and metadata", "客户 价格 节能", index.Filter{DocIDs: []string{"product-ppr", "safety-rules"}, Metadata: map[string]string{"course": "sales"}},
			func(h retrieve.Hit) bool { return h.DocID == "product-ppr" }},
		{"document and metadata disagree", "客户", index.Filter{DocIDs: []string{"safety-rules"}, Metadata: map[string]string{"course": "sales"}},
			func(retrieve.Hit) bool { return false }},
		{"metadata and heading prefix", "客户 价格", index.Filter{Metadata: map[string]string{"course": "sales"}, HeadingPrefix: []string{"销售异议处理", "第一章 价格异议"}},
			func(h retrieve.Hit) bool {
				return hasPrefix(h.HeadingPath, []string{"销售异议处理", "第一章 价格异议"})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.query, TopK: 100})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, h := range all.Hits {
				if tt.keep(h) {
					want = append(want, h.ChunkID)
				}
			}
			if len(want) == len(all.Hits) {
				t.Fatalf("Search(%q): the filter keeps all %d hits; the test shows nothing", tt.query, len(want))
			}
			got, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: tt.query, TopK: 100, Filter: tt.filter})
			if err != nil {
				t.Fatalf("Search(%q, %+v) = %v", tt.query, tt.filter, err)
			}
			// Document evidence counts only chunks that pass the filter, so
			// scores (and order) may change; the set of hits may not.
			slices.Sort(want)
			if diff := cmp.Diff(want, slices.Sorted(slices.Values(chunkIDs(got.Hits)))); diff != "" {
				t.Errorf("Search(%q, %+v) mismatch (-want +got):\n%s", tt.query, tt.filter, diff)
			}
		})
	}
}

func TestSearchContext(t *testing.T) {
	store := testStore(t)
	ctx := t.Context()
	onboarding, err := store.Document(ctx, "c", "onboarding")
	if err != nil {
		t.Fatal(err)
	}
	// The section "第一天" is cut into several chunks.
	var day1 []string
	for _, c := range onboarding.Chunks {
		if slices.Equal(c.HeadingPath, []string{"新员工入职指南", "第一天"}) {
			day1 = append(day1, c.Text)
		}
	}
	if len(day1) < 3 {
		t.Fatalf("section 第一天 has %d chunks, want at least 3 for this test", len(day1))
	}
	section := strings.Join(day1, "\n")

	s := retrieve.New(store, retrieve.Options{})
	res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: "工牌", WithContext: true})
	if err != nil || len(res.Hits) == 0 {
		t.Fatalf("Search(%q) = %v, %v, want hits", "工牌", res.Hits, err)
	}
	if top := res.Hits[0]; top.Context != section {
		t.Errorf("Search(%q) context = %q, want the whole section %q", "工牌", top.Context, section)
	}
	for _, h := range res.Hits {
		if !strings.Contains(h.Context, h.Text) {
			t.Errorf("Search(%q) hit %s context %q does not contain its text %q", "工牌", h.ChunkID, h.Context, h.Text)
		}
		if strings.Contains(h.Context, "开通邮箱") != slices.Contains(h.HeadingPath, "第二天") {
			t.Errorf("Search(%q) hit %s (%v) context %q crosses sections", "工牌", h.ChunkID, h.HeadingPath, h.Context)
		}
	}

	// Without WithContext, no context.
	res, err = s.Search(ctx, retrieve.Request{Collection: "c", Query: "工牌"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hits {
		if h.Context != "" {
			t.Errorf("Search(%q) without WithContext: hit %s context = %q, want empty", "工牌", h.ChunkID, h.Context)
		}
	}

	// A small bound: every value from below the hit's length to the whole
	// section. The context is a window of whole chunks around the hit (or the
	// start of the hit when the hit alone is over the bound) and never longer
	// than the bound.
	for _, query := range []string{"工牌", "文化培训", "导师"} {
		for max := 5; max <= utf8.RuneCountInString(section)+5; max++ {
			s := retrieve.New(store, retrieve.Options{MaxContextRunes: max})
			res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: query, TopK: 1, Filter: index.Filter{DocIDs: []string{"onboarding"}}, WithContext: true})
			if err != nil || len(res.Hits) == 0 {
				t.Fatalf("Search(%q) = %v, %v, want hits", query, res.Hits, err)
			}
			h := res.Hits[0]
			if n := utf8.RuneCountInString(h.Context); n > max {
				t.Errorf("Search(%q) with MaxContextRunes %d: context is %d characters: %q", query, max, n, h.Context)
			}
			switch {
			case utf8.RuneCountInString(h.Text) > max:
				if !strings.HasPrefix(h.Text, h.Context) || h.Context == "" {
					t.Errorf("Search(%q) with MaxContextRunes %d: context %q, want the start of the hit %q", query, max, h.Context, h.Text)
				}
			case !strings.Contains(h.Context, h.Text) || !strings.Contains(section, h.Context):
				t.Errorf("Search(%q) with MaxContextRunes %d: context %q, want whole chunks of the section around %q", query, max, h.Context, h.Text)
			}
			if max >= utf8.RuneCountInString(section) && h.Context != section {
				t.Errorf("Search(%q) with MaxContextRunes %d: context %q, want the whole section %q", query, max, h.Context, section)
			}
		}
	}
}

func TestSearchDebug(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "客户说价格太贵"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Debug != nil {
		t.Errorf("Search(%q) without Debug: Debug = %+v, want nil", "客户说价格太贵", res.Debug)
	}
	for _, q := range []string{"客户说价格太贵", "什么", "没有这个词"} {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: q, Debug: true})
		if err != nil {
			t.Fatal(err)
		}
		d := res.Debug
		if d == nil {
			t.Fatalf("Search(%q) with Debug: Debug = nil", q)
		}
		if diff := cmp.Diff(s.QueryTerms(q), d.Terms); diff != "" {
			t.Errorf("Search(%q) Debug.Terms mismatch (-want +got):\n%s", q, diff)
		}
		if (len(res.Hits) > 0) != (d.Postings > 0) || d.Candidates < len(res.Hits) {
			t.Errorf("Search(%q) Debug = %d postings, %d candidates for %d hits", q, d.Postings, d.Candidates, len(res.Hits))
		}
		var names []string
		for _, st := range d.Stages {
			names = append(names, st.Name)
			if st.Took < 0 || st.Took > res.Took {
				t.Errorf("Search(%q) stage %s took %v, search took %v", q, st.Name, st.Took, res.Took)
			}
		}
		if diff := cmp.Diff([]string{"analyse", "bm25", "outline", "graph", "fuse", "fetch"}, names); diff != "" {
			t.Errorf("Search(%q) Debug.Stages mismatch (-want +got):\n%s", q, diff)
		}
	}
}

// TestSearchConcurrent runs searches in parallel (under -race in CI) and
// checks that each gets the answer it gets alone.
func TestSearchConcurrent(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	queries := []string{"价格", "PPR-9087", "第十二条", "什么是有限空间作业", "工牌", "客户"}
	want := map[string][]retrieve.Hit{}
	for _, q := range queries {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: q, TopK: 100, WithContext: true})
		if err != nil {
			t.Fatal(err)
		}
		want[q] = canonical(res.Hits)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				q := queries[(g+i)%len(queries)]
				res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: q, TopK: 100, WithContext: true})
				if err != nil {
					t.Errorf("Search(%q) = %v", q, err)
					return
				}
				if diff := cmp.Diff(want[q], canonical(res.Hits)); diff != "" {
					t.Errorf("Search(%q) in parallel mismatch (-want +got):\n%s", q, diff)
					return
				}
			}
		})
	}
	wg.Wait()
}
