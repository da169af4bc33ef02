package bm25

import (
	"cmp"
	"context"
	"math"
	"math/bits"
	"slices"

	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/zhisou/zhisou/index"
)

// MaxScore pruning (Turtle & Flood 1995), window by window as in Lucene's
// MaxScoreBulkScorer, with per-window term bounds (block-max): the pool of
// the best chunks by BM25 is found without scoring the chunks that cannot
// reach it, and the postings of common terms are mostly not walked.
//
// Doc numbers are taken a window (1 024) at a time. A term's bound in a
// window is weight·idf·saturate(the sum over its fields of the largest pseudo
// term frequency in the window); the snapshot's cache keeps those maxima.
// Once the pool is full, the lowest-bound terms whose window bounds together
// stay below the pool's worst score (theta) are non-essential there: a chunk
// that has only them cannot enter the pool. The essential terms' postings in
// the window give each chunk they touch a bound (the sum of their postings'
// own scores: saturation is subadditive, so a term's per-field scores bound
// its score); a chunk whose bound plus the non-essential bounds reaches theta
// is a candidate. Candidates are then scored exactly, term at a time in query
// order over the window: the non-essential terms by probing their postings
// for the candidates only.
//
// The result is exact: every chunk whose score reaches the pool-th best is
// scored in full, with the same arithmetic in the same order as scoreAll (the
// field sum in field order, the term sum in query order), so scores are
// bit-identical and ties at the cut break the same way. Document frequency,
// which scoreAll counts while it scans, is counted once per snapshot by
// merging the term's cached postings (and, with a filter, per search).

// pruneSlack keeps a bound comparison on the safe side of rounding: a chunk
// is skipped only when its bound is below the threshold by more than this
// relative margin (scores are sums of at most 64 terms; float64 rounding
// errs far less).
const pruneSlack = 1e-9

// prunable reports whether the pruned search computes what scoreAll does:
// the cache counts a term's document frequency over all its fields, which is
// scoreAll's count only when every word field is scored (weight > 0; a
// posting's pseudo term frequency is then positive, which marks a match), and
// the bounds need non-negative weights.
func prunable(p Params, terms []index.QueryTerm) bool {
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

// cursor holds one term's cached postings in one field; pos only moves
// forward (to the first posting of the current window, lazily).
type cursor struct {
	docs   []uint32
	ptf    []float64
	winMax []float64 // the largest ptf in each window
	pos    int
}

// prunedTerm is a query term with postings.
type prunedTerm struct {
	ti     int     // index in the query's terms
	w      float64 // weight·idf
	lo, hi int     // its cursors: pruner.curs[lo:hi], in field order
}

// pruner is one pruned search's state, reused across searches.
type pruner struct {
	terms  []prunedTerm // in query order
	curs   []cursor
	order  []int     // terms by window bound, ascending
	ubw    []float64 // the terms' bounds in the current window
	scores minHeap   // the pool's scores
	cands  []candidate
	pool   int // the pool's size
	// Per doc of the window (offset from its base).
	bound   []float64
	tf      []float64
	exact   []float64
	matched []uint64
	touched [window / 64]uint64 // bit set: has an essential term
	flagged [window / 64]uint64 // bit set: a candidate
	nflag   int
	filter  bool     // whether allowed restricts the search
	allowed []uint64 // bit set of allowed doc numbers
}

func (t *Index) getPruner() *pruner {
	if pr, _ := t.pruners.Get().(*pruner); pr != nil {
		return pr
	}
	return &pruner{}
}

func (t *Index) putPruner(pr *pruner) {
	clear(pr.curs)
	pr.terms, pr.curs, pr.order, pr.ubw = pr.terms[:0], pr.curs[:0], pr.order[:0], pr.ubw[:0]
	pr.scores, pr.cands = pr.scores[:0], pr.cands[:0]
	pr.allowed, pr.filter = pr.allowed[:0], false
	t.pruners.Put(pr)
}

// scorePruned returns the same candidates as scoreAll (possibly in another
// order), finding them with MaxScore.
func (t *Index) scorePruned(ctx context.Context, r bindex.IndexReader, cache *snapCache, p Params, terms []index.QueryTerm, allowed map[uint64]struct{}, pool int, termW *[index.MaxQueryTerms]float64) ([]candidate, index.SearchStats, error) {
	var st index.SearchStats
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
			}
		}
		pr.filter = true
	}
	if err := pr.open(ctx, cache, p, terms, termW, &st); err != nil {
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
func (pr *pruner) open(ctx context.Context, cache *snapCache, p Params, terms []index.QueryTerm, termW *[index.MaxQueryTerms]float64, st *index.SearchStats) error {
	for ti, qt := range terms {
		td, err := cache.term(ctx, qt, anyPostings, st)
		if err != nil {
			return err
		}
		df := td.df
		if pr.filter && df > 0 {
			df = td.docFreq(pr.allowedDoc)
		}
		if df == 0 {
			continue
		}
		lo := len(pr.curs)
		for _, fp := range td.fields {
			pr.curs = append(pr.curs, cursor{docs: fp.docs, ptf: fp.ptf, winMax: fp.winMax})
		}
		w := qt.Weight * p.idf(df)
		termW[ti] = w
		pr.terms = append(pr.terms, prunedTerm{ti: ti, w: w, lo: lo, hi: len(pr.curs)})
	}
	return nil
}

// taatPostings is where MaxScore starts to pay: below it, scoring every
// cached posting term at a time into dense accumulators (a few ns a
// posting) costs less than the windows' bookkeeping (measured on cmrc2018:
// 0.8× the time of MaxScore there).
const taatPostings = 16 << 10

// scoreTAAT scores every cached posting of the terms (in query order, as
// scoreAll does: the same sums in the same order).
func (t *Index) scoreTAAT(r bindex.IndexReader, pr *pruner, p Params, pool int, st index.SearchStats) ([]candidate, index.SearchStats, error) {
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

func (pr *pruner) allowedDoc(n uint32) bool { return pr.isAllowed(uint64(n)) }

func (pr *pruner) isAllowed(n uint64) bool {
	return !pr.filter || n/64 < uint64(len(pr.allowed)) && pr.allowed[n/64]&(1<<(n%64)) != 0
}

// window is the number of doc numbers scored together.
const window = 1024

// seekPos moves pos to the first posting at or after doc (galloping) and
// returns it.
func (c *cursor) seekPos(doc uint32) int {
	lo := c.pos
	if lo >= len(c.docs) || c.docs[lo] >= doc {
		return lo
	}
	step := 1
	hi := lo + step
	for hi < len(c.docs) && c.docs[hi] < doc {
		lo = hi
		step *= 2
		hi = lo + step
	}
	hi = min(hi, len(c.docs))
	lo++ // docs[lo] < doc is known; the answer is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.docs[m] < doc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c.pos = lo
	return lo
}

// run finds the pool window by window.
func (pr *pruner) run(ctx context.Context, p Params, pool int, st *index.SearchStats) error {
	pr.pool = pool
	end := uint64(0)
	for i := range pr.curs {
		c := &pr.curs[i]
		c.pos = 0
		end = max(end, uint64(c.docs[len(c.docs)-1])+1)
	}
	if len(pr.bound) < window {
		pr.bound, pr.tf, pr.exact = make([]float64, window), make([]float64, window), make([]float64, window)
		pr.matched = make([]uint64, window)
	}
	nt := len(pr.terms)
	pr.order = slices.Grow(pr.order[:0], nt)[:nt]
	pr.ubw = slices.Grow(pr.ubw[:0], nt)[:nt]
	theta := math.Inf(-1) // the pool's worst score once it is full
	for base := uint64(0); base < end; base += window {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := int(base / window)
		limit := uint32(min(base+window, end))
		// The terms' bounds in the window, and the non-essential ones:
		// the lowest bounds whose sum stays below theta.
		for t := range pr.terms {
			pt := &pr.terms[t]
			x := 0.0
			for c := pt.lo; c < pt.hi; c++ {
				if wm := pr.curs[c].winMax; w < len(wm) {
					x += wm[w]
				}
			}
			pr.ubw[t] = 0
			if x > 0 {
				pr.ubw[t] = pt.w * p.saturate(x) * (1 + pruneSlack)
			}
			pr.order[t] = t
		}
		slices.SortFunc(pr.order, func(a, b int) int { return cmp.Compare(pr.ubw[a], pr.ubw[b]) })
		nonEss, firstEss := 0.0, 0
		for ; firstEss < nt; firstEss++ {
			next := (nonEss + pr.ubw[pr.order[firstEss]]) * (1 + pruneSlack)
			if !(next < nonEssShare*theta) {
				break
			}
			nonEss = next
		}
		if firstEss == nt {
			continue // no chunk of the window can reach the pool
		}
		// Bounds from the essential terms' postings.
		for _, t := range pr.order[firstEss:] {
			pt := &pr.terms[t]
			for c := pt.lo; c < pt.hi; c++ {
				cur := &pr.curs[c]
				i := cur.seekPos(uint32(base))
				start := i
				for ; i < len(cur.docs) && cur.docs[i] < limit; i++ {
					o := cur.docs[i] - uint32(base)
					pr.touched[o/64] |= 1 << (o % 64)
					pr.bound[o] += pt.w * p.saturate(cur.ptf[i])
				}
				st.Postings += i - start
			}
		}
		// Candidates: the chunks whose bound can reach theta.
		pr.nflag = 0
		for wi, word := range pr.touched {
			for m := word; m != 0; m &= m - 1 {
				o := wi*64 + bits.TrailingZeros64(m)
				b := pr.bound[o]
				pr.bound[o] = 0
				if (b+nonEss)*(1+pruneSlack) < theta || !pr.isAllowed(base+uint64(o)) {
					continue
				}
				pr.flagged[wi] |= 1 << (o % 64)
				pr.nflag++
			}
			pr.touched[wi] = 0
		}
		if pr.nflag == 0 {
			continue
		}
		st.Candidates += pr.nflag
		pr.scoreWindow(p, base, limit, st)
		for wi, word := range pr.flagged {
			for m := word; m != 0; m &= m - 1 {
				o := wi*64 + bits.TrailingZeros64(m)
				if score := pr.exact[o]; score >= theta {
					pr.cands = append(pr.cands, candidate{num: base + uint64(o), score: score, matched: pr.matched[o]})
					if len(pr.scores) < pool {
						pr.scores.push(score)
					} else if score > pr.scores[0] {
						pr.scores[0] = score
						pr.scores.down(0)
					}
				}
				pr.exact[o], pr.matched[o] = 0, 0
			}
			pr.flagged[wi] = 0
		}
		if len(pr.scores) == pool {
			theta = pr.scores[0]
		}
	}
	return nil
}

// scoreWindow scores the flagged chunks of the window exactly: term at a
// time in query order, fields in field order, as scoreAll does. A term's
// postings in the window are walked when they are few next to the
// candidates, else probed for each candidate.
func (pr *pruner) scoreWindow(p Params, base uint64, limit uint32, st *index.SearchStats) {
	for _, pt := range pr.terms {
		any := false
		for c := pt.lo; c < pt.hi; c++ {
			cur := &pr.curs[c]
			i := cur.seekPos(uint32(base))
			if i >= len(cur.docs) || cur.docs[i] >= limit {
				continue
			}
			// How many postings the term has here, bounded cheaply: walk
			// when they are under 16 per candidate.
			if hi := i + 16*pr.nflag; hi >= len(cur.docs) || cur.docs[hi] >= limit {
				for ; i < len(cur.docs) && cur.docs[i] < limit; i++ {
					o := cur.docs[i] - uint32(base)
					if pr.flagged[o/64]&(1<<(o%64)) != 0 {
						pr.tf[o] += cur.ptf[i]
						any = true
					}
				}
				st.Postings += i - cur.pos
				cur.pos = i
				continue
			}
			for wi, word := range pr.flagged {
				for m := word; m != 0; m &= m - 1 {
					d := uint32(base) + uint32(wi*64+bits.TrailingZeros64(m))
					st.Postings++
					if j := cur.seekPos(d); j < len(cur.docs) && cur.docs[j] == d {
						pr.tf[d-uint32(base)] += cur.ptf[j]
						any = true
					}
				}
			}
		}
		if !any {
			continue
		}
		bit := uint64(1) << pt.ti
		for wi, word := range pr.flagged {
			for m := word; m != 0; m &= m - 1 {
				o := wi*64 + bits.TrailingZeros64(m)
				if x := pr.tf[o]; x > 0 {
					pr.exact[o] += pt.w * p.saturate(x)
					pr.matched[o] |= bit
					pr.tf[o] = 0
				}
			}
		}
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

// nonEssShare caps the non-essential terms' summed window bounds at this
// share of theta (plain MaxScore takes all of it): a chunk is then a
// candidate only when its essential terms alone bring it close to theta, so
// fewer chunks are scored exactly, for a little more walking.
const nonEssShare = 0.25
