package retrieve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/rerank"
)

// Reranker reorders the top fused candidates of a query. *rerank.LLM
// satisfies it. Rerank never fails: a Result whose Status is not ok carries
// the fused order; it must not keep or modify cands.
type Reranker interface {
	Rerank(ctx context.Context, query string, cands []rerank.Candidate) rerank.Result
}

// RerankMode says how a request uses the reranker.
type RerankMode int

// Rerank modes.
const (
	// RerankAuto reranks when a reranker is configured and falls back to
	// the fused order on any failure.
	RerankAuto RerankMode = iota
	// RerankOff never reranks.
	RerankOff
	// RerankRequired reranks or fails with ErrRerankUnavailable.
	RerankRequired
)

// ErrRerankUnavailable means the request demanded reranking and it did not
// happen (no reranker, or the reranker fell back).
var ErrRerankUnavailable = errors.New("rerank unavailable")

// RerankInfo says what the reranker did for one request.
type RerankInfo struct {
	// Status is rerank.StatusOff when no reranking was attempted, else the
	// reranker's.
	Status   rerank.Status
	Provider string
	Took     time.Duration
	Usage    rerank.Usage
	// Cost is the estimated cost from the provider's configured prices.
	Cost float64
	// Cached is true when the order came from the reranker's cache.
	Cached bool
	// Partial is true when a streamed reply was cut and its first ids used.
	Partial    bool
	TopChanged bool
}

// rerankPool is how many fused hits are offered to the reranker at least.
const rerankPool = 20

// rerankHits reorders hydrated hits with the reranker. It returns the hits
// in the new order (the fused order on any failure) and what happened.
func (s *Searcher) rerankHits(ctx context.Context, req Request, hits []Hit) ([]Hit, *RerankInfo, error) {
	if req.Rerank == RerankOff {
		return hits, &RerankInfo{Status: rerank.StatusOff}, nil
	}
	if s.opts.Reranker == nil {
		if req.Rerank == RerankRequired {
			return nil, nil, fmt.Errorf("%w: no reranker is configured (-rerank-url or -rerank-config)", ErrRerankUnavailable)
		}
		return hits, &RerankInfo{Status: rerank.StatusOff}, nil
	}
	if req.RerankTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.RerankTimeout)
		defer cancel()
	}
	cands := make([]rerank.Candidate, len(hits))
	for i, h := range hits {
		cands[i] = rerank.Candidate{Heading: index.HeadingString(h.HeadingPath), Title: h.Title, Text: h.Text, Score: h.Score}
	}
	r := s.opts.Reranker.Rerank(ctx, req.Query, cands)
	info := &RerankInfo{Status: r.Status, Provider: r.Provider, Took: r.Latency, Usage: r.Usage, Cost: r.Cost, Cached: r.Cached, Partial: r.Partial}
	if err := r.Err(); err != nil {
		if req.Rerank == RerankRequired {
			return nil, info, fmt.Errorf("%w: %s", ErrRerankUnavailable, r.Status)
		}
		return hits, info, nil
	}
	if len(r.Order) != len(hits) {
		return hits, info, nil // a reranker that broke its contract: keep the fused order
	}
	out := make([]Hit, len(hits))
	for i, j := range r.Order {
		out[i] = hits[j]
	}
	info.TopChanged = len(out) > 0 && out[0].ChunkID != hits[0].ChunkID
	return out, info, nil
}
