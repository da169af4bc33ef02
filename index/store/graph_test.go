package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// dumpGraph renders a collection's graph canonically.
func dumpGraph(t *testing.T, s *Store, coll string) string {
	t.Helper()
	c, err := s.get(coll)
	if err != nil {
		t.Fatal(err)
	}
	return c.graph.Canonical()
}

func section(id, title string, parts ...[2]string) index.Document {
	d := index.Document{ID: id, Title: title}
	for i, p := range parts {
		path := []string{title, p[0]}
		d.Chunks = append(d.Chunks, index.Chunk{ID: index.ChunkID(id, path, i), HeadingPath: path, Ordinal: i, Text: p[1]})
	}
	return d
}

var graphFixture = []index.Document{
	section("ppr", "PPR-9087 空压机",
		[2]string{"节能原理", "PPR-9087 采用变频节能技术，空压机能耗降低三成，节能效果显著。"},
		[2]string{"日常维护", "空压机每半年保养一次，保养时更换滤芯，滤芯必须使用原厂配件。"}),
	section("filter", "配件手册",
		[2]string{"滤芯更换", "滤芯更换周期为六个月，滤芯堵塞会导致压差升高。"},
		[2]string{"润滑油", "润滑油每年更换，润滑油型号见铭牌。"}),
	section("sales", "价格异议处理",
		[2]string{"应对步骤", "客户说价格太贵时，先确认预算，再说明价值，不要第一时间降价。"},
		[2]string{"折扣审批", "折扣超过百分之十五需要区域经理审批。"}),
}

func TestGraphIncrementalMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	docs := slices.Clone(graphFixture)
	if _, err := s.Upsert(ctx, "c", slices.Clone(docs)); err != nil {
		t.Fatal(err)
	}
	// Edit one section, delete a document, add another: each write touches
	// only its own document's part of the graph.
	edited := section("ppr", "PPR-9087 空压机",
		[2]string{"节能原理", "PPR-9087 采用变频节能技术，空压机能耗降低三成。"},
		[2]string{"故障排查", "空压机压差升高时，先检查滤芯是否堵塞。"})
	if _, err := s.Upsert(ctx, "c", []index.Document{edited}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "c", []string{"sales"}); err != nil {
		t.Fatal(err)
	}
	extra := section("trust", "建立信任", [2]string{"案例", "客户不信任小公司时，用案例和第三方认证建立信任。"})
	if _, err := s.Upsert(ctx, "c", []index.Document{extra}); err != nil {
		t.Fatal(err)
	}
	incremental := dumpGraph(t, s, "c")
	// The searches over it (which number chunks in reused slots after the
	// edits) must rank as over a graph built afresh.
	searched := graphSearches(t, s)
	if !strings.Contains(incremental, "kw 滤芯") || strings.Contains(incremental, "应对步骤") {
		t.Fatalf("graph after edits lacks 滤芯 or keeps the deleted document:\n%s", incremental)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, the graph is built from Badger: it must be the same.
	s = openTestStore(t, dir)
	if diff := cmp.Diff(incremental, dumpGraph(t, s, "c")); diff != "" {
		t.Errorf("graph after reopen differs from the incrementally maintained one (-incremental +reopened):\n%s", diff)
	}
	if diff := cmp.Diff(searched, graphSearches(t, s)); diff != "" {
		t.Errorf("graph and outline searches after reopen differ (-incremental +reopened):\n%s", diff)
	}
	// A fresh store given only the final documents has the same graph too.
	fresh := openTestStore(t, t.TempDir())
	if err := fresh.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Upsert(ctx, "c", []index.Document{edited, graphFixture[1], extra}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(incremental, dumpGraph(t, fresh, "c")); diff != "" {
		t.Errorf("incremental graph differs from one built from the final documents (-incremental +fresh):\n%s", diff)
	}
	if diff := cmp.Diff(searched, graphSearches(t, fresh)); diff != "" {
		t.Errorf("graph and outline searches differ from a fresh store's (-incremental +fresh):\n%s", diff)
	}
}

// graphSearches renders the graph and outline searches of collection c for
// a few queries.
func graphSearches(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, q := range [][]string{{"滤芯"}, {"空压机", "节能"}, {"客户", "信任"}, {"润滑油", "更换", "故障"}} {
		var terms []index.QueryTerm
		for _, w := range q {
			terms = append(terms, index.QueryTerm{Term: w, Weight: 1})
		}
		g, err := s.GraphSearch(context.Background(), "c", terms, index.Filter{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.OutlineSearch(context.Background(), "c", terms, index.Filter{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range append(g, o...) {
			out = append(out, fmt.Sprintf("%v: %s %.6f %v", q, h.ChunkID, h.Score, h.Via))
		}
	}
	if len(out) == 0 {
		t.Fatal("no graph or outline hits")
	}
	return out
}

func TestOutlineSearch(t *testing.T) {
	ctx := context.Background()
	s := graphStore(t)
	terms := []index.QueryTerm{{Term: "滤芯", Weight: 1}, {Term: "更换", Weight: 1}}
	hits, err := s.OutlineSearch(ctx, "c", terms, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].ChunkID != graphFixture[1].Chunks[0].ID {
		t.Fatalf("OutlineSearch(滤芯 更换) = %v, want the 滤芯更换 section first", hitIDs(hits))
	}
	if want := []string{"配件手册", "滤芯更换"}; !slices.Equal(hits[0].Via, want) {
		t.Errorf("outline path = %v, want %v", hits[0].Via, want)
	}
	// A match on the document title alone does not make a section match.
	hits, err = s.OutlineSearch(ctx, "c", []index.QueryTerm{{Term: "配件", Weight: 1}, {Term: "手册", Weight: 1}}, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 0 {
		t.Errorf("OutlineSearch(配件 手册) = %v, want nothing: only the title matches", hitIDs(hits))
	}
	// Heading-path scoping applies to outline candidates.
	hits, err = s.OutlineSearch(ctx, "c", terms, index.Filter{HeadingPrefix: []string{"PPR-9087 空压机"}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if !strings.HasPrefix(h.ChunkID, "ppr#") {
			t.Errorf("scoped OutlineSearch returned %s, outside the scope", h.ChunkID)
		}
	}
}

func TestGraphSearchReachesNeighbours(t *testing.T) {
	ctx := context.Background()
	s := graphStore(t)
	// 节能 is a keyword of the 节能原理 chunk only; its neighbour 空压机 leads
	// to the 日常维护 chunk, which does not contain 节能.
	hits, err := s.GraphSearch(ctx, "c", []index.QueryTerm{{Term: "节能", Weight: 1}}, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]index.Hit{}
	for _, h := range hits {
		byID[h.ChunkID] = h
	}
	seed, hop := graphFixture[0].Chunks[0].ID, graphFixture[0].Chunks[1].ID
	if h, ok := byID[seed]; !ok || !slices.Equal(h.Via, []string{"节能"}) || hits[0].ChunkID != seed {
		t.Fatalf("GraphSearch(节能) = %v (%+v), want %s first via [节能]", hitIDs(hits), byID[seed], seed)
	}
	h, ok := byID[hop]
	if !ok || len(h.Via) != 2 || h.Via[0] != "节能" {
		t.Fatalf("GraphSearch(节能) = %v, want %s reached through a neighbour of 节能, got via %v", hitIDs(hits), hop, h.Via)
	}
	if strings.Contains(graphFixture[0].Chunks[1].Text, "节能") {
		t.Fatal("fixture: the hop chunk must not contain the seed")
	}
	// Filters apply to graph candidates.
	hits, err = s.GraphSearch(ctx, "c", []index.QueryTerm{{Term: "节能", Weight: 1}}, index.Filter{DocIDs: []string{"filter"}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if !strings.HasPrefix(h.ChunkID, "filter#") {
			t.Errorf("GraphSearch with a document filter returned %s", h.ChunkID)
		}
	}
}

func TestGraphSingleChunkCollection(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("one")); err != nil {
		t.Fatal(err)
	}
	d := section("only", "唯一文档", [2]string{"唯一章节", "空压机节能技术说明。"})
	if _, err := s.Upsert(ctx, "one", []index.Document{d}); err != nil {
		t.Fatal(err)
	}
	// Heading words for the outline, a keyword for the graph: with one chunk
	// every idf is at its floor, and nothing may divide by zero.
	terms := []index.QueryTerm{{Term: "唯一", Weight: 1}, {Term: "章节", Weight: 1}, {Term: "节能", Weight: 0.1}}
	for name, search := range map[string]func(context.Context, string, []index.QueryTerm, index.Filter, int) ([]index.Hit, error){
		"outline": s.OutlineSearch, "graph": s.GraphSearch,
	} {
		hits, err := search(ctx, "one", terms, index.Filter{}, 10)
		if err != nil || len(hits) != 1 || hits[0].ChunkID != d.Chunks[0].ID {
			t.Errorf("%s search on a one-chunk collection = %v, %v; want its chunk", name, hitIDs(hits), err)
		}
	}
	var sections, keywords []string
	for line := range strings.Lines(dumpGraph(t, s, "one")) {
		switch {
		case strings.HasPrefix(line, "sec "):
			sections = append(sections, line)
		case strings.HasPrefix(line, "kw "):
			keywords = append(keywords, line)
		}
	}
	if len(sections) != 1 || !strings.Contains(sections[0], "["+d.Chunks[0].ID+"]") || len(keywords) == 0 {
		t.Errorf("graph has sections %q and %d keywords; want one section of the one chunk, and keywords", sections, len(keywords))
	}
}

func TestFusionWeightsValidate(t *testing.T) {
	nan := func() float64 { var z float64; return z / z }()
	for _, w := range []index.FusionWeights{{BM25: -1}, {BM25: 1, Graph: nan}, {Outline: 11}, {}} {
		if err := w.Validate(); err == nil {
			t.Errorf("FusionWeights%+v.Validate() = nil, want an error", w)
		}
	}
	if err := index.DefaultFusion.Validate(); err != nil {
		t.Errorf("DefaultFusion.Validate() = %v", err)
	}
	c := index.DefaultCollection("c")
	c.K1 = nan
	if err := c.Validate(); err == nil {
		t.Error("a collection with k1 NaN validated")
	}
}

func hitIDs(hits []index.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ChunkID
	}
	return ids
}

func TestVerifyCatchesGraphDrift(t *testing.T) {
	ctx := context.Background()
	s := graphStore(t)
	if err := s.Verify(ctx, "c"); err != nil {
		t.Fatalf("Verify = %v on a consistent store", err)
	}
	c, _ := s.get("c")
	c.graph.Put("sales", nil) // the graph forgets a document Badger still has
	if err := s.Verify(ctx, "c"); err == nil || !strings.Contains(err.Error(), "keyword graph") {
		t.Errorf("Verify = %v, want the graph drift reported", err)
	}
}

// graphStore opens a store with graphFixture in collection "c".
func graphStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", slices.Clone(graphFixture)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOutlineUsesLexicon(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	d := section("fb", "反馈技巧", [2]string{"三明治反馈法", "先肯定，再提改进，最后鼓励。"}, [2]string{"其他方法", "反馈要及时，对事不对人。"})
	if _, err := s.Upsert(ctx, "c", []index.Document{d}); err != nil {
		t.Fatal(err)
	}
	terms := []index.QueryTerm{{Term: "三明治反馈法", Weight: 1}}
	if hits, _ := s.OutlineSearch(ctx, "c", terms, index.Filter{}, 10); len(hits) != 0 {
		t.Fatalf("before the lexicon, the whole term matched a heading: %v", hitIDs(hits))
	}
	if _, err := s.ReplaceLexicon(ctx, "c", index.Lexicon{Terms: []string{"三明治反馈法"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReindex(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	hits, err := s.OutlineSearch(ctx, "c", terms, index.Filter{}, 10)
	if err != nil || len(hits) == 0 || hits[0].ChunkID != d.Chunks[0].ID {
		t.Fatalf("after the lexicon, OutlineSearch(三明治反馈法) = %v, %v; want the 三明治反馈法 section", hitIDs(hits), err)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}

// TestUpgradeOldStore opens a store written before chunk keywords existed
// (simulated by stripping them and the graph version) and checks that the
// chunks are re-indexed in the background into the same graph a fresh store
// builds.
func TestUpgradeOldStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", slices.Clone(graphFixture)); err != nil {
		t.Fatal(err)
	}
	want := dumpGraph(t, s, "c")
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, infix := range []string{docKeyInfix, chunkKeyInfix} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + "c" + infix), PrefetchValues: true})
			var keys [][]byte
			var vals [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				var m map[string]any
				if err := json.Unmarshal(v, &m); err != nil {
					it.Close()
					return err
				}
				delete(m, "keywords")
				if chunks, ok := m["chunks"].([]any); ok {
					for _, ch := range chunks {
						delete(ch.(map[string]any), "keywords")
					}
				}
				b, _ := json.Marshal(m)
				keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, b)
			}
			it.Close()
			for i := range keys {
				if err := txn.Set(keys[i], vals[i]); err != nil {
					return err
				}
			}
		}
		return txn.Delete(graphVersionKey("c"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.WaitReindex(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, dumpGraph(t, s, "c")); diff != "" {
		t.Errorf("graph after the upgrade differs from a fresh one (-fresh +upgraded):\n%s", diff)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
	// Once upgraded, a reopen queues nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	c, _ := s.get("c")
	c.mu.RLock()
	pending := c.pending
	c.mu.RUnlock()
	if pending != 0 {
		t.Errorf("after the upgrade, a reopen queued %d chunks", pending)
	}
}

// TestOpenNamesCorruptDocumentRecord: a document record that does not
// decode fails the open that rebuilds the graph with an error naming it,
// with more records after it than the graph loader holds in flight (its
// pipeline must drain, not stall).
func TestOpenNamesCorruptDocumentRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	var docs []index.Document
	for i := range 1500 {
		docs = append(docs, indextest.Doc(fmt.Sprintf("d%04d", i), "价格异议", fmt.Sprintf("客户第%d次说价格太贵，先认同再给方案。", i)))
	}
	if _, err := s.Upsert(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	bad := docKey("c", "d0100")
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(bad, []byte(`{"id": "d0100", "chunks": [`)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, graphDir)); err != nil { // rebuild it
		t.Fatal(err)
	}
	_, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err == nil || !strings.Contains(err.Error(), string(bad)) {
		t.Fatalf("open with a corrupt record = %v, want an error naming %q", err, bad)
	}
}

// TestGraphDecoderMatchesStd: the graph loader decodes document records with
// a faster JSON decoder than the one that wrote them; every record decodes
// to the same document with both, and damage is damage with both.
func TestGraphDecoderMatchesStd(t *testing.T) {
	s := openWithCollection(t, t.TempDir(), "c")
	docs := indextest.Fixture()
	docs[0].Metadata = map[string]string{"course": "销售 \"引号\" \\ 反斜杠", "level": "初级\u2028"}
	if _, err := s.Upsert(t.Context(), "c", docs); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + "c" + docKeyInfix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var std, fast index.Document
			if err := decodeValue(it.Item().Key(), b, &std); err != nil {
				return err
			}
			if err := decodeValueFast(it.Item().Key(), b, &fast); err != nil {
				return err
			}
			if diff := cmp.Diff(std, fast); diff != "" {
				t.Errorf("record %s decodes differently (-std +fast):\n%s", it.Item().Key(), diff)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(docs) {
		t.Fatalf("compared %d records, want %d", n, len(docs))
	}
	for _, bad := range [][]byte{nil, []byte(`{"id":`), []byte(`{"id":"x","chunks":[{"keywords":[{"t":1}]}]}`)} {
		var d index.Document
		if err := decodeValueFast([]byte("k"), bad, &d); !errors.Is(err, index.ErrDamaged) {
			t.Errorf("decodeValueFast(%q) = %v, want ErrDamaged", bad, err)
		}
	}
}
