package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// lexDocs has a chunk with the whole jargon term, chunks with only its
// pieces, and one with the product code.
var lexDocs = []index.Document{
	indextest.Doc("feedback", "反馈技巧", "三明治反馈法：先肯定，再指出问题，最后鼓励。", "及时反馈比年终反馈更有效。"),
	indextest.Doc("lunch", "午餐安排", "三明治和反馈表放在前台，三明治每人一份。"),
	indextest.Doc("tianshu", "产品目录", "天枢X9 是新一代节能控制器。", "天枢系列还有X7。"),
}

// TestReindexMatchesFreshIngest: a lexicon set after ingest and re-indexed in
// the background scores exactly like the same lexicon set before ingest.
// TestReindexResumesAfterCrash stops the re-indexer, changes the lexicon,
// closes the store with the work pending, and reopens it: the work resumes
// from the stored list and ends in the same state.
// TestLexiconWhileWriting changes the lexicon while documents are written and
// searched, many times: searches never fail, every write lands, and at the end
// each chunk is analysed with the lexicon in force (Verify checks it).
// FuzzTokensWithLexicon: for any text and any lexicon, segmentation does not
// panic, tokens cover their normalised text in the original, and every
// lexicon term found in a query comes out whole.

func lexStore(t *testing.T, docs []index.Document) (*Store, context.Context) {
	t.Helper()
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if len(docs) > 0 {
		if _, err := s.Upsert(ctx, "c", slices.Clone(docs)); err != nil {
			t.Fatal(err)
		}
	}
	return s, ctx
}

func replaceAndWait(t *testing.T, s *Store, l index.Lexicon) LexiconInfo {
	t.Helper()
	info, err := s.ReplaceLexicon(t.Context(), "c", l)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReindex(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Fatalf("Verify after lexicon change: %v", err)
	}
	return info
}

func searchIDs(t *testing.T, s *Store, q ...index.QueryTerm) []string {
	t.Helper()
	hits, _, err := s.Search(t.Context(), "c", q, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ChunkID)
	}
	return ids
}

func TestReplaceLexicon(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	whole := index.QueryTerm{Term: "三明治反馈法", Weight: 1}
	code := index.QueryTerm{Term: "天枢x9", Weight: 1}
	if ids := searchIDs(t, s, whole, code); len(ids) != 0 {
		t.Fatalf("before the lexicon, whole terms match %v, want nothing", ids)
	}
	statsBefore, _ := s.Collection("c")

	info := replaceAndWait(t, s, index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}, Synonyms: []index.Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}}})
	// Exactly the chunks whose text holds a new term: feedback's first and
	// product's first.
	if info.PendingReindex != 2 || info.Version == 0 {
		t.Errorf("ReplaceLexicon = %+v, want 2 chunks to re-index and a version", info)
	}
	if got, want := searchIDs(t, s, whole), []string{lexDocs[0].Chunks[0].ID}; !slices.Equal(got, want) {
		t.Errorf("after the lexicon, %q matches %v, want %v", whole.Term, got, want)
	}
	if got, want := searchIDs(t, s, code), []string{lexDocs[2].Chunks[0].ID}; !slices.Equal(got, want) {
		t.Errorf("after the lexicon, %q matches %v, want %v", code.Term, got, want)
	}
	// The pieces are still indexed.
	if got := searchIDs(t, s, index.QueryTerm{Term: "三明治", Weight: 1}); len(got) != 2 {
		t.Errorf("piece 三明治 matches %v, want 2 chunks", got)
	}
	// One more body term per occurrence: the statistics followed.
	statsAfter, _ := s.Collection("c")
	if d := statsAfter.Stats.SumLen[2] - statsBefore.Stats.SumLen[2]; d != 2 {
		t.Errorf("body length sum grew by %d, want 2", d)
	}
	got, err := s.Lexicon("c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Terms[1] != "天枢x9" || got.Version != info.Version || got.PendingReindex != 0 {
		t.Errorf("Lexicon() = %+v, want the normalised lexicon at version %d, nothing pending", got, info.Version)
	}

	// The same lexicon again writes nothing.
	again, err := s.ReplaceLexicon(ctx, "c", index.Lexicon{Terms: []string{"三明治反馈法", "天枢x9"}, Synonyms: []index.Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}}})
	if err != nil || again.Version != info.Version || again.PendingReindex != 0 {
		t.Errorf("ReplaceLexicon(same) = %+v, %v; want version %d, nothing to re-index", again, err, info.Version)
	}
	// Synonyms and stop words do not change indexing.
	if info := replaceAndWait(t, s, index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}, StopWords: []string{"的"}}); info.PendingReindex != 0 {
		t.Errorf("changing only stop words and synonyms re-indexes %d chunks, want 0", info.PendingReindex)
	}
	// A new document is indexed with the lexicon in force.
	if _, err := s.Upsert(ctx, "c", []index.Document{indextest.Doc("new", "新课", "复习三明治反馈法。")}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, whole); len(got) != 2 {
		t.Errorf("after a new upsert, %q matches %v, want 2 chunks", whole.Term, got)
	}
	// Removing a term re-indexes the chunks that hold it.
	if info := replaceAndWait(t, s, index.Lexicon{Terms: []string{"天枢X9"}}); info.PendingReindex != 2 {
		t.Errorf("removing a term re-indexes %d chunks, want 2", info.PendingReindex)
	}
	if got := searchIDs(t, s, whole); len(got) != 0 {
		t.Errorf("after removing the term, %q matches %v, want nothing", whole.Term, got)
	}
	if info := replaceAndWait(t, s, index.Lexicon{}); info.PendingReindex != 1 || len(info.Terms) != 0 {
		t.Errorf("clearing the lexicon = %+v, want 1 chunk re-indexed and no terms", info)
	}
	final, _ := s.Collection("c")
	fresh, _ := lexStore(t, append(slices.Clone(lexDocs), indextest.Doc("new", "新课", "复习三明治反馈法。")))
	want, _ := fresh.Collection("c")
	if final.Stats != want.Stats {
		t.Errorf("statistics after adding and removing terms %+v, want those of a fresh store %+v", final.Stats, want.Stats)
	}
}

func TestReindexMatchesFreshIngest(t *testing.T) {
	lex := index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9", "第十二条", "价格异议"}}
	docs := append(slices.Clone(fixture), lexDocs...)
	late, _ := lexStore(t, docs)
	info := replaceAndWait(t, late, lex)
	if info.PendingReindex == 0 {
		t.Fatal("nothing to re-index")
	}
	early, _ := lexStore(t, nil)
	replaceAndWait(t, early, lex)
	if _, err := early.Upsert(t.Context(), "c", slices.Clone(docs)); err != nil {
		t.Fatal(err)
	}
	// The keyword graph follows too: the term is a keyword of its chunks.
	lateGraph := dumpGraph(t, late, "c")
	if !strings.Contains(lateGraph, "kw 三明治反馈法 ") {
		t.Errorf("after re-indexing, 三明治反馈法 is no keyword of the graph:\n%s", lateGraph)
	}
	if diff := cmp.Diff(dumpGraph(t, early, "c"), lateGraph); diff != "" {
		t.Errorf("graph after re-index differs from a fresh store's (-fresh +re-indexed):\n%s", diff)
	}
	queries := [][]index.QueryTerm{
		{{Term: "三明治反馈法", Weight: 1}, {Term: "反馈", Weight: 0.4}},
		{{Term: "天枢x9", Weight: 1}, {Term: "节能", Weight: 1}},
		{{Term: "价格", Weight: 1}, {Term: "客户", Weight: 1}, {Term: "价格", Weight: 1, Gram: true}},
		{{Term: "第十二条", Weight: 1}, {Term: "有限", Weight: 1}},
	}
	for _, q := range queries {
		a, _, err := late.Search(t.Context(), "c", q, index.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := early.Search(t.Context(), "c", q, index.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Fatalf("Search(%v): %d hits after re-index, %d in a fresh store", q, len(a), len(b))
		}
		for i := range a {
			if a[i].ChunkID != b[i].ChunkID || math.Abs(a[i].Score-b[i].Score) > 1e-9 {
				t.Errorf("Search(%v) hit %d: %s %.9f after re-index, %s %.9f in a fresh store", q, i, a[i].ChunkID, a[i].Score, b[i].ChunkID, b[i].Score)
			}
		}
	}
}

func TestLexiconSingleChunk(t *testing.T) {
	s, _ := lexStore(t, []index.Document{indextest.Doc("one", "唯一", "黄金三问：问目标、问现状、问下一步。")})
	if info := replaceAndWait(t, s, index.Lexicon{Terms: []string{"黄金三问"}}); info.PendingReindex != 1 {
		t.Errorf("ReplaceLexicon on a one-chunk collection re-indexes %d chunks, want 1", info.PendingReindex)
	}
	if got := searchIDs(t, s, index.QueryTerm{Term: "黄金三问", Weight: 1}); len(got) != 1 {
		t.Errorf("one-chunk collection: 黄金三问 matches %v, want the chunk", got)
	}
	// An empty collection takes a lexicon too.
	e, _ := lexStore(t, nil)
	if info := replaceAndWait(t, e, index.Lexicon{Terms: []string{"黄金三问"}}); info.PendingReindex != 0 {
		t.Errorf("ReplaceLexicon on an empty collection re-indexes %d chunks, want 0", info.PendingReindex)
	}
}

func TestReplaceLexiconBadInput(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	if _, err := s.ReplaceLexicon(ctx, "missing", index.Lexicon{}); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("ReplaceLexicon(missing collection) = %v, want ErrNotFound", err)
	}
	if _, err := s.ReplaceLexicon(ctx, "c", index.Lexicon{Terms: []string{"a", ""}}); !errors.Is(err, index.ErrInvalid) {
		t.Errorf("ReplaceLexicon(empty term) = %v, want ErrInvalid", err)
	}
	// A rejected lexicon changes nothing.
	if info, _ := s.Lexicon("c"); info.Version != 0 {
		t.Errorf("after rejected lexicons, version %d, want 0", info.Version)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}

func TestReindexResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(ctx, "c", slices.Clone(lexDocs)); err != nil {
		t.Fatal(err)
	}
	s.stopReindex()
	<-s.reindexDone
	info, err := s.ReplaceLexicon(ctx, "c", index.Lexicon{Terms: []string{"三明治反馈法"}})
	if err != nil || info.PendingReindex != 1 {
		t.Fatalf("ReplaceLexicon = %+v, %v; want 1 chunk pending", info, err)
	}
	// Queries use the new lexicon at once, before the re-index.
	if v, _ := s.Vocab("c"); !v.IsTerm("三明治反馈法") {
		t.Error("the new lexicon is not in force before re-indexing")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitReindex(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s2, index.QueryTerm{Term: "三明治反馈法", Weight: 1}); len(got) != 1 {
		t.Errorf("after resuming, 三明治反馈法 matches %v, want 1 chunk", got)
	}
	// A lexicon record and its re-index record in the log but applied
	// nowhere (a crash right after the append): Badger and bleve both catch
	// up from the log at the next open.
	lex, err := s2.an.NormalizeLexicon(index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []index.Record{
		{Op: index.OpLexicon, Collection: "c", Lexicon: &lex},
		{Op: index.OpReindex, Collection: "c", ChunkIDs: []string{lexDocs[2].Chunks[0].ID}},
	}
	if _, err := s2.log.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if info, _ := s3.Lexicon("c"); info.PendingReindex != 0 || info.Version != recs[0].Seq {
		t.Errorf("after catch-up, lexicon %+v; want version %d, nothing pending", info, recs[0].Seq)
	}
	if err := s3.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s3, index.QueryTerm{Term: "天枢x9", Weight: 1}); len(got) != 1 {
		t.Errorf("after catch-up, 天枢x9 matches %v, want 1 chunk", got)
	}
	bp, tp, err := s3.Positions()
	if err != nil || tp["c"] != bp {
		t.Errorf("positions: badger %d, bleve %v, %v; want equal", bp, tp, err)
	}
}

func TestLexiconWhileWriting(t *testing.T) {
	var docs []index.Document
	for i := range 60 {
		docs = append(docs, indextest.Doc(fmt.Sprintf("d%02d", i), "课程", fmt.Sprintf("第%d课：三明治反馈法和黄金三问，天枢X9。", i), "反馈要及时。"))
	}
	s, ctx := lexStore(t, docs[:30])
	lexicons := []index.Lexicon{
		{Terms: []string{"三明治反馈法"}},
		{Terms: []string{"三明治反馈法", "黄金三问", "天枢X9"}},
		{Terms: []string{"天枢X9"}},
		{},
	}
	done := make(chan struct{})
	errs := make(chan error, 2)
	go func() { // searcher
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				errs <- nil
				return
			default:
			}
			if _, _, err := s.Search(ctx, "c", []index.QueryTerm{{Term: "三明治反馈法", Weight: 1}, {Term: "反馈", Weight: 0.4}}, index.Filter{}, 10); err != nil {
				errs <- err
				return
			}
			if i == 200 {
				errs <- nil
				return
			}
		}
	}()
	go func() { // writer
		for i := 30; i < 60; i++ {
			if _, err := s.Upsert(ctx, "c", []index.Document{docs[i]}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for round := range 3 {
		for _, l := range lexicons {
			if _, err := s.ReplaceLexicon(ctx, "c", l); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	final := index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}}
	replaceAndWait(t, s, final) // Verify: lengths match the final lexicon
	hits, _, err := s.Search(ctx, "c", []index.QueryTerm{{Term: "天枢x9", Weight: 1}}, index.Filter{}, 100)
	if err != nil || len(hits) != 60 {
		t.Errorf("天枢x9 matches %d chunks (%v), want all 60 lessons", len(hits), err)
	}
	info, _ := s.Collection("c")
	if info.Stats.Docs != 60 {
		t.Errorf("%d documents, want 60", info.Stats.Docs)
	}
}

func TestLexiconDeleteCollection(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	s.stopReindex() // keep the queue full
	<-s.reindexDone
	if info, err := s.ReplaceLexicon(ctx, "c", index.Lexicon{Terms: []string{"三明治反馈法"}}); err != nil || info.PendingReindex != 1 {
		t.Fatalf("ReplaceLexicon = %+v, %v; want 1 chunk pending", info, err)
	}
	if err := s.DeleteCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lexicon("c"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("Lexicon(deleted collection) = %v, want ErrNotFound", err)
	}
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Lexicon("c")
	if err != nil || info.Version != 0 || len(info.Terms) != 0 || info.PendingReindex != 0 {
		t.Errorf("Lexicon(new collection of the same name) = %+v, %v; want empty", info, err)
	}
	if _, err := s.Upsert(ctx, "c", slices.Clone(lexDocs)); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, index.QueryTerm{Term: "三明治反馈法", Weight: 1}); len(got) != 0 {
		t.Errorf("the deleted collection's lexicon still applies: 三明治反馈法 matches %v", got)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}
