package bm25

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/blevesearch/bleve/v2/index/scorch"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// readTermTFR reads a term's postings through bleve's snapshot-wide
// TermFieldReader: how the cache read them before the raw cache, kept as the
// reference that assembling from raw postings must equal bit for bit.
func readTermTFR(ctx context.Context, r bindex.IndexReader, p Params, qt index.QueryTerm, st *index.SearchStats) (*termData, int, error) {
	term := []byte(qt.Term)
	var tfrs [index.NumFields]bindex.TermFieldReader
	var fs [index.NumFields]int
	n := 0
	closeAll := func() {
		for _, t := range tfrs[:n] {
			t.Close()
		}
	}
	for f, field := range scoredFields {
		if (f == gramField) != qt.Gram {
			continue
		}
		tfr, err := r.TermFieldReader(ctx, term, field, true, true, false)
		if err != nil {
			closeAll()
			return nil, 0, err
		}
		if tfr.Count() == 0 {
			tfr.Close()
			continue
		}
		tfrs[n], fs[n] = tfr, f
		n++
	}
	defer closeAll()
	td := &termData{}
	size := 64 + len(qt.Term)
	var tfd bindex.TermFieldDoc
	for k, tfr := range tfrs[:n] {
		f := fs[k]
		fp := fieldPostings{f: f, docs: make([]uint32, 0, tfr.Count()), ptf: make([]float64, 0, tfr.Count())}
		for {
			d, err := tfr.Next(&tfd)
			if err != nil {
				return nil, 0, err
			}
			if d == nil {
				break
			}
			if st.Decoded++; st.Decoded%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, 0, err
				}
			}
			x := p.pseudoTF(f, float64(d.Freq), fieldLength(d.Norm))
			num := binary.BigEndian.Uint64(d.ID)
			fp.docs = append(fp.docs, uint32(num))
			fp.ptf = append(fp.ptf, x)
			w := int(num / window)
			for len(fp.winMax) <= w {
				fp.winMax = append(fp.winMax, 0)
			}
			fp.winMax[w] = max(fp.winMax[w], x)
		}
		size += 12*len(fp.docs) + 8*len(fp.winMax) + 96
		td.fields = append(td.fields, fp)
	}
	td.df = td.docFreq(nil)
	return td, size, nil
}

// TestAssembledMatchesTFR checks that a term's postings assembled from the
// per-segment raw cache equal those read through bleve's TermFieldReader,
// field by field and bit for bit, for every word and gram term of a random
// corpus, across successive snapshots: batches appended, documents rewritten
// and deleted (deleted docs in shared segments), background and forced
// merges. It also checks that after a write only the segments new to the
// snapshot are decoded, that assembling under other BM25 parameters, from
// several goroutines, decodes nothing, and that the external ids of doc
// numbers, cached per segment, are bleve's; and that a search still on the
// previous snapshot reads its own postings and leaves the raw cache to the
// current one.
func TestAssembledMatchesTFR(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a random corpus in many snapshots")
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 5))
	word := indextest.ZipfWords(rng)
	coll := index.DefaultCollection("r")
	s := newTestColl(t, coll)
	tx := s.text
	var docs []index.Document
	newDoc := func() index.Document { return indextest.RandomDoc(rng, word, fmt.Sprintf("d%04d", len(docs))) }
	seen := map[termKey]bool{} // terms assembled in the previous round
	prevSegs := map[uint64]bool{}
	var prev bindex.IndexReader // the previous round's snapshot
	var reused, decoded int     // known terms' postings
	for round := range 10 {
		// The write: a batch of new documents, rewrites, deletions.
		// The first batch makes a segment above scorch's floor segment
		// size (2 000 chunks), which its merge policy tends to keep.
		var batch []index.Document
		n := 100 + rng.IntN(200)
		if round == 0 {
			n = 1200
		}
		for range n {
			d := newDoc()
			docs = append(docs, d)
			batch = append(batch, d)
		}
		if err := s.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if round > 0 {
			var rewrites []index.Document
			var dels []string
			picked := map[int]bool{}
			for range 5 + rng.IntN(20) {
				i := rng.IntN(len(docs))
				if picked[i] {
					continue
				}
				picked[i] = true
				if rng.IntN(2) == 0 {
					docs[i].Chunks[0].Text = word() + "，" + word() + "，" + word() + "。"
					docs[i].Hash, docs[i].Chunks[0].Hash = "", ""
					rewrites = append(rewrites, docs[i])
				} else {
					dels = append(dels, docs[i].ID)
				}
			}
			if err := s.Upsert(ctx, rewrites); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, dels); err != nil {
				t.Fatal(err)
			}
		}
		if round == 6 {
			if err := s.text.ForceMerge(ctx); err != nil {
				t.Fatal(err)
			}
		}

		r, err := tx.reader()
		if err != nil {
			t.Fatal(err)
		}
		snap := r.(*scorch.IndexSnapshot)
		c := s
		p := NewParams(c.cfg, c.stats)
		p.k1, p.b = 0.5+2*rng.Float64(), rng.Float64()
		sc := tx.newSnapCache(snap, p)
		var old, added []index.QueryTerm
		inRound := map[termKey]bool{}
		for f, field := range scoredFields {
			d, err := r.FieldDict(field)
			if err != nil {
				t.Fatal(err)
			}
			for {
				e, err := d.Next()
				if err != nil {
					t.Fatal(err)
				}
				if e == nil {
					break
				}
				qt := index.QueryTerm{Term: e.Term, Gram: f == gramField}
				k := termKey{qt.Term, qt.Gram}
				switch {
				case inRound[k]: // in another word field
				case seen[k]:
					old = append(old, qt)
				default:
					added = append(added, qt)
				}
				inRound[k] = true
			}
			d.Close()
		}
		added = append(added, index.QueryTerm{Term: "不在语料"}, index.QueryTerm{Term: "不在", Gram: true})
		newSegs := 0
		for _, sg := range sc.layout.segs {
			if !prevSegs[sg.Id()] {
				newSegs++
			}
		}

		// check returns the postings it decoded and those of the term's
		// raw postings in all the snapshot's segments.
		check := func(sc *snapCache, qt index.QueryTerm) (decoded, total int) {
			t.Helper()
			var st index.SearchStats
			want, wantSize, err := readTermTFR(ctx, r, sc.p, qt, &index.SearchStats{})
			if err != nil {
				t.Fatal(err)
			}
			got, gotSize, err := sc.readTerm(ctx, qt, anyPostings, &st)
			if err != nil {
				t.Fatal(err)
			}
			if diff := diffTermData(got, want); diff != "" || gotSize != wantSize {
				t.Errorf("round %d: term %+v assembled != read through bleve (size %d, want %d): %s", round, qt, gotSize, wantSize, diff)
			}
			rts := make([]*rawTerm, len(sc.layout.segs))
			if missing := tx.raw.lookup(sc.layout.segs, termKey{qt.Term, qt.Gram}, rts); missing > 0 {
				t.Fatalf("round %d: term %+v missing from the raw cache in %d segments after assembly", round, qt, missing)
			}
			for _, rt := range rts {
				total += rt.n
			}
			return st.Decoded, total
		}
		// Terms cached in the previous snapshot: only its new segments
		// are decoded.
		before := tx.raw.decodes.Load()
		for _, qt := range old {
			d, n := check(sc, qt)
			decoded += d
			reused += n - d
		}
		if got, want := tx.raw.decodes.Load()-before, int64(len(old)*newSegs); got != want {
			t.Errorf("round %d: %d segment decodes for %d known terms, want %d (%d of %d segments new)", round, got, len(old), want, newSegs, len(sc.layout.segs))
		}
		for _, qt := range added {
			check(sc, qt)
		}

		// Under other parameters, on several goroutines: all from the raw
		// cache.
		p2 := p
		p2.k1, p2.b = 0.5+2*rng.Float64(), rng.Float64()
		sc2 := tx.newSnapCache(snap, p2)
		before = tx.raw.decodes.Load()
		all := append(old, added...)
		var wg sync.WaitGroup
		for g := range 3 {
			wg.Go(func() {
				for i := g; i < len(all); i += 2 {
					if _, err := sc2.term(ctx, all[i], anyPostings, &index.SearchStats{}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := tx.raw.decodes.Load() - before; got != 0 {
			t.Errorf("round %d: %d segment decodes with every term cached, want 0", round, got)
		}
		for _, qt := range all[:min(len(all), 50)] {
			check(sc2, qt)
		}

		// External ids: read, then cached per segment; the doc numbers
		// of segments kept from the previous snapshot may be cached
		// already.
		var maxDoc uint64
		for _, sg := range sc.layout.segs {
			maxDoc += sg.Segment().Count()
		}
		nums := make([]uint64, 300)
		for i := range nums {
			nums[i] = rng.Uint64N(maxDoc)
		}
		for pass := range 2 {
			ids := make([]string, len(nums))
			if err := sc.externalIDs(r, nums, ids); err != nil {
				t.Fatal(err)
			}
			for i, n := range nums {
				want, err := r.ExternalID(binary.BigEndian.AppendUint64(nil, n))
				if err != nil {
					t.Fatal(err)
				}
				if ids[i] != want {
					t.Errorf("round %d pass %d: external id of %d = %q, want %q", round, pass, n, ids[i], want)
				}
			}
		}
		if tx.raw.ids(&sc.layout, nums, make([]string, len(nums))) {
			t.Errorf("round %d: external ids not cached after reading them", round)
		}

		seen = inRound
		clear(prevSegs)
		for _, sg := range sc.layout.segs {
			prevSegs[sg.Id()] = true
		}
		t.Logf("round %d: %d segments (%d new), %d known terms, %d new terms", round, len(sc.layout.segs), newSegs, len(old), len(added))
		// A search still on the previous snapshot: its cache starting
		// after this one's must not drop this one's segments, and its
		// terms, with the segments since merged away decoded again, are
		// its own.
		if prev != nil {
			psc := tx.newSnapCache(prev.(*scorch.IndexSnapshot), p)
			for _, qt := range all[:min(len(all), 50)] {
				var st index.SearchStats
				want, _, err := readTermTFR(ctx, prev, p, qt, &st)
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := psc.readTerm(ctx, qt, anyPostings, &st)
				if err != nil {
					t.Fatal(err)
				}
				if diff := diffTermData(got, want); diff != "" {
					t.Errorf("round %d: term %+v on the previous snapshot: assembled != read through bleve: %s", round, qt, diff)
				}
			}
			if err := prev.Close(); err != nil {
				t.Fatal(err)
			}
			before := tx.raw.decodes.Load()
			for _, qt := range all {
				if _, _, err := sc.readTerm(ctx, qt, anyPostings, &index.SearchStats{}); err != nil {
					t.Fatal(err)
				}
			}
			if got := tx.raw.decodes.Load() - before; got != 0 {
				t.Errorf("round %d: %d segment decodes after an older snapshot's cache started, want 0", round, got)
			}
		}
		prev = r
	}
	if err := prev.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("known terms' postings after a write: %d reused, %d decoded", reused, decoded)
	if reused <= decoded {
		t.Errorf("known terms' postings after a write: %d reused, %d decoded; want mostly reused", reused, decoded)
	}
}

// diffTermData describes how got differs from want ("" when equal, floats
// compared bit for bit).
func diffTermData(got, want *termData) string {
	if got.df != want.df {
		return fmt.Sprintf("df %d, want %d", got.df, want.df)
	}
	if len(got.fields) != len(want.fields) {
		return fmt.Sprintf("%d fields, want %d", len(got.fields), len(want.fields))
	}
	for i, g := range got.fields {
		w := want.fields[i]
		if g.f != w.f {
			return fmt.Sprintf("fields[%d] is field %d, want %d", i, g.f, w.f)
		}
		if len(g.docs) != len(w.docs) || len(g.ptf) != len(w.ptf) || len(g.winMax) != len(w.winMax) {
			return fmt.Sprintf("field %d: %d docs, %d ptf, %d windows; want %d, %d, %d", g.f, len(g.docs), len(g.ptf), len(g.winMax), len(w.docs), len(w.ptf), len(w.winMax))
		}
		for j := range g.docs {
			if g.docs[j] != w.docs[j] || math.Float64bits(g.ptf[j]) != math.Float64bits(w.ptf[j]) {
				return fmt.Sprintf("field %d posting %d: doc %d ptf %v, want doc %d ptf %v", g.f, j, g.docs[j], g.ptf[j], w.docs[j], w.ptf[j])
			}
		}
		for j := range g.winMax {
			if math.Float64bits(g.winMax[j]) != math.Float64bits(w.winMax[j]) {
				return fmt.Sprintf("field %d window %d: max %v, want %v", g.f, j, g.winMax[j], w.winMax[j])
			}
		}
	}
	return ""
}

// BenchmarkTermPostings compares reading a common term's postings (客户, in
// each of 10 100 chunks over several segments) through bleve's
// TermFieldReader, decoding them through the segments into an empty raw
// cache, decoding the last (100-chunk) segment only, as after a write, and
// assembling them from the raw cache.
func BenchmarkTermPostings(b *testing.B) {
	ctx := b.Context()
	s := newTestColl(b, index.DefaultCollection("b"))
	var docs []index.Document
	for i := range 10000 {
		docs = append(docs, indextest.Doc(fmt.Sprintf("d%d", i), "说明", "客户的需求是培训的目标。"))
	}
	for i := 0; i < len(docs); i += 2000 {
		if err := s.Upsert(ctx, docs[i:i+2000]); err != nil {
			b.Fatal(err)
		}
	}
	// A write after them: a small segment of 100 chunks at the end.
	var more []index.Document
	for i := range 100 {
		more = append(more, indextest.Doc(fmt.Sprintf("e%d", i), "说明", "客户的需求是培训的目标。"))
	}
	if err := s.Upsert(ctx, more); err != nil {
		b.Fatal(err)
	}
	tx := s.text
	r, err := tx.reader()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	c := s
	p := NewParams(c.cfg, c.stats)
	qt := index.QueryTerm{Term: "客户"}
	sc := tx.newSnapCache(r.(*scorch.IndexSnapshot), p)
	td, _, err := sc.readTerm(ctx, qt, anyPostings, &index.SearchStats{})
	if err != nil {
		b.Fatal(err)
	}
	postings := 0
	for _, f := range td.fields {
		postings += len(f.docs)
	}
	b.Logf("%d postings in %d segments", postings, len(sc.layout.segs))
	perPosting := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*postings), "ns/posting")
	}
	b.Run("tfr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := readTermTFR(ctx, r, p, qt, &index.SearchStats{}); err != nil {
				b.Fatal(err)
			}
		}
		perPosting(b)
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sc.raw = newRawCache(DefaultCacheBytes / 2) // empty: every segment decoded
			sc.raw.retain(sc.layout.segs)
			if _, _, err := sc.readTerm(ctx, qt, anyPostings, &index.SearchStats{}); err != nil {
				b.Fatal(err)
			}
		}
		perPosting(b)
	})
	sc.raw = tx.raw
	last := sc.layout.segs[len(sc.layout.segs)-1].Id()
	b.Run("after-write", func(b *testing.B) {
		// The last segment decoded, the others assembled.
		b.ReportAllocs()
		for b.Loop() {
			sc.raw.mu.Lock()
			delete(sc.raw.segs[last], termKey{qt.Term, qt.Gram})
			sc.raw.mu.Unlock()
			if _, _, err := sc.readTerm(ctx, qt, anyPostings, &index.SearchStats{}); err != nil {
				b.Fatal(err)
			}
		}
		perPosting(b)
	})
	b.Run("assemble", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := sc.readTerm(ctx, qt, anyPostings, &index.SearchStats{}); err != nil {
				b.Fatal(err)
			}
		}
		perPosting(b)
	})
}

// TestFirstSearchAfterWrite checks that after a write the first search
// assembles its terms itself, common ones included (客户 has more postings
// than a search decodes inline), decoding only the new segment: its
// snapshot's cache is complete without the warmer, and the search pruned.
func TestFirstSearchAfterWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 5 000 chunks")
	}
	ctx := t.Context()
	coll := index.DefaultCollection("p")
	coll.DocWeight, coll.CoverWeight = 0, 0
	s := newTestColl(t, coll)
	writeVentCorpus(t, s)
	if err := s.text.ForceMerge(ctx); err != nil {
		t.Fatal(err)
	}
	terms := []index.QueryTerm{{Term: "客户", Weight: 1}, {Term: "培训", Weight: 1}, {Term: "通风", Weight: 1}, {Term: "通风", Weight: 0.5, Gram: true}}
	prunedSearch(t, s, terms, index.Filter{}, 3)

	tx := s.text
	c := s
	for i := range 3 {
		if err := s.Upsert(ctx, []index.Document{indextest.Doc(fmt.Sprintf("new%d", i), "说明", "客户的需求是通风。")}); err != nil {
			t.Fatal(err)
		}
		p := NewParams(c.cfg, c.stats)
		r, err := tx.reader()
		if err != nil {
			t.Fatal(err)
		}
		sc, err := tx.cacheFor(r, p)
		if err != nil {
			t.Fatal(err)
		}
		var st index.SearchStats
		ok, err := sc.load(ctx, r, terms, nil, &st)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || st.Decoded > inlinePostings {
			t.Errorf("write %d: first load: cached %v, %d postings decoded; want true, at most %d", i, ok, st.Decoded, inlinePostings)
		}
		r.Close()
		want, _, err := s.search(ctx, terms, index.Filter{}, 3, true)
		if err != nil {
			t.Fatal(err)
		}
		got, gst, err := s.search(ctx, terms, index.Filter{}, 3, false)
		if err != nil {
			t.Fatal(err)
		}
		if gst.Exhaustive || !sameHits(got, want) {
			t.Errorf("write %d: search exhaustive %v, same hits as exhaustive %v; want false, true", i, gst.Exhaustive, sameHits(got, want))
		}
	}
}

// BenchmarkPrunedAfterWrite times searches on a collection of 8 000 random
// documents (about 20 000 chunks in 8 batches), with 8 queries of 3-6 words
// from zipfVocab, k=10: steady (the snapshot's cache primed), and after
// a write (a one-document upsert, untimed, before the query set: the first
// searches on each new snapshot, while the warmer prewarms it).
func BenchmarkPrunedAfterWrite(b *testing.B) {
	ctx := b.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	word := indextest.ZipfWords(rng)
	coll := index.DefaultCollection("w")
	s := newTestColl(b, coll)
	for batch := range 8 {
		var docs []index.Document
		for i := range 1000 {
			docs = append(docs, indextest.RandomDoc(rng, word, fmt.Sprintf("d%d_%d", batch, i)))
		}
		if err := s.Upsert(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	var queries [][]index.QueryTerm
	for range 8 {
		var q []index.QueryTerm
		for range 3 + rng.IntN(4) {
			q = append(q, index.QueryTerm{Term: word(), Weight: 1})
		}
		queries = append(queries, q)
	}
	// Every query's terms in the current snapshot's cache.
	prime := func(b *testing.B) {
		c := s
		p := NewParams(c.cfg, c.stats)
		for _, q := range queries {
			if err := c.text.prime(ctx, p, q); err != nil {
				b.Fatal(err)
			}
		}
	}
	run := func(b *testing.B, write bool) {
		prime(b)
		exhaustive, searches, n := 0, 0, 0
		for b.Loop() {
			if write {
				b.StopTimer()
				n++
				if err := s.Upsert(ctx, []index.Document{indextest.RandomDoc(rng, word, fmt.Sprintf("n%d", n))}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			for _, q := range queries {
				_, st, err := s.search(ctx, q, index.Filter{}, 10, false)
				if err != nil {
					b.Fatal(err)
				}
				searches++
				if st.Exhaustive {
					exhaustive++
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(searches)/1e3, "us/search")
		b.ReportMetric(float64(exhaustive)/float64(searches), "exhaustive/search")
	}
	b.Run("steady", func(b *testing.B) { run(b, false) })
	b.Run("after-write", func(b *testing.B) { run(b, true) })
}

// TestPrewarmReusesCommonTerms checks that the warmer scans the field
// dictionaries for common terms once, and again only when the documents
// have changed in number by more than an eighth: after a small write it
// prewarms the new snapshot from the list it has.
func TestPrewarmReusesCommonTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 3 500 chunks")
	}
	ctx := t.Context()
	s := newTestColl(t, index.DefaultCollection("p"))
	write := func(prefix string, n int) {
		t.Helper()
		var docs []index.Document
		for i := range n {
			docs = append(docs, indextest.Doc(fmt.Sprintf("%s%d", prefix, i), "说明", "客户的需求是培训的目标。"))
		}
		if err := s.Upsert(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	write("d", 3000)
	c := s
	tx := c.text
	// Stop the warmer: the test calls prewarm itself.
	tx.stopWarm()
	tx.warmWG.Wait()
	tx.common, tx.dictScans = commonList{}, 0 // whatever it did before
	prewarm := func() *snapCache {
		t.Helper()
		p := NewParams(c.cfg, c.stats)
		if err := tx.prewarm(ctx, p); err != nil {
			t.Fatal(err)
		}
		return tx.cache.Load()
	}
	cached := func(sc *snapCache) bool {
		sc.mu.RLock()
		defer sc.mu.RUnlock()
		return sc.terms[termKey{term: "客户"}] != nil
	}
	sc := prewarm()
	if tx.dictScans != 1 || !slices.Contains(tx.common.terms, index.QueryTerm{Term: "客户"}) || !cached(sc) {
		t.Fatalf("first prewarm: %d scans, common terms %d (客户 among them: %v), 客户 cached %v; want 1 scan, 客户 common and cached",
			tx.dictScans, len(tx.common.terms), slices.Contains(tx.common.terms, index.QueryTerm{Term: "客户"}), cached(sc))
	}
	write("small", 10)
	if sc2 := prewarm(); sc2 == sc || tx.dictScans != 1 || !cached(sc2) {
		t.Errorf("after a small write: new cache %v, %d scans, 客户 cached %v; want a new cache prewarmed from the list, 1 scan", sc2 != sc, tx.dictScans, cached(sc2))
	}
	write("big", 500)
	if sc3 := prewarm(); tx.dictScans != 2 || !cached(sc3) {
		t.Errorf("after a write of a sixth more documents: %d scans, 客户 cached %v; want 2 scans", tx.dictScans, cached(sc3))
	}
}
