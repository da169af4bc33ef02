package bm25

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zhisou/zhisou/index"
)

// referenceDocEvidence is docEvidence written plainly: the pool sorted by
// rank, document sums added up in that order over the docPool best.
func referenceDocEvidence(pool []pooled, p Params, termW *[index.MaxQueryTerms]float64, nterms int) {
	order := make([]int, len(pool))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(pool[b].bm25, pool[a].bm25); c != 0 {
			return c
		}
		return tieBreak(&pool[a], &pool[b])
	})
	type agg struct {
		sum  float64
		mask uint64
	}
	aggs := map[string]*agg{}
	for r, i := range order {
		if r >= docPool {
			break
		}
		a := aggs[pool[i].doc]
		if a == nil {
			a = &agg{}
			aggs[pool[i].doc] = a
		}
		a.sum += pool[i].bm25
		a.mask |= pool[i].matched
	}
	tot := 0.0
	for _, w := range termW[:nterms] {
		tot += w
	}
	for i := range pool {
		a := aggs[pool[i].doc]
		if a == nil {
			a = &agg{}
		}
		own, cover := 0.0, 0.0
		for ti, w := range termW[:nterms] {
			if pool[i].matched&(1<<ti) != 0 {
				own += w
			}
			if a.mask&(1<<ti) != 0 {
				cover += w
			}
		}
		if tot > 0 {
			cover *= own / tot
		}
		pool[i].score = pool[i].bm25 + p.docWeight*(a.sum-own) + p.coverWeight*cover
	}
}

// TestDocEvidenceMatchesReference checks the grouped document sums against
// the plain full sort, bit for bit, on random pools: smaller and larger than
// docPool, with scores that tie at the cut, and scratch reused between calls.
func TestDocEvidenceMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := Params{docWeight: 0.3, coverWeight: 0.7}
	fs := &finishScratch{aggOf: map[string]int32{}}
	for round := range 300 {
		n := 1 + r.IntN(3*docPool)
		nterms := 1 + r.IntN(20)
		var termW [index.MaxQueryTerms]float64
		for i := range nterms {
			termW[i] = r.Float64() * 3
		}
		docs := 1 + r.IntN(60)
		pool := make([]pooled, n)
		for i := range pool {
			doc := fmt.Sprintf("d%02d", r.IntN(docs))
			chunk := fmt.Sprintf("%s#%04d", doc, i)
			// Few distinct scores, so many tie, at the cut too; irrational
			// steps so that the order of additions shows in the sums.
			pool[i] = pooled{version: chunk + "@h", chunk: chunk, doc: doc, bm25: float64(r.IntN(12)) * 1.0471975511965976, matched: r.Uint64() & (1<<nterms - 1)}
		}
		r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		want := slices.Clone(pool)
		referenceDocEvidence(want, p, &termW, nterms)
		got := slices.Clone(pool)
		fs.docEvidence(got, p, &termW, nterms)
		fs.put()
		fs = finishScratches.Get().(*finishScratch)
		for i := range got {
			if got[i].score != want[i].score {
				t.Fatalf("round %d (pool %d, %d docs): chunk %s scores %v, want %v", round, n, docs, got[i].chunk, got[i].score, want[i].score)
			}
		}
	}
}
