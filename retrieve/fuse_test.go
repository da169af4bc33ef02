package retrieve

import (
	"math"
	"slices"
	"testing"

	"github.com/zhisou/zhisou/index"
)

// With a learned list, BM25's normalised scores are sharpened so that a
// chunk only the labelled questions found can pass BM25's deep hits; the
// order within BM25 stays, and without a learned list nothing changes.
func TestFuseSharpensBM25BesideLearned(t *testing.T) {
	bm25 := []index.Hit{{ChunkID: "a", Score: 10}, {ChunkID: "b", Score: 6}, {ChunkID: "c", Score: 5}}
	learned := []index.Hit{{ChunkID: "d", Score: 0.3}}
	w := index.FusionWeights{BM25: 1, Learned: 1}
	ids := func(hits []index.Hit) []string {
		var out []string
		for _, h := range hits {
			out = append(out, h.ChunkID)
		}
		return out
	}
	hits, _ := fuse([numSources][]index.Hit{bm25, nil, nil, learned}, w, 10, false)
	if got, want := ids(hits), []string{"a", "d", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("with a learned list: order %v, want %v", got, want)
	}
	if got, want := hits[2].Score, math.Pow(0.6, learnedSharpness); math.Abs(got-want) > 1e-12 {
		t.Errorf("b's fused score %v, want 0.6^%d = %v", got, learnedSharpness, want)
	}
	hits, _ = fuse([numSources][]index.Hit{bm25, nil, nil, nil}, w, 10, false)
	if got, want := ids(hits), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("without a learned list: order %v, want %v", got, want)
	}
	if got := hits[1].Score; math.Abs(got-0.6) > 1e-12 {
		t.Errorf("without a learned list b's fused score is %v, want 0.6 (BM25 as it is)", got)
	}
	// A learned list at weight 0 is not fused, so it does not sharpen.
	hits, _ = fuse([numSources][]index.Hit{bm25, nil, nil, learned}, index.FusionWeights{BM25: 1}, 10, false)
	if got := hits[1].Score; math.Abs(got-0.6) > 1e-12 {
		t.Errorf("learned weight 0: b's fused score is %v, want 0.6", got)
	}
}
