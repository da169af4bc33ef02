package retrieve_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/retrieve"
)

// FuzzSearch runs arbitrary user text as a query against a small store. A
// search never panics; it returns hits that satisfy checkHits, or an error
// that is one of the sentinels of a bad request. ErrEmptyQuery means exactly
// that the query has no searchable terms.
func FuzzSearch(f *testing.F) {
	for _, q := range []string{
		"价格", "客户嫌贵怎么办", "PPR-9087", "ＰＰＲ－９０８７", "第十二条", "什么", "什么是有限空间作业",
		"a AND -b title:x", "+价格 -客户", "價格", "", " ", "，。！？", "\xff\xfe", "\x00", "㍿", "ﬁ",
		strings.Repeat("客户价格", 250), // exactly the limit
		strings.Repeat("的", 1001),   // one over
	} {
		f.Add(q)
	}
	an := testAnalyzer(f)
	s := testSearcher(f, retrieve.Options{})
	f.Fuzz(func(t *testing.T, q string) {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: q, TopK: 5, WithContext: true, Debug: true})
		valid := utf8.ValidString(q) && utf8.RuneCountInString(q) <= s.Options().MaxQueryRunes
		switch {
		case err == nil:
			if !valid {
				t.Fatalf("Search(%q) = %d hits, want ErrInvalid", q, len(res.Hits))
			}
			if len(res.Hits) > 5 || res.Debug == nil {
				t.Fatalf("Search(%q) = %d hits, debug %v", q, len(res.Hits), res.Debug)
			}
			checkHits(t, an, q, res.Hits)
			for _, h := range res.Hits {
				if !strings.Contains(h.Context, h.Text) {
					t.Errorf("Search(%q) hit %s context %q does not contain its text", q, h.ChunkID, h.Context)
				}
			}
		case errors.Is(err, retrieve.ErrEmptyQuery):
			if !valid || len(s.QueryTerms(q)) != 0 {
				t.Fatalf("Search(%q) = %v, but the query is valid with terms %v", q, err, s.QueryTerms(q))
			}
		case errors.Is(err, retrieve.ErrInvalid):
			if valid {
				t.Fatalf("Search(%q) = %v, want no error for a valid query", q, err)
			}
		default:
			t.Fatalf("Search(%q) = %v, want nil, ErrEmptyQuery or ErrInvalid", q, err)
		}
		if valid && strings.TrimSpace(q) != "" && len(s.QueryTerms(q)) == 0 && !errors.Is(err, retrieve.ErrEmptyQuery) {
			t.Fatalf("Search(%q) = %v, want ErrEmptyQuery for a query without terms", q, err)
		}
		if err != nil && errors.Is(err, index.ErrNotFound) {
			t.Fatalf("Search(%q) = %v: collection c exists", q, err)
		}
	})
}

// FuzzHighlights checks Highlights on arbitrary text and terms: it returns,
// and the spans are non-empty, sorted, disjoint byte ranges of the text that
// start and end on character boundaries.
func FuzzHighlights(f *testing.F) {
	for _, in := range [][2]string{
		{"客户说价格太贵", "价格"},
		{"型號ＰＰＲ－９０８７的價格", "ppr-9087"},
		{"㍿会社", "株式"},
		{"ﬁle", "fi"},
		{"客户说价格太贵", ""},
		{"\xff价\xfe格", "价"},
		{"e\u0301", "é"},
	} {
		f.Add(in[0], in[1])
	}
	s := testSearcher(f, retrieve.Options{})
	f.Fuzz(func(t *testing.T, text, term string) {
		terms := []string{term, testAnalyzer(t).Normalize(term).Text}
		spans := s.Highlights(text, terms)
		for i, sp := range spans {
			if sp.Start < 0 || sp.End > len(text) || sp.Start >= sp.End {
				t.Fatalf("Highlights(%q, %q) = %v: span %v outside the text or empty", text, terms, spans, sp)
			}
			if i > 0 && sp.Start < spans[i-1].End {
				t.Fatalf("Highlights(%q, %q) = %v, want sorted and disjoint", text, terms, spans)
			}
			if utf8.ValidString(text) && (!utf8.RuneStart(text[sp.Start]) || (sp.End < len(text) && !utf8.RuneStart(text[sp.End]))) {
				t.Fatalf("Highlights(%q, %q) = %v: span %v splits a character", text, terms, spans, sp)
			}
		}
	})
}
