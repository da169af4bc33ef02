package bm25

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	bindex "github.com/blevesearch/bleve_index_api"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/topk"
)

// Params are the scoring parameters taken from a collection and its stats.
type Params struct {
	k1, b   float64
	weights [index.NumFields]float64
	n       float64
	// docWeight is the share of a document's other pooled chunk scores added
	// to a chunk's score (0: chunks are scored alone).
	docWeight float64
	// coverWeight scales the idf-weighted query terms that only the
	// document's other chunks match.
	coverWeight float64
	// gramWeight scales the weight of bigram query terms.
	gramWeight float64
	avgLen     [index.NumFields]float64
}

// NewParams takes the scoring parameters from a collection's configuration
// (k1, b, field weights, GramWeight, document evidence) and its statistics
// (chunk count, average field lengths).
func NewParams(c index.Collection, st index.Stats) Params {
	p := Params{k1: c.K1, b: c.B, weights: [index.NumFields]float64{c.Weights.Title, c.Weights.Heading, c.Weights.Body, 1}, n: float64(st.Chunks), docWeight: c.DocWeight, coverWeight: c.CoverWeight, gramWeight: c.GramWeight}
	for f := range index.NumFields {
		if st.Chunks > 0 {
			p.avgLen[f] = float64(st.SumLen[f]) / float64(st.Chunks)
		}
	}
	return p
}

// idf is the Robertson–Spärck Jones idf in Lucene's non-negative form.
func (p Params) idf(df int) float64 {
	return math.Log(1 + (p.n-float64(df)+0.5)/(float64(df)+0.5))
}

// pseudoTF is BM25F's length-normalised, weighted term frequency of one field.
func (p Params) pseudoTF(f int, tf float64, length float64) float64 {
	norm := 1.0
	if p.avgLen[f] > 0 {
		norm = 1 - p.b + p.b*length/p.avgLen[f]
	}
	return p.weights[f] * tf / norm
}

// saturate turns a summed pseudo term frequency into the BM25 term score.
func (p Params) saturate(tf float64) float64 {
	return tf * (p.k1 + 1) / (p.k1 + tf)
}

type candidate struct {
	num     uint64
	score   float64
	matched uint64 // bit i: query term i matched
}

// Search scores the chunks that pass f against the query terms and returns
// the k best, best first. A term's weight is the caller's (retrieve sets it:
// 1 for a word the user typed, less for expansions) times the collection's
// GramWeight for a bigram; its score in a chunk is BM25F over the title,
// heading and body fields (or BM25 over the bigram field) with the idf and
// field lengths of p, plus document evidence (see docEvidence). Search prunes
// with MaxScore; the hits are exactly those of SearchExhaustive.
func (t *Index) Search(ctx context.Context, p Params, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, index.SearchStats, error) {
	return t.searchFiltered(ctx, p, terms, f, k, false)
}

// SearchExhaustive is Search scoring every posting: the reference that the
// pruned search is tested and benchmarked against.
func (t *Index) SearchExhaustive(ctx context.Context, p Params, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, index.SearchStats, error) {
	return t.searchFiltered(ctx, p, terms, f, k, true)
}

func (t *Index) searchFiltered(ctx context.Context, p Params, terms []index.QueryTerm, f index.Filter, k int, exhaustive bool) ([]index.Hit, index.SearchStats, error) {
	if p.gramWeight != 1 {
		terms = slices.Clone(terms)
		for i := range terms {
			if terms[i].Gram {
				terms[i].Weight *= p.gramWeight
			}
		}
	}
	r, err := t.reader()
	if err != nil {
		return nil, index.SearchStats{}, err
	}
	defer r.Close()
	allowed, err := t.filterSet(ctx, r, f)
	if err != nil {
		return nil, index.SearchStats{}, fmt.Errorf("filter: %w", err)
	}
	return t.search(ctx, r, p, terms, allowed, k, exhaustive)
}

// search scores chunks with BM25F over the postings of the scored fields and
// returns the top k. allowed, when non-nil, is the set of bleve doc numbers that
// pass the filter. Scores do not depend on segment layout: lengths come from the
// exact field lengths stored in the postings, and corpus statistics from Badger.
//
// The pool of chunks that document evidence looks at (the docPool best by
// BM25, or the k best without document evidence) is found with MaxScore
// pruning (prune.go); exhaustive scores every posting instead, and is the
// reference the pruned search must equal.
func (t *Index) search(ctx context.Context, r bindex.IndexReader, p Params, terms []index.QueryTerm, allowed map[uint64]struct{}, k int, exhaustive bool) ([]index.Hit, index.SearchStats, error) {
	if len(terms) > index.MaxQueryTerms {
		terms = terms[:index.MaxQueryTerms]
	}
	if k <= 0 {
		return nil, index.SearchStats{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, index.SearchStats{}, err
	}
	// Document evidence looks at a deeper pool than k, so that a chunk whose
	// document has other matching chunks can move up.
	pool := k
	if p.docWeight > 0 || p.coverWeight > 0 {
		pool = max(k, docPool)
	}
	var (
		cands []candidate
		termW [index.MaxQueryTerms]float64
		st    index.SearchStats
		err   error
	)
	var cache *snapCache
	if !exhaustive && prunable(p, terms) {
		if cache, err = t.cacheFor(r, p); err != nil {
			return nil, st, err
		}
		// Common terms not in the snapshot's cache yet are decoded in the
		// background; meanwhile the search reads bleve's postings, as
		// decoding them here would cost as much and more.
		ok, err := cache.load(ctx, r, terms, t.warm, &st)
		if err != nil {
			return nil, st, err
		}
		if !ok {
			cache = nil
		}
	}
	decoded := st.Decoded
	if cache == nil {
		cands, st, err = t.scoreAll(ctx, r, p, terms, allowed, pool, &termW)
		st.Exhaustive = true
	} else {
		cands, st, err = t.scorePruned(ctx, r, cache, p, terms, allowed, pool, &termW)
	}
	st.Decoded += decoded
	if err != nil || len(cands) == 0 {
		return nil, st, err
	}
	hits, err := t.finish(r, cache, p, terms, &termW, cands, k)
	return hits, st, err
}

// scoreAll scores every posting of every term (term at a time, into dense
// accumulators) and returns the candidates whose score is at least the
// pool-th best, with each term's weight·idf in termW.
func (t *Index) scoreAll(ctx context.Context, r bindex.IndexReader, p Params, terms []index.QueryTerm, allowed map[uint64]struct{}, pool int, termW *[index.MaxQueryTerms]float64) ([]candidate, index.SearchStats, error) {
	var st index.SearchStats
	maxDoc, err := maxDocNum(r)
	if err != nil {
		return nil, st, err
	}
	acc := t.getAcc(maxDoc)
	defer t.putAcc(acc)
	var tfd bindex.TermFieldDoc
	for ti, qt := range terms {
		acc.termDocs = acc.termDocs[:0]
		for f, field := range scoredFields {
			if p.weights[f] == 0 || (f == gramField) != qt.Gram {
				continue
			}
			tfr, err := r.TermFieldReader(ctx, []byte(qt.Term), field, true, true, false)
			if err != nil {
				return nil, st, err
			}
			for {
				d, err := tfr.Next(&tfd)
				if err != nil {
					tfr.Close()
					return nil, st, err
				}
				if d == nil {
					break
				}
				st.Postings++
				if st.Postings%4096 == 0 {
					if err := ctx.Err(); err != nil {
						tfr.Close()
						return nil, st, err
					}
				}
				num := binary.BigEndian.Uint64(d.ID)
				if allowed != nil {
					if _, ok := allowed[num]; !ok {
						continue
					}
				}
				if acc.tf[num] == 0 {
					acc.termDocs = append(acc.termDocs, uint32(num))
				}
				acc.tf[num] += p.pseudoTF(f, float64(d.Freq), fieldLength(d.Norm))
			}
			if err := tfr.Close(); err != nil {
				return nil, st, err
			}
		}
		if len(acc.termDocs) == 0 {
			continue
		}
		w := qt.Weight * p.idf(len(acc.termDocs))
		termW[ti] = w
		for _, num := range acc.termDocs {
			if acc.matched[num] == 0 {
				acc.touched = append(acc.touched, num)
			}
			acc.score[num] += w * p.saturate(acc.tf[num])
			acc.matched[num] |= 1 << ti
			acc.tf[num] = 0
		}
	}
	st.Candidates = len(acc.touched)
	return acc.best(pool), st, nil
}

// best returns the candidates whose score is at least the pool-th best.
func (acc *accumulators) best(pool int) []candidate {
	if len(acc.touched) == 0 {
		return nil
	}
	// The pool-th best score, from a min-heap; then every candidate at or
	// above it, so that ties at the cut break by chunk id and not by internal
	// doc numbers (which change when segments merge).
	h := acc.heap[:0]
	for _, num := range acc.touched {
		h = append(h, acc.score[num])
	}
	acc.heap = h
	kth := topk.Kth(h, min(pool, len(h)))
	n := 0
	for _, num := range acc.touched {
		if acc.score[num] >= kth {
			n++
		}
	}
	cands := make([]candidate, 0, n)
	for _, num := range acc.touched {
		if acc.score[num] >= kth {
			cands = append(cands, candidate{num: uint64(num), score: acc.score[num], matched: acc.matched[num]})
		}
	}
	return cands
}

// finish turns the pool's candidates into hits: external ids, matched terms,
// document evidence, and the final order, cut to k.
// The exhaustive search (cache nil) reads ids from bleve, the pruned one
// through the snapshot's cache.
func (t *Index) finish(r bindex.IndexReader, cache *snapCache, p Params, terms []index.QueryTerm, termW *[index.MaxQueryTerms]float64, cands []candidate, k int) ([]index.Hit, error) {
	fs := finishScratches.Get().(*finishScratch)
	defer fs.put()
	ids := grow(&fs.ids, len(cands))
	if cache != nil {
		nums := grow(&fs.nums, len(cands))
		for i, c := range cands {
			nums[i] = c.num
		}
		if err := cache.externalIDs(r, nums, ids); err != nil {
			return nil, err
		}
	} else {
		for i, c := range cands {
			id, err := r.ExternalID(bindex.IndexInternalID(binary.BigEndian.AppendUint64(nil, c.num)))
			if err != nil {
				return nil, err
			}
			ids[i] = id
		}
	}
	// The pool is ranked as small records, through indexes; Hits are made for
	// the k best only.
	pool := grow(&fs.pool, len(cands))
	for i, c := range cands {
		chunk := index.ChunkIDOfVersion(ids[i])
		pool[i] = pooled{version: ids[i], chunk: chunk, doc: index.DocIDOf(chunk), bm25: c.score, score: c.score, matched: c.matched}
	}
	scratch := grow(&fs.keys, len(pool))
	if p.docWeight > 0 || p.coverWeight > 0 {
		fs.docEvidence(pool, p, termW, len(terms))
	}
	best := topk.Best(len(pool), k, func(i int) float64 { return pool[i].score }, func(a, b int32) int {
		if c := cmp.Compare(pool[b].score, pool[a].score); c != 0 {
			return c
		}
		return tieBreak(&pool[a], &pool[b])
	}, scratch)
	n := 0
	for _, i := range best {
		n += bits.OnesCount64(pool[i].matched)
	}
	matched := make([]string, 0, n)
	hits := make([]index.Hit, len(best))
	for j, i := range best {
		h := &pool[i]
		start := len(matched)
		for m := h.matched; m != 0; m &= m - 1 {
			matched = append(matched, terms[bits.TrailingZeros64(m)].Term)
		}
		hits[j] = index.Hit{ChunkID: h.chunk, Score: h.score, BM25: h.bm25, Matched: matched[start:len(matched):len(matched)], ChunkVersion: h.version}
	}
	return hits, nil
}

// docEvidence sets the score of each chunk of the pool to its BM25 plus the
// evidence of its document: a share of the scores of the document's other
// chunks among the docPool best, and the weights of the query terms that they
// match (a lesson that answers a question as a whole often spreads its words
// over several passages). The pool does not depend on k, so neither does the
// ranking.
func (fs *finishScratch) docEvidence(pool []pooled, p Params, termW *[index.MaxQueryTerms]float64, nterms int) {
	// A document's sum adds its chunks among the docPool best in rank
	// order (bm25, then chunk id): the ranking only needs the order
	// within each document, so the pool is grouped by document and
	// each group sorted, instead of sorting the pool.
	byRank := func(a, b int32) int {
		if c := cmp.Compare(pool[b].bm25, pool[a].bm25); c != 0 {
			return c
		}
		return tieBreak(&pool[a], &pool[b])
	}
	top := fs.topOf(pool, byRank)
	aggOf := fs.aggOf
	aggs := append(fs.aggs[:0], docAgg{}) // aggs[0]: a document with no chunk in the pool
	at := grow(&fs.at, len(pool))
	for i := range pool {
		at[i] = 0
		if !top[i] {
			continue
		}
		a, ok := aggOf[pool[i].doc]
		if !ok {
			a = int32(len(aggs))
			aggOf[pool[i].doc] = a
			aggs = append(aggs, docAgg{})
		}
		at[i] = a
		aggs[a].n++
	}
	// Group the top chunks by document (counting sort), each group in
	// rank order, and add up.
	start := int32(0)
	for a := range aggs {
		aggs[a].start, start = start, start+aggs[a].n
	}
	grouped := grow(&fs.grouped, int(start))
	for i := range pool {
		if a := at[i]; a > 0 {
			grouped[aggs[a].start+aggs[a].fill] = int32(i)
			aggs[a].fill++
		}
	}
	for a := range aggs[1:] {
		g := &aggs[a+1]
		group := grouped[g.start : g.start+g.n]
		slices.SortFunc(group, byRank)
		for _, i := range group {
			g.sum += pool[i].bm25
			g.mask |= pool[i].matched
		}
	}
	fs.aggs = aggs
	tot := 0.0
	for _, w := range termW[:nterms] {
		tot += w
	}
	for i := range pool {
		a := at[i]
		if !top[i] { // its document's entry, if the document has top chunks
			a = aggOf[pool[i].doc]
		}
		agg := aggs[a]
		// Coverage is the weight of the query terms the document's top
		// chunks match together, scaled by the share this chunk matches
		// itself: documents that cover the question rank higher, and
		// within a document a passage with fewer of the words never
		// gains on one with more. (own is the weight of the terms the
		// chunk matches, and is what the document's sum is reduced by:
		// kept as it was when the weights were tuned.)
		own, cover := maskWeight(termW, pool[i].matched), maskWeight(termW, agg.mask)
		if tot > 0 {
			cover *= own / tot
		}
		pool[i].score = pool[i].bm25 + p.docWeight*(agg.sum-own) + p.coverWeight*cover
	}
}

// maskWeight sums the weights of the terms whose bits are set in mask, in
// term order.
func maskWeight(termW *[index.MaxQueryTerms]float64, mask uint64) float64 {
	sum := 0.0
	for ; mask != 0; mask &= mask - 1 {
		sum += termW[bits.TrailingZeros64(mask)]
	}
	return sum
}

// finishScratch is finish's working memory, reused across searches.
type finishScratch struct {
	nums  []uint64
	ids   []string
	pool  []pooled
	keys  []float64
	aggOf map[string]int32 // document id → index in aggs
	aggs  []docAgg
	top   []bool
	at    []int32
	// grouped holds the pool's top entries grouped by document.
	grouped []int32
}

var finishScratches = sync.Pool{New: func() any { return &finishScratch{aggOf: map[string]int32{}} }}

// put clears the scratch (it must not keep strings alive) and returns it.
func (fs *finishScratch) put() {
	clear(fs.ids)
	clear(fs.pool)
	clear(fs.aggOf)
	finishScratches.Put(fs)
}

// grow returns (*buf)[:n], reallocating *buf when it is too small.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// docAgg is what the pool's best chunks of one document add up to.
type docAgg struct {
	sum  float64
	mask uint64
	// n is the number of the document's chunks among the best; they are
	// grouped[start:start+n], placed fill so far.
	n, start, fill int32
}

// topOf marks the docPool first entries of the pool in order cmp (which
// orders by bm25 descending first) in fs.top, and returns it.
func (fs *finishScratch) topOf(pool []pooled, cmp func(a, b int32) int) []bool {
	top := grow(&fs.top, len(pool))
	if len(pool) <= docPool {
		for i := range top {
			top[i] = true
		}
		return top
	}
	keys := grow(&fs.keys, len(pool))
	for i := range pool {
		keys[i] = pool[i].bm25
	}
	kth := topk.Kth(keys, docPool)
	need := docPool
	tied := fs.grouped[:0]
	for i := range pool {
		top[i] = pool[i].bm25 > kth
		if top[i] {
			need--
		} else if pool[i].bm25 == kth {
			tied = append(tied, int32(i))
		}
	}
	// Ties at the cut go by chunk id, as in the full order.
	slices.SortFunc(tied, cmp)
	for _, i := range tied[:need] {
		top[i] = true
	}
	fs.grouped = tied
	return top
}

// tieBreak orders pooled chunks of equal score: by chunk id, then version.
func tieBreak(a, b *pooled) int {
	if c := cmp.Compare(a.chunk, b.chunk); c != 0 {
		return c
	}
	return cmp.Compare(a.version, b.version)
}

// pooled is a chunk of the pool while it is ranked.
type pooled struct {
	version, chunk, doc string
	bm25, score         float64
	matched             uint64
}

// minHeap is a min-heap of scores (push and down in prune.go).
type minHeap []float64

// docPool is how many top chunks document evidence is gathered from.
const docPool = 200

// accumulators are one search's dense per-document arrays, indexed by bleve
// doc number and reused across searches; between searches every entry is zero.
type accumulators struct {
	score    []float64
	matched  []uint64 // bit i: query term i matched; non-zero iff in touched
	tf       []float64
	touched  []uint32 // documents with a score, in first-match order
	termDocs []uint32 // documents with a pseudo term frequency for the current term
	heap     minHeap
}

func (t *Index) getAcc(n int) *accumulators {
	a, _ := t.accs.Get().(*accumulators)
	if a == nil {
		a = &accumulators{}
	}
	if len(a.score) < n {
		a.score, a.matched, a.tf = make([]float64, n), make([]uint64, n), make([]float64, n)
	}
	return a
}

// putAcc zeroes what the search touched and returns the arrays for reuse.
func (t *Index) putAcc(a *accumulators) {
	for _, num := range a.touched {
		a.score[num], a.matched[num] = 0, 0
	}
	for _, num := range a.termDocs {
		a.tf[num] = 0 // a search cut short by an error leaves these
	}
	a.touched, a.termDocs = a.touched[:0], a.termDocs[:0]
	t.accs.Put(a)
}

// maxDocNum bounds the bleve doc numbers of a reader: the documents of all its
// segments, deleted ones included.
func maxDocNum(r bindex.IndexReader) (int, error) {
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return 0, fmt.Errorf("search: index reader is %T, not a scorch snapshot", r)
	}
	n := int64(0)
	for _, s := range snap.Segments() {
		n += s.FullSize()
	}
	return int(n), nil
}

// fieldLength recovers the exact field length from bleve's norm, which the
// segment stores as float32(1/sqrt(length)); exact for lengths below 10^6.
func fieldLength(norm float64) float64 {
	if norm <= 0 {
		return 0
	}
	return math.Round(1 / (norm * norm))
}

// filterSet evaluates a filter into the set of allowed bleve doc numbers.
func (t *Index) filterSet(ctx context.Context, r bindex.IndexReader, f index.Filter) (map[uint64]struct{}, error) {
	if f.IsZero() {
		return nil, nil
	}
	var sets []map[uint64]struct{}
	if len(f.DocIDs) > 0 {
		s := map[uint64]struct{}{}
		for _, id := range f.DocIDs {
			if err := t.collect(ctx, r, fieldDoc, id, s); err != nil {
				return nil, err
			}
		}
		sets = append(sets, s)
	}
	for k, v := range f.Metadata {
		s := map[uint64]struct{}{}
		if err := t.collect(ctx, r, fieldMeta, metaTerm(k, v), s); err != nil {
			return nil, err
		}
		sets = append(sets, s)
	}
	if len(f.HeadingPrefix) > 0 {
		s := map[uint64]struct{}{}
		if err := t.collect(ctx, r, fieldScope, scopeTerm(f.HeadingPrefix), s); err != nil {
			return nil, err
		}
		sets = append(sets, s)
	}
	out := sets[0]
	for _, s := range sets[1:] {
		for n := range out {
			if _, ok := s[n]; !ok {
				delete(out, n)
			}
		}
	}
	return out, nil
}

func (t *Index) collect(ctx context.Context, r bindex.IndexReader, field, term string, into map[uint64]struct{}) error {
	tfr, err := r.TermFieldReader(ctx, []byte(term), field, false, false, false)
	if err != nil {
		return err
	}
	defer tfr.Close()
	var tfd bindex.TermFieldDoc
	for {
		d, err := tfr.Next(&tfd)
		if err != nil || d == nil {
			return err
		}
		into[binary.BigEndian.Uint64(d.ID)] = struct{}{}
	}
}
