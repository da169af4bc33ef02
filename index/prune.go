package index

import (
	"context"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	bindex "github.com/blevesearch/bleve_index_api"
)

// MaxScore pruning (Turtle & Flood 1995, as in Lucene's MaxScoreBulkScorer):
// the pool of the best chunks by BM25 is found document at a time, and a chunk
// that cannot reach the pool is never fully scored.
//
// Each term's score is bounded by weight·idf·(k1+1), the limit of BM25's
// saturation. Terms are sorted by that bound; once the pool is full, the
// lowest-bound terms whose bounds together stay below the pool's worst score
// are "non-essential": a chunk that matches only them cannot enter the pool,
// so only the essential terms' postings are walked, and the non-essential
// terms are probed (Advance) for the chunks those postings yield, highest
// bound first, until the chunk's score so far plus the remaining bounds falls
// below the pool's worst score.
//
// The result is exact: every chunk whose score reaches the pool-th best is
// scored in full, with the same arithmetic, in the same order, as scoreAll
// (the field sum in field order, the term sum in query order), so scores are
// bit-identical and ties at the cut break the same way. Document frequency,
// which scoreAll counts while it scans, comes from the words field (one
// posting per chunk and distinct word) and the bigram field without a scan.

// pruneSlack keeps a bound comparison on the safe side of rounding: a chunk
// is skipped only when its bound is below the threshold by more than this
// relative margin (scores are sums of at most 64 terms; float64 rounding
// errs far less).
const pruneSlack = 1e-9

// prunable reports whether the pruned search computes what scoreAll does:
// document frequency from the words field equals scoreAll's count only when
// every word field is scored, and the bounds need non-negative weights.
func prunable(p bm25Params, terms []QueryTerm) bool {
	for f := range gramField {
		if !(p.weights[f] > 0) {
			return false
		}
	}
	if !(p.k1 >= 0) {
		return false
	}
	for _, qt := range terms {
		if !(qt.Weight >= 0) || math.IsInf(qt.Weight, 1) {
			return false
		}
	}
	return true
}

const noDoc = math.MaxUint64

// cursor walks one term's cached postings in one field.
type cursor struct {
	docs []uint32
	ptf  []float64
	i    int
	doc  uint64 // docs[i], noDoc when exhausted
	term int    // index into pruner.terms
}

// prunedTerm is a query term with postings.
type prunedTerm struct {
	ti     int     // index in the query's terms
	w      float64 // weight·idf
	ub     float64 // bound of the term's score
	lo, hi int     // its cursors: pruner.curs[lo:hi], in field order
}

// pruner is one pruned search's state, reused across searches.
type pruner struct {
	terms   []prunedTerm // by bound, ascending
	curs    []cursor
	ess     []*cursor // essential cursors: a min-heap by doc
	at      []*cursor // the cursors on the current doc
	contrib [MaxQueryTerms]float64
	cum     []float64 // cum[i]: the sum of terms[0..i].ub
	scores  minHeap   // the pool's scores
	cands   []candidate
	pool    int      // the pool's size
	filter  bool     // whether allowed and sorted restrict the search
	allowed []uint64 // bit set of allowed doc numbers
	sorted  []uint64 // allowed doc numbers, ascending
	dfDoc   bindex.TermFieldDoc
}

func (t *text) getPruner() *pruner {
	if pr, _ := t.pruners.Get().(*pruner); pr != nil {
		return pr
	}
	return &pruner{}
}

func (t *text) putPruner(pr *pruner) {
	clear(pr.curs)
	clear(pr.ess)
	clear(pr.at)
	pr.terms, pr.curs, pr.ess, pr.at = pr.terms[:0], pr.curs[:0], pr.ess[:0], pr.at[:0]
	pr.cum, pr.scores, pr.cands = pr.cum[:0], pr.scores[:0], pr.cands[:0]
	pr.allowed, pr.sorted, pr.filter = pr.allowed[:0], pr.sorted[:0], false
	t.pruners.Put(pr)
}

// scorePruned returns the same candidates as scoreAll (possibly in another
// order), finding them with MaxScore.
func (t *text) scorePruned(ctx context.Context, r bindex.IndexReader, cache *snapCache, p bm25Params, terms []QueryTerm, allowed map[uint64]struct{}, pool int, termW *[MaxQueryTerms]float64) ([]candidate, SearchStats, error) {
	var st SearchStats
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	pr := t.getPruner()
	defer t.putPruner(pr)
	if allowed != nil {
		if len(allowed) == 0 {
			return nil, st, nil
		}
		maxDoc, err := maxDocNum(r)
		if err != nil {
			return nil, st, err
		}
		words := maxDoc/64 + 1
		pr.allowed = slices.Grow(pr.allowed[:0], words)[:words]
		clear(pr.allowed)
		for n := range allowed {
			if n < uint64(maxDoc) {
				pr.allowed[n/64] |= 1 << (n % 64)
				pr.sorted = append(pr.sorted, n)
			}
		}
		slices.Sort(pr.sorted)
		pr.filter = true
	}
	if err := pr.open(ctx, r, cache, p, terms, termW, &st); err != nil {
		return nil, st, err
	}
	if len(pr.terms) == 0 {
		return nil, st, nil
	}
	total := 0
	for i := range pr.curs {
		total += len(pr.curs[i].docs)
	}
	if total <= t.taatLimit {
		return t.scoreTAAT(r, pr, p, pool, st)
	}
	pr.sortByBound()
	if err := pr.run(ctx, p, pool, &st); err != nil {
		return nil, st, err
	}
	if len(pr.scores) == 0 {
		return nil, st, nil
	}
	kth := pr.scores[0]
	cands := make([]candidate, 0, len(pr.cands))
	for _, c := range pr.cands {
		if c.score >= kth {
			cands = append(cands, c)
		}
	}
	return cands, st, nil
}

// open finds each term's document frequency, weight and bound, sets up its
// cursors and sorts the terms by bound.
func (pr *pruner) open(ctx context.Context, r bindex.IndexReader, cache *snapCache, p bm25Params, terms []QueryTerm, termW *[MaxQueryTerms]float64, st *SearchStats) error {
	for ti, qt := range terms {
		td, err := cache.term(ctx, r, qt, st)
		if err != nil {
			return err
		}
		df := td.df
		if pr.filter && df > 0 {
			field := fieldWords
			if qt.Gram {
				field = fieldGram
			}
			if df, err = pr.docFreq(ctx, r, []byte(qt.Term), field, st); err != nil {
				return err
			}
		}
		if df == 0 {
			continue
		}
		lo := len(pr.curs)
		for _, fp := range td.fields {
			pr.curs = append(pr.curs, cursor{docs: fp.docs, ptf: fp.ptf})
		}
		w := qt.Weight * p.idf(df)
		termW[ti] = w
		ub := w * p.saturate(td.maxTF) * (1 + pruneSlack)
		pr.terms = append(pr.terms, prunedTerm{ti: ti, w: w, ub: ub, lo: lo, hi: len(pr.curs)})
	}
	return nil
}

// sortByBound sorts the terms by bound and sets up the bound sums.
func (pr *pruner) sortByBound() {
	slices.SortFunc(pr.terms, func(a, b prunedTerm) int {
		if a.ub != b.ub {
			if a.ub < b.ub {
				return -1
			}
			return 1
		}
		return a.ti - b.ti
	})
	sum := 0.0
	for i := range pr.terms {
		pt := &pr.terms[i]
		sum += pt.ub
		pr.cum = append(pr.cum, sum*(1+pruneSlack))
		for c := pt.lo; c < pt.hi; c++ {
			pr.curs[c].term = i
		}
	}
}

// taatPostings is where MaxScore starts to pay: below it, scoring every
// cached posting term at a time into dense accumulators (a few ns a
// posting) costs less than walking documents through a heap of cursors.
const taatPostings = 16 << 10

// scoreTAAT scores every cached posting of the terms (in query order, as
// scoreAll does: the same sums in the same order).
func (t *text) scoreTAAT(r bindex.IndexReader, pr *pruner, p bm25Params, pool int, st SearchStats) ([]candidate, SearchStats, error) {
	maxDoc, err := maxDocNum(r)
	if err != nil {
		return nil, st, err
	}
	acc := t.getAcc(maxDoc)
	defer t.putAcc(acc)
	for _, pt := range pr.terms {
		acc.termDocs = acc.termDocs[:0]
		for c := pt.lo; c < pt.hi; c++ {
			cur := &pr.curs[c]
			st.Postings += len(cur.docs)
			for i, num := range cur.docs {
				if pr.filter && !pr.isAllowed(uint64(num)) {
					continue
				}
				if acc.tf[num] == 0 {
					acc.termDocs = append(acc.termDocs, num)
				}
				acc.tf[num] += cur.ptf[i]
			}
		}
		bit := uint64(1) << pt.ti
		for _, num := range acc.termDocs {
			if acc.matched[num] == 0 {
				acc.touched = append(acc.touched, num)
			}
			acc.score[num] += pt.w * p.saturate(acc.tf[num])
			acc.matched[num] |= bit
			acc.tf[num] = 0
		}
	}
	st.Candidates = len(acc.touched)
	return acc.best(pool), st, nil
}

// docFreq is the number of chunks (that pass the filter) with the term in the
// field: the postings count, or with a filter the intersection, walking
// whichever of the postings and the allowed set is shorter.
func (pr *pruner) docFreq(ctx context.Context, r bindex.IndexReader, term []byte, field string, st *SearchStats) (int, error) {
	tfr, err := r.TermFieldReader(ctx, term, field, false, false, false)
	if err != nil {
		return 0, err
	}
	defer tfr.Close()
	n := int(tfr.Count())
	if !pr.filter || n == 0 {
		return n, nil
	}
	df := 0
	d := &pr.dfDoc
	if n <= len(pr.sorted) {
		for {
			d, err = tfr.Next(d)
			if err != nil || d == nil {
				return df, err
			}
			st.Postings++
			if pr.isAllowed(binary.BigEndian.Uint64(d.ID)) {
				df++
			}
		}
	}
	cur := uint64(0)
	started := false
	var id [8]byte
	for _, a := range pr.sorted {
		if started && a <= cur {
			if a == cur {
				df++
			}
			continue
		}
		binary.BigEndian.PutUint64(id[:], a)
		d, err = tfr.Advance(id[:], d)
		if err != nil || d == nil {
			return df, err
		}
		st.Postings++
		started = true
		cur = binary.BigEndian.Uint64(d.ID)
		if cur == a {
			df++
		}
	}
	return df, nil
}

func (pr *pruner) isAllowed(n uint64) bool {
	return !pr.filter || n/64 < uint64(len(pr.allowed)) && pr.allowed[n/64]&(1<<(n%64)) != 0
}

// next moves a cursor to its next posting.
func (c *cursor) next(st *SearchStats) {
	st.Postings++
	if c.i++; c.i < len(c.docs) {
		c.doc = uint64(c.docs[c.i])
	} else {
		c.doc = noDoc
	}
}

// advance moves a cursor to its first posting at or after doc, galloping.
func (c *cursor) advance(doc uint64, st *SearchStats) {
	st.Postings++
	lo, step := c.i, 1
	hi := lo + step
	for hi < len(c.docs) && uint64(c.docs[hi]) < doc {
		lo = hi
		step *= 2
		hi = lo + step
	}
	hi = min(hi, len(c.docs))
	// docs[lo] < doc (or lo is the start); the answer is in (lo, hi].
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if uint64(c.docs[m]) < doc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c.i = lo
	if lo < len(c.docs) {
		c.doc = uint64(c.docs[lo])
	} else {
		c.doc = noDoc
	}
}

// run walks the essential postings document at a time.
func (pr *pruner) run(ctx context.Context, p bm25Params, pool int, st *SearchStats) error {
	pr.pool = pool
	for i := range pr.curs {
		c := &pr.curs[i]
		c.i, c.doc = 0, uint64(c.docs[0])
	}
	// Before the pool is full every term is essential.
	firstEss := 0
	theta := math.Inf(-1)
	for i := range pr.curs {
		if pr.curs[i].doc != noDoc {
			pr.ess = append(pr.ess, &pr.curs[i])
		}
	}
	heapifyCursors(pr.ess)
	visited := 0
	for len(pr.ess) > 0 {
		d := pr.ess[0].doc
		pr.at = pr.at[:0]
		for len(pr.ess) > 0 && pr.ess[0].doc == d {
			pr.at = append(pr.at, popCursor(&pr.ess))
		}
		if visited++; visited%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if pr.isAllowed(d) {
			pr.score(d, p, firstEss, theta, st)
		}
		for _, c := range pr.at {
			c.next(st)
			if c.doc != noDoc {
				pushCursor(&pr.ess, c)
			}
		}
		if len(pr.scores) == pool && pr.scores[0] > theta {
			theta = pr.scores[0]
			moved := false
			for firstEss < len(pr.terms) && pr.cum[firstEss] < theta {
				firstEss++
				moved = true
			}
			if moved {
				keep := pr.ess[:0]
				for _, c := range pr.ess {
					if c.term >= firstEss {
						keep = append(keep, c)
					}
				}
				clear(pr.ess[len(keep):])
				pr.ess = keep
				heapifyCursors(pr.ess)
			}
		}
	}
	st.Candidates = visited
	return nil
}

// score scores doc d, on which the cursors pr.at (all of essential terms)
// stand: the essential terms first, then the non-essential ones by bound,
// descending, while the chunk can still reach theta. A chunk that does is
// added to the pool with its exact score.
func (pr *pruner) score(d uint64, p bm25Params, firstEss int, theta float64, st *SearchStats) {
	var matched uint64
	partial := 0.0
	// Essential terms on d. pr.at holds the cursors on d; a term's own
	// cursors are contiguous in pr.curs, in field order.
	for _, c := range pr.at {
		pt := &pr.terms[c.term]
		bit := uint64(1) << pt.ti
		if matched&bit != 0 {
			continue
		}
		matched |= bit
		x := 0.0
		for i := pt.lo; i < pt.hi; i++ {
			if cc := &pr.curs[i]; cc.doc == d {
				x += cc.ptf[cc.i]
			}
		}
		s := pt.w * p.saturate(x)
		pr.contrib[pt.ti] = s
		partial += s
	}
	for i := firstEss - 1; i >= 0; i-- {
		if (partial+pr.cum[i])*(1+pruneSlack) < theta {
			return
		}
		pt := &pr.terms[i]
		x, hit := 0.0, false
		for j := pt.lo; j < pt.hi; j++ {
			cc := &pr.curs[j]
			if cc.doc < d {
				cc.advance(d, st)
			}
			if cc.doc == d {
				x += cc.ptf[cc.i]
				hit = true
			}
		}
		if hit {
			s := pt.w * p.saturate(x)
			pr.contrib[pt.ti] = s
			partial += s
			matched |= 1 << pt.ti
		}
	}
	// The exact score: the same sum, in query order, as scoreAll.
	score := 0.0
	for m := matched; m != 0; m &= m - 1 {
		score += pr.contrib[bits.TrailingZeros64(m)]
	}
	if score < theta {
		return
	}
	pr.cands = append(pr.cands, candidate{num: d, score: score, matched: matched})
	if len(pr.scores) < pr.pool {
		pr.scores.push(score)
	} else if score > pr.scores[0] {
		pr.scores[0] = score
		pr.scores.down(0)
	}
}

// push adds a score to the min-heap.
func (h *minHeap) push(s float64) {
	*h = append(*h, s)
	a := *h
	for i := len(a) - 1; i > 0; {
		up := (i - 1) / 2
		if a[up] <= a[i] {
			break
		}
		a[up], a[i] = a[i], a[up]
		i = up
	}
}

// down restores the heap below i.
func (h minHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// The essential cursors are a binary min-heap by current doc.

func heapifyCursors(h []*cursor) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		downCursor(h, i)
	}
}

func downCursor(h []*cursor, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].doc < h[l].doc {
			m = r
		}
		if h[i].doc <= h[m].doc {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func pushCursor(h *[]*cursor, c *cursor) {
	*h = append(*h, c)
	a := *h
	for i := len(a) - 1; i > 0; {
		up := (i - 1) / 2
		if a[up].doc <= a[i].doc {
			break
		}
		a[up], a[i] = a[i], a[up]
		i = up
	}
}

func popCursor(h *[]*cursor) *cursor {
	a := *h
	c := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = nil
	*h = a[:n]
	downCursor(*h, 0)
	return c
}
