package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/indextest"
)

// testAnalyzer is the shared test Analyzer.
func testAnalyzer(t testing.TB) *analysis.Analyzer { return indextest.Analyzer(t) }

func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openWithCollection opens a store in dir and creates collection c in it;
// the test closes it.
func openWithCollection(t testing.TB, dir, c string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCollection(context.Background(), index.DefaultCollection(c)); err != nil {
		t.Fatal(err)
	}
	return s
}

var fixture = indextest.Fixture()

// refScore is a direct, map-based implementation of the scoring the index
// claims: BM25F over title/heading/body words plus GramWeight × BM25 over
// bigrams, with true field lengths. It shares only the Analyzer with the index.
func refScores(an *analysis.Analyzer, coll index.Collection, docs []index.Document, terms []index.QueryTerm) map[string]float64 {
	type chunkTerms struct {
		id    string
		terms bm25.Terms
	}
	var chunks []chunkTerms
	var sum [index.NumFields]float64
	for _, d := range docs {
		for i := range d.Chunks {
			a := bm25.Analyse(an, nil, d.Title, &d.Chunks[i])
			chunks = append(chunks, chunkTerms{d.Chunks[i].ID, a})
			for f := range index.NumFields {
				sum[f] += float64(len(a[f]))
			}
		}
	}
	n := float64(len(chunks))
	weights := [index.NumFields]float64{coll.Weights.Title, coll.Weights.Heading, coll.Weights.Body, 1}
	out := map[string]float64{}
	for _, qt := range terms {
		tf := map[string]float64{}
		for _, c := range chunks {
			for f := range index.NumFields {
				if (f == index.NumFields-1) != qt.Gram { // the last field holds the bigrams
					continue
				}
				cnt := 0
				for _, t := range c.terms[f] {
					if t == qt.Term {
						cnt++
					}
				}
				if cnt == 0 {
					continue
				}
				avg := sum[f] / n
				tf[c.id] += weights[f] * float64(cnt) / (1 - coll.B + coll.B*float64(len(c.terms[f]))/avg)
			}
		}
		df := float64(len(tf))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		w := qt.Weight
		if qt.Gram {
			w *= coll.GramWeight
		}
		for id, x := range tf {
			out[id] += w * idf * x * (coll.K1 + 1) / (coll.K1 + x)
		}
	}
	return out
}

func TestBM25MatchesReference(t *testing.T) {
	ctx := t.Context()
	an := testAnalyzer(t)
	s := openTestStore(t, t.TempDir())
	coll := index.DefaultCollection("ref")
	coll.DocWeight, coll.CoverWeight = 0, 0 // pure BM25F + bigrams: what the reference computes
	if err := s.CreateCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	// One upsert per document: several bleve segments, merged later.
	for _, d := range fixture {
		if _, err := s.Upsert(ctx, "ref", []index.Document{d}); err != nil {
			t.Fatal(err)
		}
	}
	queries := [][]index.QueryTerm{
		{{Term: "价格", Weight: 1}, {Term: "客户", Weight: 1}},
		{{Term: "ppr-9087", Weight: 1}, {Term: "节能", Weight: 0.5}},
		{{Term: "第十二条", Weight: 1}, {Term: "第十", Weight: 1, Gram: true}, {Term: "十二", Weight: 1, Gram: true}},
		{{Term: "经理", Weight: 1}, {Term: "审批", Weight: 1}, {Term: "经理", Weight: 1, Gram: true}},
		{{Term: "信任", Weight: 1}, {Term: "不存在的词", Weight: 1}},
	}
	var before [][]index.Hit
	for _, q := range queries {
		hits, _, err := s.Search(ctx, "ref", q, index.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := refScores(an, coll, fixture, q)
		if len(hits) != len(want) {
			t.Errorf("Search(%v) returned %d hits, reference scores %d chunks", q, len(hits), len(want))
		}
		for _, h := range hits {
			if d := math.Abs(h.Score - want[h.ChunkID]); d > 1e-6 {
				t.Errorf("Search(%v): chunk %s score %.9f, reference %.9f", q, h.ChunkID, h.Score, want[h.ChunkID])
			}
		}
		before = append(before, hits)
	}
	if err := s.ForceMerge(ctx, "ref"); err != nil {
		t.Fatal(err)
	}
	for i, q := range queries {
		hits, _, err := s.Search(ctx, "ref", q, index.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before[i], hits, cmp.AllowUnexported(index.Hit{})); diff != "" {
			t.Errorf("Search(%v) changed after a forced segment merge (-before +after):\n%s", q, diff)
		}
	}
	if err := s.Verify(ctx, "ref"); err != nil {
		t.Error(err)
	}
}

// TestBM25RandomCorpus compares with the reference on random corpora and
// queries drawn from a small vocabulary, so many terms repeat and tie.
func TestBM25RandomCorpus(t *testing.T) {
	ctx := t.Context()
	an := testAnalyzer(t)
	vocab := strings.Fields("价格 客户 经理 安全 事故 上报 授权 反馈 信任 产品 节能 审批 培训 目标 团队 沟通")
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		s := openTestStore(t, t.TempDir())
		coll := index.DefaultCollection("r")
		coll.DocWeight, coll.CoverWeight = 0, 0
		coll.K1, coll.B = 0.9+rng.Float64(), rng.Float64()
		if err := s.CreateCollection(ctx, coll); err != nil {
			t.Fatal(err)
		}
		var docs []index.Document
		for i := range 40 {
			var secs []string
			for range 1 + rng.IntN(3) {
				var words []string
				for range 3 + rng.IntN(20) {
					words = append(words, vocab[rng.IntN(len(vocab))])
				}
				secs = append(secs, strings.Join(words, "，")+"。")
			}
			docs = append(docs, indextest.Doc(fmt.Sprintf("d%d", i), vocab[rng.IntN(len(vocab))], secs...))
		}
		for i := 0; i < len(docs); i += 7 {
			if _, err := s.Upsert(ctx, "r", docs[i:min(i+7, len(docs))]); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			var q []index.QueryTerm
			for range 1 + rng.IntN(4) {
				q = append(q, index.QueryTerm{Term: vocab[rng.IntN(len(vocab))], Weight: 0.2 + rng.Float64(), Gram: rng.IntN(3) == 0})
			}
			hits, _, err := s.Search(ctx, "r", q, index.Filter{}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			want := refScores(an, coll, docs, q)
			if len(hits) != len(want) {
				t.Errorf("round %d: Search(%v) = %d hits, reference %d", round, q, len(hits), len(want))
			}
			for _, h := range hits {
				if d := math.Abs(h.Score - want[h.ChunkID]); d > 1e-6 {
					t.Errorf("round %d: Search(%v): %s = %.9f, reference %.9f", round, q, h.ChunkID, h.Score, want[h.ChunkID])
				}
			}
		}
	}
}

func TestUpsertSemantics(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	upsert := func(d index.Document) index.Outcome {
		t.Helper()
		outs, err := s.Upsert(ctx, "c", []index.Document{d})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	// versioned upserts document a with text at client version v.
	versioned := func(text string, v uint64) index.Outcome {
		t.Helper()
		d := indextest.Doc("a", "标题", text)
		d.Version = v
		return upsert(d)
	}
	a := indextest.Doc("a", "标题", "第一段内容。", "第二段内容。")
	steps := []struct {
		name string
		do   func() index.Outcome
		want index.Outcome
	}{
		{"new document", func() index.Outcome { return upsert(a) }, index.Added},
		{"same content", func() index.Outcome {
			return upsert(indextest.Doc("a", "标题", "第一段内容。", "第二段内容。"))
		}, index.Unchanged},
		{"one section edited", func() index.Outcome {
			return upsert(indextest.Doc("a", "标题", "第一段内容。", "第二段改过了。"))
		}, index.Updated},
		{"explicit version 100", func() index.Outcome { return versioned("版本一百。", 100) }, index.Updated},
		{"older version is ignored", func() index.Outcome { return versioned("旧版本。", 50) }, index.Stale},
		// Without a version, a write takes its log position (under 100):
		// applied, it would be dropped; it is Stale, not "updated" (it was
		// acknowledged as updated and dropped).
		{"no version over a client's version above the position", func() index.Outcome {
			return upsert(indextest.Doc("a", "标题", "不带版本的新内容。"))
		}, index.Stale},
		{"delete", func() index.Outcome {
			outs, err := s.Delete(ctx, "c", []string{"a"})
			if err != nil {
				t.Fatal(err)
			}
			return outs[0]
		}, index.Deleted},
		{"late write older than the tombstone", func() index.Outcome { return versioned("迟到的写入。", 1) }, index.Stale},
		// A late copy of the write the delete removed (a retry of it that
		// reached the log after the delete): its version, 100, is above the
		// delete's log position, and must not bring the document back.
		{"late copy of the deleted version", func() index.Outcome { return versioned("版本一百。", 100) }, index.Stale},
		// So the tombstone is at 100: without a version a write takes its
		// log position, below it.
		{"write after delete without version, the client's version above", func() index.Outcome {
			return upsert(indextest.Doc("a", "标题", "不带版本。"))
		}, index.Stale},
		{"write after delete with a newer version", func() index.Outcome { return versioned("重新写入。", 101) }, index.Added},
		{"delete of a missing document", func() index.Outcome {
			outs, err := s.Delete(ctx, "c", []string{"nope"})
			if err != nil {
				t.Fatal(err)
			}
			return outs[0]
		}, index.Unchanged},
		{"write without version over the client's version", func() index.Outcome { return upsert(indextest.Doc("a", "标题", "又一次。")) }, index.Stale},
		// Without client versions, a delete and a new write of the same id.
		{"another document without version", func() index.Outcome { return upsert(indextest.Doc("b", "标题", "乙。")) }, index.Added},
		{"its delete", func() index.Outcome {
			outs, err := s.Delete(ctx, "c", []string{"b"})
			if err != nil {
				t.Fatal(err)
			}
			return outs[0]
		}, index.Deleted},
		{"written again without version", func() index.Outcome { return upsert(indextest.Doc("b", "标题", "乙又来了。")) }, index.Added},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: outcome %v, want %v", st.name, got, st.want)
		}
		if err := s.Verify(ctx, "c"); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	d, err := s.Document(ctx, "c", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Chunks[0].Text; got != "重新写入。" {
		t.Errorf("Document(a) text = %q, want %q", got, "重新写入。")
	}
}

func TestEditReindexesOnlyChangedChunks(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	v1 := indextest.Doc("a", "标题", "第一段。", "第二段。", "第三段。")
	if _, err := s.Upsert(ctx, "c", []index.Document{v1}); err != nil {
		t.Fatal(err)
	}
	before := bleveIDs(t, s, "c")
	v2 := indextest.Doc("a", "标题", "第一段。", "第二段改了。", "第三段。")
	if _, err := s.Upsert(ctx, "c", []index.Document{v2}); err != nil {
		t.Fatal(err)
	}
	after := bleveIDs(t, s, "c")
	var kept, added []string
	for id := range after {
		if before[id] {
			kept = append(kept, id)
		} else {
			added = append(added, id)
		}
	}
	if len(kept) != 2 || len(added) != 1 || !strings.HasPrefix(added[0], v2.Chunks[1].ID+"@") {
		t.Errorf("after editing section 2: kept %v, added %v; want the two untouched chunks kept and only section 2 re-indexed", kept, added)
	}
}

func bleveIDs(t *testing.T, s *Store, coll string) map[string]bool {
	t.Helper()
	c, err := s.get(coll)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.text.Versions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFilters(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	docs := slices.Clone(fixture)
	docs[0].Metadata = map[string]string{"course": "sales"}
	docs[3].Metadata = map[string]string{"course": "sales"}
	docs[2].Metadata = map[string]string{"course": "safety"}
	if _, err := s.Upsert(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	q := []index.QueryTerm{{Term: "价格", Weight: 1}, {Term: "客户", Weight: 1}, {Term: "上报", Weight: 1}}
	tests := []struct {
		name    string
		f       index.Filter
		wantDoc []string
		wantErr error
	}{
		{"no filter", index.Filter{}, []string{"product", "safety", "sales", "trust"}, nil},
		{"document ids", index.Filter{DocIDs: []string{"trust", "safety"}}, []string{"safety", "trust"}, nil},
		{"metadata", index.Filter{Metadata: map[string]string{"course": "sales"}}, []string{"product", "sales"}, nil},
		{"metadata and ids", index.Filter{Metadata: map[string]string{"course": "sales"}, DocIDs: []string{"sales"}}, []string{"sales"}, nil},
		{"heading prefix", index.Filter{HeadingPrefix: []string{"第2节"}}, []string{"product", "safety", "sales", "trust"}, nil},
		{"heading prefix and ids", index.Filter{HeadingPrefix: []string{"第1节"}, DocIDs: []string{"sales"}}, []string{"sales"}, nil},
		{"unknown heading", index.Filter{HeadingPrefix: []string{"第9节"}}, nil, nil},
		{"unknown metadata field", index.Filter{Metadata: map[string]string{"nope": "x"}}, nil, index.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, _, err := s.Search(ctx, "c", q, tt.f, 100)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Search(filter %+v) error = %v, want %v", tt.f, err, tt.wantErr)
			}
			got := map[string]bool{}
			for _, h := range hits {
				got[index.DocIDOf(h.ChunkID)] = true
			}
			var gotDocs []string
			for d := range got {
				gotDocs = append(gotDocs, d)
			}
			slices.Sort(gotDocs)
			if diff := cmp.Diff(tt.wantDoc, gotDocs); diff != "" {
				t.Errorf("Search(filter %+v) documents (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

func TestCollectionIsolation(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	for _, name := range []string{"a", "b"} {
		if err := s.CreateCollection(ctx, index.DefaultCollection(name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Upsert(ctx, "a", fixture[:2]); err != nil {
		t.Fatal(err)
	}
	q := []index.QueryTerm{{Term: "价格", Weight: 1}}
	before, _, err := s.Search(ctx, "a", q, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Many documents about 价格 in b must not change a's scores.
	var many []index.Document
	for i := range 30 {
		many = append(many, indextest.Doc(fmt.Sprintf("b%d", i), "价格", "价格价格价格。"))
	}
	if _, err := s.Upsert(ctx, "b", many); err != nil {
		t.Fatal(err)
	}
	after, _, err := s.Search(ctx, "a", q, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, cmp.AllowUnexported(index.Hit{})); diff != "" {
		t.Errorf("collection a's results changed when b was written (-before +after):\n%s", diff)
	}
	if err := s.CreateCollection(ctx, index.DefaultCollection("a")); !errors.Is(err, index.ErrExists) {
		t.Errorf("CreateCollection(a) again = %v, want ErrExists", err)
	}
	if err := s.DeleteCollection(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Search(ctx, "b", q, index.Filter{}, 10); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("Search(deleted collection) = %v, want ErrNotFound", err)
	}
	if _, err := s.Upsert(ctx, "nope", fixture[:1]); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("Upsert(unknown collection) = %v, want ErrNotFound", err)
	}
}

// TestRecovery writes records to the log without applying them (as if the
// process died right after the durable append), then reopens: both stores
// must catch up from their own positions. Then it deletes the bleve index:
// reopening must rebuild it from Badger.
func TestRecovery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(ctx, "c", fixture[:2]); err != nil {
		t.Fatal(err)
	}
	// Crash simulation: append but do not apply.
	pending := []index.Document{fixture[2], fixture[3]}
	for i := range pending {
		pending[i].Seal()
		s.analyseDoc(nil, &pending[i], map[string]bm25.Terms{})
	}
	recs := []index.Record{{Op: index.OpUpsert, Collection: "c", Doc: &pending[0]}, {Op: index.OpUpsert, Collection: "c", Doc: &pending[1]}, {Op: index.OpDelete, Collection: "c", DocID: fixture[0].ID}}
	if _, err := s.log.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkState := func(s *Store) {
		t.Helper()
		if err := s.Verify(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		docs, _, err := s.ListDocuments(ctx, "c", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		if diff := cmp.Diff([]string{"leader", "product", "safety"}, ids); diff != "" {
			t.Errorf("documents after recovery (-want +got):\n%s", diff)
		}
		bp, tp, err := s.Positions()
		if err != nil {
			t.Fatal(err)
		}
		if tp["c"] != bp {
			t.Errorf("positions: badger %d, bleve %d; want equal", bp, tp["c"])
		}
		hits, _, err := s.Search(ctx, "c", []index.QueryTerm{{Term: "ppr-9087", Weight: 1}}, index.Filter{}, 5)
		if err != nil || len(hits) == 0 {
			t.Errorf("Search(ppr-9087) after recovery = %v, %v; want hits", hits, err)
		}
	}
	checkState(s2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(filepath.Join(dir, "bleve", "c")); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	checkState(s3)
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openTestStore(t, dir)
	_, err := Open(context.Background(), dir, testAnalyzer(t), Options{})
	if !errors.Is(err, index.ErrLocked) {
		t.Fatalf("Open(held directory) = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("Open(held directory) error %q does not say the directory is in use", err)
	}
}

func TestConcurrentWritesAndReads(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				// Writers 0/1 and 2/3 write the same ids: serialised, idempotent.
				d := indextest.Doc(fmt.Sprintf("w%d-%d", w/2, i), "并发", "并发写入的内容，价格与客户。")
				if _, err := s.Upsert(ctx, "c", []index.Document{d}); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.Search(ctx, "c", []index.QueryTerm{{Term: "价格", Weight: 1}}, index.Filter{}, 5); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
	info, err := s.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	if info.Stats.Docs != 20 {
		t.Errorf("documents = %d, want 20", info.Stats.Docs)
	}
}

// TestIndexFormatRebuilt checks that a bleve index stamped with another format
// (one that bm25.Open rejects with ErrFormat) is rebuilt from Badger on open,
// and that searches then find what they should.
func TestIndexFormatRebuilt(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Stamp the index as bm25 stamps its format, with a format it never had,
	// and leave a marker that a rebuild removes with the index.
	bleveDir := filepath.Join(dir, "bleve", "c")
	idx, err := bleve.Open(bleveDir)
	if err != nil {
		t.Fatal(err)
	}
	b := idx.NewBatch()
	b.SetInternal([]byte("zhisou_format"), []byte("0"))
	b.SetInternal([]byte("test_marker"), []byte("x"))
	if err := errors.Join(idx.Batch(b), idx.Close()); err != nil {
		t.Fatal(err)
	}
	if ix, err := bm25.Open(bleveDir, bm25.Options{}); !errors.Is(err, bm25.ErrFormat) {
		if err == nil {
			ix.Close()
		}
		t.Fatalf("bm25.Open(stamped index) = %v, want ErrFormat", err)
	}

	s2 := openTestStore(t, dir)
	if err := s2.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
	terms := []index.QueryTerm{{Term: "价格", Weight: 1}, {Term: "客户", Weight: 1}}
	got, _, err := s2.Search(ctx, "c", terms, index.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := s2.search(ctx, "c", terms, index.Filter{}, 10, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !slices.Equal(hitIDs(got), hitIDs(want)) {
		t.Errorf("Search = %v, exhaustive %v; want equal and non-empty", hitIDs(got), hitIDs(want))
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err = bleve.Open(bleveDir)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if m, err := idx.GetInternal([]byte("test_marker")); err != nil || len(m) != 0 {
		t.Errorf("marker after reopening = %q, %v; want none (the index rebuilt)", m, err)
	}
}
