package retrieve_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// rerankFunc makes a function a retrieve.Reranker.
type rerankFunc func(ctx context.Context, query string, cands []rerank.Candidate) rerank.Result

func (f rerankFunc) Rerank(ctx context.Context, query string, cands []rerank.Candidate) rerank.Result {
	return f(ctx, query, cands)
}

func identityOrder(n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	return o
}

func TestRerank(t *testing.T) {
	ctx := t.Context()
	const q = "客户"
	plain := testSearcher(t, retrieve.Options{})
	fused, err := plain.Search(ctx, retrieve.Request{Collection: "c", Query: q, TopK: 5})
	if err != nil || len(fused.Hits) < 3 {
		t.Fatalf("Search(%q) = %v, %v; want at least 3 hits", q, fused.Hits, err)
	}
	if fused.Rerank == nil || fused.Rerank.Status != "off" {
		t.Errorf("Search without a reranker: Rerank = %+v, want status off", fused.Rerank)
	}
	var seen int
	reverse := rerankFunc(func(_ context.Context, _ string, cands []rerank.Candidate) rerank.Result {
		seen = len(cands)
		o := identityOrder(len(cands))
		slices.Reverse(o)
		return rerank.Result{Order: o, Status: rerank.StatusOK, Provider: "fake"}
	})
	failing := rerankFunc(func(_ context.Context, _ string, cands []rerank.Candidate) rerank.Result {
		return rerank.Result{Order: identityOrder(len(cands)), Status: rerank.StatusTimeout, Provider: "fake"}
	})
	tests := []struct {
		name       string
		reranker   retrieve.Reranker
		mode       retrieve.RerankMode
		wantStatus rerank.Status
		wantErr    error
		reversed   bool
	}{
		{"reranker reorders", reverse, retrieve.RerankAuto, "ok", nil, true},
		{"reranker off for the request", reverse, retrieve.RerankOff, "off", nil, false},
		{"reranker times out: fused order", failing, retrieve.RerankAuto, "timeout", nil, false},
		{"reranker times out but was required", failing, retrieve.RerankRequired, "", retrieve.ErrRerankUnavailable, false},
		{"no reranker, required", nil, retrieve.RerankRequired, "", retrieve.ErrRerankUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSearcher(t, retrieve.Options{Reranker: tt.reranker})
			res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: q, TopK: 5, Rerank: tt.mode})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Search = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if res.Rerank.Status != tt.wantStatus {
				t.Errorf("Rerank.Status = %q, want %q", res.Rerank.Status, tt.wantStatus)
			}
			if len(res.Hits) != 5 {
				t.Fatalf("got %d hits, want top_k 5", len(res.Hits))
			}
			same := res.Hits[0].ChunkID == fused.Hits[0].ChunkID
			if tt.reversed == same {
				t.Errorf("first hit %s (fused first %s): reversed=%v", res.Hits[0].ChunkID, fused.Hits[0].ChunkID, tt.reversed)
			}
		})
	}
	if seen < 5 {
		t.Errorf("the reranker saw %d candidates, want at least top_k", seen)
	}
}

// TestRerankTimeoutPerRequest: the request's RerankTimeout reaches the
// reranker as a ctx deadline.
func TestRerankTimeoutPerRequest(t *testing.T) {
	var got time.Duration
	s := testSearcher(t, retrieve.Options{Reranker: rerankFunc(func(ctx context.Context, _ string, cands []rerank.Candidate) rerank.Result {
		if d, ok := ctx.Deadline(); ok {
			got = time.Until(d)
		}
		return rerank.Result{Order: identityOrder(len(cands)), Status: rerank.StatusOK}
	})})
	if _, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "客户", RerankTimeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got <= 0 || got > 300*time.Millisecond {
		t.Errorf("reranker deadline in %v, want within the request's 300ms", got)
	}
}
