package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// MaxRerankTimeout caps a request's RerankTimeout.
const MaxRerankTimeout = time.Minute

// Search answers a query. Beyond the searcher's own checks (query length,
// top_k, heading prefixes), it checks the text is UTF-8 and the filter and
// rerank timeout are within limits. Every rerank is counted and logged.
func (s *Service) Search(ctx context.Context, req retrieve.Request) (retrieve.Result, error) {
	if err := checkSearch(req); err != nil {
		return retrieve.Result{}, err
	}
	if err := s.allow(ctx, index.RoleRead, "search", req.Collection); err != nil {
		return retrieve.Result{}, err
	}
	res, err := s.search.Search(ctx, req)
	if err != nil {
		return retrieve.Result{}, classify(err)
	}
	s.observeRerank(ctx, res.Rerank)
	return res, nil
}

// checkSearch validates what the searcher does not: UTF-8, the filter's
// size, the rerank timeout and the fusion weights.
func checkSearch(req retrieve.Request) error {
	if err := checkName("collection", req.Collection); err != nil {
		return err
	}
	if err := checkUTF8("query", req.Query); err != nil {
		return err
	}
	f := req.Filter
	if n := len(f.DocIDs) + len(f.Metadata) + len(f.HeadingPrefix); n > MaxFilterValues {
		return Invalid("filter", "filter has %d values, over the limit of %d", n, MaxFilterValues)
	}
	for i, id := range f.DocIDs {
		if err := checkUTF8(fmt.Sprintf("filter.document_ids[%d]", i), id); err != nil {
			return err
		}
	}
	for k, v := range f.Metadata {
		if err := errors.Join(checkUTF8("filter.metadata key", k), checkUTF8("filter.metadata["+k+"]", v)); err != nil {
			return err
		}
	}
	for i, p := range f.HeadingPrefix {
		if err := checkUTF8(fmt.Sprintf("filter.heading_prefix[%d]", i), p); err != nil {
			return err
		}
	}
	if err := CheckRerankTimeout(req.RerankTimeout); err != nil {
		return err
	}
	if req.Weights != nil {
		if err := req.Weights.Validate(); err != nil {
			return classify(fmt.Errorf("fusion: %w", err))
		}
	}
	return nil
}

// CheckRerankTimeout fails when d is outside 0..MaxRerankTimeout. Front
// doors whose duration type can be malformed call it with what they parsed.
func CheckRerankTimeout(d time.Duration) error {
	if d < 0 || d > MaxRerankTimeout {
		return Invalid("rerank_timeout", "rerank_timeout %v: want 0 to 60s", d)
	}
	return nil
}

// observeRerank counts and logs what the reranker did: Debug when it
// reordered or chose to skip, Warn when it fell back to the retrieval order.
func (s *Service) observeRerank(ctx context.Context, ri *retrieve.RerankInfo) {
	if ri == nil || !ri.Status.Attempted() {
		return
	}
	s.metrics.observe(ri)
	level := slog.LevelDebug
	if ri.Status != rerank.StatusOK && !ri.Status.Skipped() {
		level = slog.LevelWarn // fell back to the retrieval order
	}
	s.logger.Log(ctx, level, "rerank", "provider", ri.Provider, "status", ri.Status, "took", ri.Took,
		"prompt_tokens", ri.Usage.Prompt, "completion_tokens", ri.Usage.Completion, "reasoning_tokens", ri.Usage.Reasoning,
		"cached_tokens", ri.Usage.Cached, "cost", ri.Cost, "cached", ri.Cached, "partial", ri.Partial, "top_changed", ri.TopChanged)
}
