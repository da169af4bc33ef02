package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/indextest"
)

// bigDoc is a document of n sections, each a chunk of about 100 characters;
// gen changes the text of every other section.
func bigDoc(id string, n, gen int) index.Document {
	var secs []string
	for i := range n {
		g := 0
		if i%2 == 1 {
			g = gen
		}
		secs = append(secs, fmt.Sprintf("第%d节第%d版：客户说价格太贵时，先确认客户的预算，再说明产品的价值。%s", i, g, strings.Repeat("培训的目标是安全生产。", 5)))
	}
	return indextest.Doc(id, "大文档", secs...)
}

// TestLargeRecordsApply checks that records whose chunk writes do not fit in
// one Badger transaction are applied in several, for an upsert, a rewrite
// that changes half the chunks and drops some, and a delete, each leaving a
// store that verifies and searches as it should, before and after reopening.
func TestLargeRecordsApply(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	s.maxTxnBytes = 16 << 10 // a few dozen chunks a transaction
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, what string, wantChunks int) {
		t.Helper()
		if err := s.Verify(ctx, "c"); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		info, err := s.Collection("c")
		if err != nil {
			t.Fatal(err)
		}
		if got := int(info.Stats.Chunks); got != wantChunks+10 { // the fixture's ten
			t.Errorf("%s: %d chunks, want %d", what, got, wantChunks+10)
		}
	}
	big := bigDoc("big", 600, 1)
	if _, err := s.Upsert(ctx, "c", []index.Document{big}); err != nil {
		t.Fatal(err)
	}
	check(s, "after a large upsert", 600)
	var terms []index.QueryTerm
	for _, tk := range s.an.QueryTokens("第599节第1版") {
		terms = append(terms, index.QueryTerm{Term: tk.Term, Weight: 1})
	}
	hits, _, err := s.Search(ctx, "c", terms, index.Filter{DocIDs: []string{"big"}}, 1)
	if err != nil || len(hits) == 0 || hits[0].ChunkID != big.Chunks[599].ID {
		t.Fatalf("search for the last section %v = %v, %v; want its chunk", terms, hitIDs(hits), err)
	}

	rewrite := bigDoc("big", 500, 2) // 300 chunks changed, 100 dropped
	if _, err := s.Upsert(ctx, "c", []index.Document{rewrite}); err != nil {
		t.Fatal(err)
	}
	check(s, "after a large rewrite", 500)
	d, err := s.Document(ctx, "c", "big")
	if err != nil || len(d.Chunks) != 500 || !strings.Contains(d.Chunks[499].Text, "第2版") {
		t.Fatalf("document after the rewrite: %d chunks, %v", len(d.Chunks), err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	s.maxTxnBytes = 16 << 10
	check(s, "after reopening", 500)
	if _, err := s.Delete(ctx, "c", []string{"big"}); err != nil {
		t.Fatal(err)
	}
	check(s, "after a large delete", 0)
}

// TestLargeRecordCrash checks a crash between a large record's chunk
// transactions and its last one: the record is in the log, its chunks are
// written, its document record and position are not. On reopening, the
// record is applied again and the store verifies.
func TestLargeRecordCrash(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	s.maxTxnBytes = 16 << 10
	old := bigDoc("big", 300, 1)
	if _, err := s.Upsert(ctx, "c", []index.Document{old}); err != nil {
		t.Fatal(err)
	}
	d := bigDoc("big", 400, 2)
	d.Seal()
	s.analyseDoc(nil, &d, map[string]bm25.Terms{})
	recs := []index.Record{{Op: index.OpUpsert, Collection: "c", Doc: &d}}
	if _, err := s.log.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	done, err := s.writeChunksFirst(&recs[0], false)
	s.wmu.Unlock()
	if err != nil || !done {
		t.Fatalf("writeChunksFirst = %v, %v; want the chunks written ahead", done, err)
	}
	if err := s.Close(); err != nil { // the crash: the record's last transaction never ran
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Document(ctx, "c", "big")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got.Chunks {
		ids = append(ids, c.ID)
	}
	var want []string
	for _, c := range d.Chunks {
		want = append(want, c.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("document after replay has %d chunks, want the record's %d", len(ids), len(want))
	}
}
