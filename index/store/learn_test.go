package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

func learnFixture(t *testing.T, dir string) *Store {
	t.Helper()
	s := openWithCollection(t, dir, "law")
	docs := []index.Document{
		indextest.Doc("labour", "劳动合同法", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。", "劳动合同期满的，劳动合同终止。"),
		indextest.Doc("lease", "民法典 租赁", "租赁期限届满，出租人应当返还承租人交付的押金。"),
	}
	if _, err := s.Upsert(context.Background(), "law", docs); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLearnPairs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := learnFixture(t, dir)
	wage := index.ChunkID("labour", []string{"第1节"}, 0)
	rep, err := s.Learn(ctx, "law", []index.Pair{
		{Question: "老板不给钱怎么办", ChunkID: wage},
		{Question: "房东不退押金", ChunkID: "lease"}, // a document: its best chunk
		{Question: "老板拖欠工资", ChunkID: "nope"},
		{Question: "钱", ChunkID: wage},
		{Question: "  ", ChunkID: wage},
		{Question: "老板不给钱怎么办", ChunkID: wage}, // a duplicate: learned once
	}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 3 || len(rep.Refused) != 3 {
		t.Fatalf("report %+v: want 3 added, 3 refused", rep)
	}
	for i, want := range []string{`no chunk or document "nope"`, "one character", "empty"} {
		if r := rep.Refused[i]; !strings.Contains(r.Reason, want) {
			t.Errorf("refused %d: %q, want it to say %q", i, r.Reason, want)
		}
	}
	if rep.Info.Pairs != 2 || rep.Info.Questions != 2 || rep.Info.Building {
		t.Errorf("info %+v: want 2 pairs, 2 questions, built", rep.Info)
	}
	hits, err := s.LearnedSearch(ctx, "law", "老板不给钱", index.Filter{}, 10)
	if err != nil || len(hits) == 0 || hits[0].ChunkID != wage || hits[0].Via[0] != "老板不给钱怎么办" || hits[0].ChunkVersion == "" {
		t.Fatalf("learned search: %+v, %v", hits, err)
	}
	// A filter applies to the learned source too.
	if hits, _ := s.LearnedSearch(ctx, "law", "老板不给钱", index.Filter{DocIDs: []string{"lease"}}, 10); len(hits) != 0 {
		t.Errorf("filtered out, yet found %+v", hits)
	}
	// Too many pairs in one call, and an unknown collection.
	if _, err := s.Learn(ctx, "law", make([]index.Pair, MaxPairsPerWrite+1), false, false); !errors.Is(err, index.ErrInvalid) {
		t.Errorf("over the batch limit: %v", err)
	}
	if _, err := s.Learn(ctx, "nope", nil, false, false); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("unknown collection: %v", err)
	}

	// The state's digest (replicas compare it) covers the pairs.
	before, _, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Learn(ctx, "law", []index.Pair{{Question: "房东扣押金不还", ChunkID: "lease"}}, false, false); err != nil {
		t.Fatal(err)
	}
	if after, _, err := s.Digest(ctx); err != nil || after == before {
		t.Errorf("digest %s after a pair was learned, %s before (%v): want it to change", after, before, err)
	}
	// A collection past MaxPairs refuses more, naming the count.
	defer func(n int) { MaxPairs = n }(MaxPairs)
	MaxPairs = 3
	_, err = s.Learn(ctx, "law", []index.Pair{{Question: "押金不退", ChunkID: "lease"}, {Question: "押金怎么要回", ChunkID: "lease"}}, false, false)
	if !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "holds 3 learned pairs; 2 more would pass the limit of 3") {
		t.Errorf("past the limit: %v", err)
	}
	MaxPairs = 200_000
	// The pairs are in Badger, written through the log: a reopened store
	// builds the same model.
	s.Close()
	s = openTestStore(t, dir)
	// The learner builds the model at open; the server waits for every
	// collection's before it says SERVING.
	if err := s.WaitLearnedAll(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Learned("law"); m == nil {
		t.Fatal("WaitLearnedAll returned before the model was built")
	}
	info, err := s.LearnInfo("law")
	if err != nil || info.Pairs != 3 {
		t.Fatalf("after reopen: %+v, %v", info, err)
	}
	// Replacing with one pair forgets the others; replacing with none
	// forgets all.
	if _, err := s.Learn(ctx, "law", []index.Pair{{Question: "押金不退", ChunkID: "lease"}}, true, false); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.LearnInfo("law"); info.Pairs != 1 {
		t.Errorf("after replace: %+v", info)
	}
	if hits, _ := s.LearnedSearch(ctx, "law", "老板不给钱", index.Filter{}, 10); len(hits) != 0 {
		t.Errorf("a replaced pair still found: %+v", hits)
	}
	if _, err := s.Learn(ctx, "law", nil, true, false); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Learned("law"); m != nil {
		t.Errorf("all pairs forgotten, yet a model: %+v", m.Stats())
	}
	// Deleting the collection drops its pairs with it.
	if _, err := s.Learn(ctx, "law", []index.Pair{{Question: "押金不退", ChunkID: "lease"}}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCollection(ctx, "law"); err != nil {
		t.Fatal(err)
	}
	if n := s.countPairs("law"); n != 0 {
		t.Errorf("%d pairs left after the collection was deleted", n)
	}
}

// A pair naming a document goes to the chunk that shares most with the
// question, not blindly to the first.
func TestLearnPairNamingADocument(t *testing.T) {
	ctx := context.Background()
	s := learnFixture(t, t.TempDir())
	defer s.Close()
	if _, err := s.Learn(ctx, "law", []index.Pair{{Question: "劳动合同期满了会怎样", ChunkID: "labour"}}, false, false); err != nil {
		t.Fatal(err)
	}
	hits, err := s.LearnedSearch(ctx, "law", "合同到期", index.Filter{}, 10)
	if want := index.ChunkID("labour", []string{"第2节"}, 0); err != nil || len(hits) != 1 || hits[0].ChunkID != want {
		t.Fatalf("hits %+v (%v), want %s", hits, err, want)
	}
}

func mustGet(t *testing.T, s *Store, name string) *coll {
	t.Helper()
	c, err := s.get(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Learned pairs are in the write log: a store rebuilt from the log alone
// (its Badger files moved aside) holds exactly the pairs acknowledged, a
// replace replayed over the pairs it replaced and the adds after it.
func TestLearnedPairsReplayFromTheLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := learnFixture(t, dir)
	wage := index.ChunkID("labour", []string{"第1节"}, 0)
	steps := []struct {
		pairs   []index.Pair
		replace bool
	}{
		{[]index.Pair{{Question: "老板不给钱怎么办", ChunkID: wage}, {Question: "房东不退押金", ChunkID: "lease"}}, false},
		{[]index.Pair{{Question: "老板拖欠工资", ChunkID: wage}}, true},
		{[]index.Pair{{Question: "押金不退怎么办", ChunkID: "lease"}}, false},
	}
	for _, st := range steps {
		if _, err := s.Learn(ctx, "law", st.pairs, st.replace, false); err != nil {
			t.Fatal(err)
		}
	}
	want, _, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(ctx, dir, "", testAnalyzer(t), Options{}); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.WaitLearnedAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Digest(ctx); err != nil || got != want {
		t.Errorf("digest after the rebuild %s (%v), before %s", got, err, want)
	}
	info, err := s.LearnInfo("law")
	if err != nil || info.Pairs != 2 || info.Questions != 2 {
		t.Errorf("after the rebuild: %+v (%v), want the replacing pair and the one after it", info, err)
	}
	if hits, _ := s.LearnedSearch(ctx, "law", "老板不给钱", index.Filter{}, 10); len(hits) == 0 || hits[0].Via[0] != "老板拖欠工资" {
		t.Errorf("hits %+v: want the replacing question, not the replaced one", hits)
	}
}
