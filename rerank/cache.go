package rerank

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// cacheKey identifies a rerank request: prompt version, the providers'
// models, the normalised query, and every candidate's content.
func (l *LLM) cacheKey(query string, cands []Candidate) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", promptVersion)
	for _, p := range l.opts.Providers {
		fmt.Fprintf(h, "%s\x00%s\x00", p.Name, p.Model)
	}
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%v\x00", strings.Join(strings.Fields(strings.ToLower(query)), " "),
		l.opts.Candidates, l.opts.PassageChars, l.opts.AskTop, l.opts.FusedWeight)
	for _, c := range cands {
		fmt.Fprintf(h, "%s\x01%s\x01%s\x00", c.Title, c.Heading, c.Text)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cached is what the cache keeps of a successful answer.
type cached struct {
	order    []int
	none     bool
	provider string
}

func newCache(size int) (*ristretto.Cache[string, cached], error) {
	if size < 0 {
		return nil, nil
	}
	return ristretto.NewCache(&ristretto.Config[string, cached]{NumCounters: int64(size) * 10, MaxCost: int64(size), BufferItems: 64})
}

// sharedResult is the answer of one call, shared by identical requests.
type sharedResult struct {
	r      Result
	billed atomic.Bool
}

// shared runs one rerank per distinct request: a request identical to one in
// flight waits for that one's answer (within its own deadline) instead of
// calling the provider again; successful answers are cached.
func (l *LLM) shared(ctx context.Context, query string, cands []Candidate) Result {
	key := l.cacheKey(query, cands)
	if l.cache != nil {
		if c, ok := l.cache.Get(key); ok {
			return Result{Order: append([]int(nil), c.order...), Status: StatusOK, Provider: c.provider, NoneRelevant: c.none, Cached: true}
		}
	}
	// The shared call must not end because the first caller went away:
	// it runs on a context without that caller's cancellation, bounded by
	// the hard timeout and by that caller's deadline if it has one.
	callCtx := context.WithoutCancel(ctx)
	var cancel context.CancelFunc = func() {}
	if d, ok := ctx.Deadline(); ok {
		callCtx, cancel = context.WithDeadline(callCtx, d)
	}
	var leader atomic.Bool // this caller's callCtx runs the call
	ch := l.flight.DoChan(key, func() (any, error) {
		leader.Store(true)
		defer cancel()
		// Only a request that makes a call takes a slot; identical ones
		// wait for it.
		if l.inflight != nil {
			select {
			case l.inflight <- struct{}{}:
				defer func() { <-l.inflight }()
			default:
				return &sharedResult{r: Result{Order: identity(len(cands)), Status: StatusOverloaded}}, nil
			}
		}
		r := l.rerank(callCtx, query, cands)
		if r.Status == StatusOK && !r.Partial && l.cache != nil {
			l.cache.Set(key, cached{order: append([]int(nil), r.Order...), none: r.NoneRelevant, provider: r.Provider}, 1)
		}
		return &sharedResult{r: r}, nil
	})
	select {
	case res := <-ch:
		return l.served(res)
	case <-ctx.Done():
		if leader.Load() && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The call runs under this caller's deadline, so it is ending
			// too: wait for it, because a stream may salvage the ids it
			// received (Result.Partial).
			return l.served(<-ch)
		}
		r := Result{Order: identity(len(cands)), Status: ctxStatus(ctx)}
		return r
	}
}

// served returns a caller's copy of a shared call's result.
func (l *LLM) served(res singleflight.Result) Result {
	sr := res.Val.(*sharedResult)
	r := sr.r
	r.Order = append([]int(nil), r.Order...) // callers own their slice
	if !sr.billed.CompareAndSwap(false, true) {
		r.Usage, r.Cost = Usage{}, 0 // the call is billed once, to the first caller served
	}
	return r
}
