package bm25

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// TestPrunedMatchesExhaustive checks that MaxScore returns exactly what
// scoring every posting returns: the same chunks in the same order with the
// same scores (to 1e-9; they are computed identically), on random corpora
// spread over several segments with deleted chunks, random queries with word
// and bigram terms, filters, document evidence on and off, and k from 1 to
// more than the number of matches.
func TestPrunedMatchesExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds several random corpora")
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 11))
	word := indextest.ZipfWords(rng)
	var pruned, all int
	for round := range 3 {
		coll := index.DefaultCollection("r")
		coll.K1, coll.B = 0.5+2*rng.Float64(), rng.Float64()
		if round%2 == 1 {
			coll.DocWeight, coll.CoverWeight = 0, 0
		}
		s := newTestColl(t, coll)
		var docs []index.Document
		// 1 000-3 000 chunks: several windows of doc numbers, so that
		// later windows are pruned against a full pool.
		for i := range 500 + rng.IntN(500) {
			d := indextest.RandomDoc(rng, word, fmt.Sprintf("d%03d", i))
			d.Metadata = map[string]string{"team": strconv.Itoa(i % 3)}
			docs = append(docs, d)
		}
		// Several batches (segments), then rewrites of some documents
		// (deleted postings in older segments).
		for i := 0; i < len(docs); i += 200 {
			if err := s.Upsert(ctx, docs[i:min(i+200, len(docs))]); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < len(docs); i += 25 {
			docs[i].Chunks[0].Text = word() + "，" + word() + "，" + word() + "。"
			docs[i].Hash, docs[i].Chunks[0].Hash = "", ""
			if err := s.Upsert(ctx, docs[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
		for q := range 60 {
			var terms []index.QueryTerm
			for range 1 + rng.IntN(12) {
				w := word()
				gram := rng.IntN(4) == 0
				if gram && len([]rune(w)) < 2 {
					w += word()
					w = string([]rune(w)[:2])
				}
				weight := []float64{1, 1, 0.4, 0.2, 0, rng.Float64()}[rng.IntN(6)]
				terms = append(terms, index.QueryTerm{Term: w, Weight: weight, Gram: gram})
			}
			k := []int{1, 3, 10, 50, 100, 1000}[rng.IntN(6)]
			var f index.Filter
			switch q % 4 {
			case 1:
				f.Metadata = map[string]string{"team": strconv.Itoa(rng.IntN(3))}
			case 2:
				f.DocIDs = []string{docs[rng.IntN(len(docs))].ID, docs[rng.IntN(len(docs))].ID}
			}
			want, wst, err := s.search(ctx, terms, f, k, true)
			if err != nil {
				t.Fatal(err)
			}
			// MaxScore, and term at a time over the cache.
			for _, limit := range []int{0, taatPostings} {
				s.text.taatLimit = limit
				got, gst := prunedSearch(t, s, terms, f, k)
				if limit == 0 {
					all += wst.Candidates
					pruned += gst.Candidates
				}
				if !sameHits(got, want) {
					t.Errorf("round %d: search(%v, %+v, k=%d), TAAT limit %d: pruned != exhaustive:\n%s", round, terms, f, k, limit,
						cmp.Diff(want, got, cmp.AllowUnexported(index.Hit{})))
				}
			}
		}
		if round == 1 {
			if err := s.text.ForceMerge(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("chunks scored: exhaustive %d, pruned %d", all, pruned)
}

// prunedSearch decodes the terms into the snapshot's cache first (as the
// background warmer would), then searches, and fails the test when the search
// did not take the pruned path.
func prunedSearch(t *testing.T, s *testColl, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, index.SearchStats) {
	t.Helper()
	c := s
	p := c.params()
	// bleve persists and merges segments in the background, each time with
	// a new snapshot (and an empty cache): retry until the search sees the
	// snapshot it was primed for.
	for range 100 {
		if err := c.text.prime(t.Context(), p, terms); err != nil {
			t.Fatal(err)
		}
		hits, st, err := s.search(t.Context(), terms, f, k, false)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Exhaustive || !prunable(p, terms) {
			return hits, st
		}
	}
	t.Fatalf("search(%v) after priming the cache was exhaustive 100 times", terms)
	return nil, index.SearchStats{}
}

// sameHits compares ids, order, matched terms and scores (to 1e-9).
func sameHits(a, b []index.Hit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ChunkID != b[i].ChunkID || a[i].ChunkVersion != b[i].ChunkVersion ||
			math.Abs(a[i].Score-b[i].Score) > 1e-9 || math.Abs(a[i].BM25-b[i].BM25) > 1e-9 ||
			!slicesEqual(a[i].Matched, b[i].Matched) {
			return false
		}
	}
	return true
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeVentCorpus writes 5 000 one-chunk documents to collection in five
// batches: every one has 客户 and 培训, one in fifty also 有限空间作业 and 通风.
func writeVentCorpus(t *testing.T, s *testColl) {
	t.Helper()
	var docs []index.Document
	for i := range 5000 {
		text := "客户的需求是培训的目标。"
		if i%50 == 0 {
			text += "有限空间作业必须先通风。"
		}
		docs = append(docs, indextest.Doc(fmt.Sprintf("d%d", i), "说明", text))
	}
	for i := 0; i < len(docs); i += 1000 {
		if err := s.Upsert(t.Context(), docs[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPruningSkipsPostings checks that pruning does its job: for a query
// with words in every chunk and a word in one chunk of fifty, the pruned
// search scores far fewer chunks than the exhaustive one, for the same hits
// (the first window of doc numbers is scored in full, before the pool is
// full).
func TestPruningSkipsPostings(t *testing.T) {
	ctx := t.Context()
	coll := index.DefaultCollection("p")
	coll.DocWeight, coll.CoverWeight = 0, 0
	s := newTestColl(t, coll)
	if testing.Short() {
		t.Skip("indexes 5 000 chunks")
	}
	writeVentCorpus(t, s)
	s.text.taatLimit = 0 // MaxScore whatever the size
	terms := []index.QueryTerm{{Term: "客户", Weight: 1}, {Term: "培训", Weight: 1}, {Term: "通风", Weight: 1}, {Term: "目标", Weight: 1}}
	want, wst, err := s.search(ctx, terms, index.Filter{}, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	// The first search finds the terms missing from the snapshot's cache and
	// scores every posting; once they are decoded, searches prune.
	first, fst, err := s.search(ctx, terms, index.Filter{}, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if !fst.Exhaustive || !sameHits(first, want) {
		t.Errorf("first search: exhaustive %v, same hits %v; want true, true", fst.Exhaustive, sameHits(first, want))
	}
	got, gst := prunedSearch(t, s, terms, index.Filter{}, 3)
	if !sameHits(got, want) {
		t.Fatalf("pruned != exhaustive:\n%s", cmp.Diff(want, got, cmp.AllowUnexported(index.Hit{})))
	}
	t.Logf("pruned: %d postings, %d chunks scored; exhaustive: %d postings, %d chunks", gst.Postings, gst.Candidates, wst.Postings, wst.Candidates)
	if gst.Candidates*3 > wst.Candidates {
		t.Errorf("pruned search scored %d chunks, exhaustive %d; want under a third", gst.Candidates, wst.Candidates)
	}
}

// TestPrunedSearchCancelled checks that a cancelled context stops a search
// with the context's error.
func TestPrunedSearchCancelled(t *testing.T) {
	s := newTestColl(t, index.DefaultCollection("c"))
	if err := s.Upsert(t.Context(), indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.search(ctx, []index.QueryTerm{{Term: "客户", Weight: 1}}, index.Filter{}, 10, false); err == nil {
		t.Errorf("Search(cancelled ctx) = nil error, want context.Canceled")
	}
}

// TestOpenChecksFormat checks that Open rejects an index stamped with another
// format with ErrFormat (the store then rebuilds it), and opens an index
// without the stamp (every index written before it) or with the current one.
func TestOpenChecksFormat(t *testing.T) {
	for _, tt := range []struct {
		name    string
		format  []byte // nil: no stamp
		wantErr bool
	}{
		{"other format", []byte("0"), true},
		{"no stamp", nil, false},
		{"current", []byte(textFormat), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bleve")
			ix, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			b := ix.idx.NewBatch()
			if tt.format == nil {
				b.DeleteInternal(formatKey)
			} else {
				b.SetInternal(formatKey, tt.format)
			}
			if err := ix.idx.Batch(b); err != nil {
				t.Fatal(err)
			}
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			ix, err = Open(dir, Options{})
			if err == nil {
				if err := ix.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if gotErr := errors.Is(err, ErrFormat); gotErr != tt.wantErr {
				t.Fatalf("Open() = %v; want ErrFormat: %v", err, tt.wantErr)
			}
		})
	}
}
