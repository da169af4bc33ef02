package store

import (
	"errors"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/indextest"
)

// TestQuarantineAtOpen: a logged record that this version cannot apply (here
// one of an unknown kind, as a damaged or future log may hold) used to fail
// every open at "catch up badger". It is quarantined: the store opens, the
// records after it are applied, both indexes agree, writes go on, and the
// record is listed, once, however often the store reopens.
func TestQuarantineAtOpen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()[:2]); err != nil {
		t.Fatal(err)
	}
	after := indextest.Fixture()[2]
	after.Seal()
	s.analyseDoc(nil, &after, map[string]bm25.Terms{})
	// A crash right after the append: neither record reached Badger.
	recs := []index.Record{{Op: "compact", Collection: "c"}, {Op: index.OpUpsert, Collection: "c", Doc: &after}}
	if _, err := s.log.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		s = openTestStore(t, dir)
		q, err := s.Quarantined()
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 1 || q[0].Seq != recs[0].Seq || q[0].Op != "compact" || q[0].Error == "" {
			t.Fatalf("open %d: quarantined = %+v, want the one record of seq %d", round, q, recs[0].Seq)
		}
		if _, err := s.Document(ctx, "c", after.ID); err != nil {
			t.Errorf("open %d: the record after the quarantined one was not applied: %v", round, err)
		}
		if err := s.Verify(ctx, "c"); err != nil {
			t.Errorf("open %d: %v", round, err)
		}
		if _, err := s.Upsert(ctx, "c", indextest.Fixture()[3:4]); err != nil {
			t.Errorf("open %d: a write after the quarantine: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuarantineAtCommit: a record that cannot be applied as it is committed
// is quarantined, its write is refused (ErrInvalid, never acknowledged), the
// other records of the commit are applied, and the store verifies.
func TestQuarantineAtCommit(t *testing.T) {
	ctx := t.Context()
	s := openWithCollection(t, t.TempDir(), "c")
	good := indextest.Fixture()[0]
	good.Seal()
	terms := map[string]bm25.Terms{}
	s.analyseDoc(nil, &good, terms)
	recs := []index.Record{{Op: "compact", Collection: "c"}, {Op: index.OpUpsert, Collection: "c", Doc: &good}}
	s.wmu.Lock()
	err := s.commit(ctx, recs, terms)
	s.wmu.Unlock()
	if !errors.Is(err, index.ErrInvalid) || !errors.Is(err, errUnappliable) {
		t.Fatalf("commit = %v, want ErrInvalid naming why the record cannot be applied", err)
	}
	if _, err := s.Document(ctx, "c", good.ID); err != nil {
		t.Errorf("the commit's other record was not applied: %v", err)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
	if q, err := s.Quarantined(); err != nil || len(q) != 1 {
		t.Errorf("Quarantined() = %+v, %v; want one record", q, err)
	}
}
