package topk

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKth(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + r.IntN(60)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(8)) // many ties
		}
		k := 1 + r.IntN(n)
		want := slices.Clone(xs)
		slices.Sort(want)
		if got := Kth(xs, k); got != want[n-k] {
			t.Fatalf("Kth(%v, %d) = %v, want %v", want, k, got, want[n-k])
		}
	}
}

// TestBest checks Best against a full sort on random scores with ties broken
// by an id.
func TestBest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		n := r.IntN(80)
		scores := make([]float64, n)
		ids := r.Perm(n)
		for i := range scores {
			scores[i] = float64(r.IntN(10))
		}
		order := func(a, b int32) int {
			if c := cmp.Compare(scores[b], scores[a]); c != 0 {
				return c
			}
			return cmp.Compare(ids[a], ids[b])
		}
		all := make([]int32, n)
		for i := range all {
			all[i] = int32(i)
		}
		slices.SortFunc(all, order)
		k := r.IntN(n + 3)
		var scratch []float64
		if r.IntN(2) == 0 {
			scratch = make([]float64, 0, n)
		}
		got := Best(n, k, func(i int) float64 { return scores[i] }, order, scratch)
		want := all[:min(k, n)]
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("n %d k %d: Best = %v, want %v", n, k, got, want)
		}
	}
}
