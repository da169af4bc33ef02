// Package topk selects the best few of many scored items without sorting
// them all: ranking pipelines keep the top k of a few hundred candidates at
// every step.
package topk

import "slices"

// Kth returns the k-th largest of xs (1 ≤ k ≤ len(xs)), reordering xs:
// quickselect with a three-way partition (scores tie often), linear on
// average.
func Kth(xs []float64, k int) float64 {
	lo, hi, want := 0, len(xs), k-1 // want: the index in descending order
	for hi-lo > 1 {
		a, b, c := xs[lo], xs[lo+(hi-lo)/2], xs[hi-1]
		pivot := max(min(a, b), min(max(a, b), c)) // median of three
		// xs[lo:gt] > pivot, xs[gt:i] == pivot, xs[lt:hi] < pivot.
		gt, i, lt := lo, lo, hi
		for i < lt {
			switch x := xs[i]; {
			case x > pivot:
				xs[gt], xs[i] = xs[i], xs[gt]
				gt++
				i++
			case x < pivot:
				lt--
				xs[lt], xs[i] = xs[i], xs[lt]
			default:
				i++
			}
		}
		switch {
		case want < gt:
			hi = gt
		case want < lt:
			return pivot
		default:
			lo = lt
		}
	}
	return xs[lo]
}

// Best returns the indexes (0..n-1) of the k first items in cmp order, in
// that order. cmp must order by score descending first: score(a) > score(b)
// implies cmp(a, b) < 0. Then the k first are among the items scoring at
// least the k-th largest score, and only those are sorted. scratch, when it
// has room for n scores, is used instead of allocating.
func Best(n, k int, score func(i int) float64, cmp func(a, b int32) int, scratch []float64) []int32 {
	k = min(k, n)
	if k <= 0 {
		return nil
	}
	idx := make([]int32, 0, n)
	if k < n {
		scores := scratch[:0]
		for i := range n {
			scores = append(scores, score(i))
		}
		kth := Kth(scores, k)
		for i := range n {
			if score(i) >= kth {
				idx = append(idx, int32(i))
			}
		}
	} else {
		for i := range n {
			idx = append(idx, int32(i))
		}
	}
	slices.SortFunc(idx, cmp)
	return idx[:k]
}
