package rerank

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// ErrUnavailable is wrapped by Result.Err when reranking did not happen.
// Callers that demanded reranking map it to codes.Unavailable.
var ErrUnavailable = errors.New("rerank unavailable")

// Candidate is one fused retrieval result offered for reranking.
type Candidate struct {
	// Heading is the outline path of the chunk, e.g. "第二章 > 2.1 报价".
	Heading string
	// Title is the document title.
	Title string
	// Text is the passage; it is cut to Options.PassageChars together with
	// Heading and Title.
	Text string
	// Score is the fused retrieval score, higher is better. Only the
	// confidence skip (Options.SkipRatio) reads it.
	Score float64
}

// Status says how a Rerank call ended.
type Status string

// Attempted reports whether reranking was tried (the status is not
// StatusOff).
func (s Status) Attempted() bool { return s != StatusOff && s != "" }

// Skipped reports whether the reranker chose not to call a model (too few
// candidates, or a confident fused order): not a failure.
func (s Status) Skipped() bool { return s == StatusSkippedFew || s == StatusSkippedConfident }

// The statuses of a Result. Every status except StatusOK comes with the
// fused order.
const (
	// StatusOff: no reranking was attempted (none asked for or configured).
	// Rerank never returns it; callers that skip it report it.
	StatusOff Status = "off"
	// StatusOK: the model answered and Order follows it.
	StatusOK Status = "ok"
	// StatusSkippedFew: fewer than two candidates, nothing to rerank.
	StatusSkippedFew Status = "skipped_few"
	// StatusSkippedConfident: the fused score margin exceeded Options.SkipRatio.
	StatusSkippedConfident Status = "skipped_confident"
	// StatusNoProvider: no provider is configured.
	StatusNoProvider Status = "no_provider"
	// StatusCircuitOpen: every provider's circuit breaker is open.
	StatusCircuitOpen Status = "circuit_open"
	// StatusTimeout: the hard deadline passed before a valid answer.
	StatusTimeout Status = "timeout"
	// StatusCanceled: the caller's ctx was canceled.
	StatusCanceled Status = "canceled"
	// StatusRateLimited: HTTP 429, after the retry budget.
	StatusRateLimited Status = "rate_limited"
	// StatusQuotaExhausted: the account is in arrears or out of quota
	// (e.g. Zhipu 1113, HTTP 402); not retried, needs an operator.
	StatusQuotaExhausted Status = "quota_exhausted"
	// StatusServerError: HTTP 5xx, after the retry budget.
	StatusServerError Status = "server_error"
	// StatusUnreachable: a transport error (connection refused or reset).
	StatusUnreachable Status = "unreachable"
	// StatusRefused: a content-safety refusal (DashScope
	// data_inspection_failed, Ark SensitiveContentDetected, Zhipu 1301,
	// finish_reason content_filter).
	StatusRefused Status = "refused"
	// StatusClientError: another HTTP 4xx, e.g. a bad key or model name.
	StatusClientError Status = "client_error"
	// StatusThrottled: every provider was over its configured request rate
	// (Provider.RequestsPerSecond); no call was made.
	StatusThrottled Status = "throttled"
	// StatusOverloaded: Options.MaxInflight calls are already in flight; no
	// call was made (load shedding instead of queueing past the deadline).
	StatusOverloaded Status = "overloaded"
	// StatusStreamCut: a streamed reply (Options.Stream) ended before it
	// was finished, without "data: [DONE]" or a finish reason (the
	// connection closed or broke), and before any complete id arrived.
	// Retried like a transport error. A stream cut after some ids is
	// StatusOK with Result.Partial.
	StatusStreamCut Status = "stream_cut"
	// StatusMalformed: the reply could not be read or holds no valid id
	// (bad JSON, empty content, prose, thinking that used up max_tokens).
	StatusMalformed Status = "malformed"
)

// Usage is the token usage the provider reported for the answer used.
type Usage struct {
	Prompt     int
	Completion int
	// Reasoning tokens should be 0: more means thinking was not disabled.
	Reasoning int
	// Cached prompt tokens (a vendor prefix-cache hit), when reported.
	Cached int
}

// Result is the outcome of a Rerank call. It is always usable: Order is a
// full permutation of the candidates' indices.
type Result struct {
	// Order lists indices into the candidates, best first. It always has
	// one entry per candidate; on any failure it is 0, 1, 2, ...
	Order []int
	// Status says why Order is what it is.
	Status Status
	// Detail explains a failure for logs (HTTP status, vendor code and
	// message, finish reason); empty on a full success, and on a partial
	// one it says why the stream ended early. It holds no secrets.
	Detail string
	// Provider names the provider whose answer (or failure) Status reports.
	Provider string
	// Partial reports a streamed answer (Options.Stream) that was cut
	// short by the deadline, the caller's deadline, a broken connection or
	// a vendor error event after at least one complete id: Order starts
	// with the ids received and the other candidates follow as usual.
	// Status is StatusOK. Partial answers are not cached.
	Partial bool
	// NoneRelevant reports that the model answered "0": no passage is
	// relevant. Order is then the fused order and Status is StatusOK.
	NoneRelevant bool
	// Usage is the token usage of that provider's reply, when it sent one.
	Usage Usage
	// Cost is the estimated cost of that reply from the provider's prices.
	Cost float64
	// Cached reports an order served from the cache (no call, no cost).
	Cached bool
	// Latency is the wall time of the Rerank call.
	Latency time.Duration
}

// Err returns nil if the model's answer was used, and otherwise an error
// wrapping ErrUnavailable that names the status.
func (r Result) Err() error {
	if r.Status == StatusOK {
		return nil
	}
	if r.Detail != "" {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, r.Status, r.Detail)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, r.Status)
}

// LLM reranks candidates with one listwise chat completion. It is safe for
// concurrent use.
type LLM struct {
	opts      Options
	providers []*provider
	transport http.RoundTripper
	cache     *ristretto.Cache[string, cached] // nil: no cache
	flight    singleflight.Group
	inflight  chan struct{} // a slot per call in flight; nil: unlimited
}

// New returns an LLM for opts. It fails if an option is out of range or a
// provider entry lacks a name, base URL, model or API key; the error names
// the provider and the missing variable, never a key.
func New(opts Options) (*LLM, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &LLM{opts: opts, transport: opts.Transport}
	if l.cache, err = newCache(opts.CacheSize); err != nil {
		return nil, fmt.Errorf("rerank: cache: %w", err)
	}
	if opts.MaxInflight > 0 {
		l.inflight = make(chan struct{}, opts.MaxInflight)
	}
	if l.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		l.transport = t
	}
	seen := make(map[string]bool)
	for i, p := range opts.Providers {
		if err := p.validate(i, seen); err != nil {
			return nil, err
		}
		key := opts.Getenv(p.APIKeyEnv)
		if key == "" {
			return nil, fmt.Errorf("rerank: provider %q: environment variable %s is empty", p.Name, p.APIKeyEnv)
		}
		rw, err := newRewriter(l.transport, p)
		if err != nil {
			return nil, err
		}
		cfg := openai.DefaultConfig(key)
		cfg.BaseURL = p.BaseURL
		cfg.HTTPClient = &http.Client{Transport: rw}
		pr := &provider{
			cfg:      p,
			priority: i,
			client:   openai.NewClientWithConfig(cfg),
			breaker:  breaker{threshold: opts.BreakerFailures, cooldown: opts.BreakerCooldown},
		}
		if p.MaxInflight > 0 {
			pr.slots = make(chan struct{}, p.MaxInflight)
		}
		if p.RequestsPerSecond > 0 {
			pr.limiter = rate.NewLimiter(rate.Limit(p.RequestsPerSecond), max(1, int(math.Ceil(p.RequestsPerSecond))))
		}
		l.providers = append(l.providers, pr)
	}
	return l, nil
}

// Options returns the effective options, defaults filled in.
func (l *LLM) Options() Options { return l.opts }

// Close closes idle HTTP connections. Calls in flight are not affected;
// the LLM stays usable.
func (l *LLM) Close() {
	type idleCloser interface{ CloseIdleConnections() }
	if c, ok := l.transport.(idleCloser); ok {
		c.CloseIdleConnections()
	}
}

// Rerank orders cands for query. It never fails: on any problem it returns
// the fused order (the order of cands) with a Status saying why. Only the
// first Options.Candidates candidates are sent to the model; the rest
// follow them in their fused order. The call ends by min(Options.Timeout,
// ctx deadline), retries and hedges included, and leaves no goroutine
// behind. cands is not modified.
func (l *LLM) Rerank(ctx context.Context, query string, cands []Candidate) Result {
	start := time.Now()
	var res Result
	if len(cands) < 2 || l.confident(cands) || len(l.providers) == 0 {
		res = l.rerank(ctx, query, cands) // answers at once, without a call
	} else {
		res = l.shared(ctx, query, cands)
	}
	res.Latency = time.Since(start)
	return res
}

func (l *LLM) rerank(ctx context.Context, query string, cands []Candidate) Result {
	fused := Result{Order: identity(len(cands))}
	switch {
	case len(cands) < 2:
		fused.Status = StatusSkippedFew
		return fused
	case l.confident(cands):
		fused.Status = StatusSkippedConfident
		return fused
	case len(l.providers) == 0:
		fused.Status = StatusNoProvider
		return fused
	}

	ctx, cancel := context.WithTimeoutCause(ctx, l.opts.Timeout, errDeadline)
	defer cancel()

	n := min(len(cands), l.opts.Candidates)
	req := openai.ChatCompletionRequest{
		MaxTokens: l.opts.MaxTokens,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: systemPrompt},
			{Role: openai.ChatMessageRoleUser, Content: buildPrompt(query, cands[:n], l.opts.PassageChars, l.opts.AskTop)},
		},
	}
	if l.opts.Stream {
		req.Stream = true
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	o := l.race(ctx, req, ask{n: n})
	fused.Status, fused.Detail, fused.Provider, fused.Usage = o.status, o.detail, o.provider, o.usage
	fused.Cost = l.cost(o.provider, o.usage)
	if o.status != StatusOK {
		return fused
	}
	fused.NoneRelevant, fused.Partial = o.none, o.partial
	if o.partial {
		fused.Detail = o.detail
	}
	copy(fused.Order, blend(complete(o.ids, n), l.opts.FusedWeight))
	return fused
}

// cost prices a reply's usage with its provider's prices. Completion tokens
// as reported include reasoning tokens (OpenAI's usage convention).
func (l *LLM) cost(provider string, u Usage) float64 {
	for _, p := range l.opts.Providers {
		if p.Name == provider {
			return (float64(u.Prompt)*p.PricePrompt + float64(u.Completion)*p.PriceCompletion) / 1e6
		}
	}
	return 0
}

// confident reports whether the first fused score beats the second by at
// least Options.SkipRatio.
func (l *LLM) confident(cands []Candidate) bool {
	r := l.opts.SkipRatio
	if r == 0 {
		return false
	}
	s1, s2 := cands[0].Score, cands[1].Score
	if s2 <= 0 {
		return s1 > 0
	}
	return s1 >= r*s2
}

// race asks the providers in priority order: the first at once, the next
// after each HedgeDelay of silence or as soon as every provider in flight
// has failed. The first valid answer wins and the others are canceled.
// race returns only after all the goroutines it started have ended.
func (l *LLM) race(ctx context.Context, req openai.ChatCompletionRequest, a ask) outcome {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()                              // runs second: the losers exit promptly once canceled
	defer cancel(errHedgeLost)                   // runs first
	done := make(chan outcome, len(l.providers)) // buffered: senders never block

	var failures []outcome // one per provider, in priority order
	next, inFlight := 0, 0
	launch := func() {
		for next < len(l.providers) {
			p := l.providers[next]
			next++
			if !p.breaker.allow(time.Now()) {
				failures = append(failures, outcome{provider: p.cfg.Name, priority: p.priority, status: StatusCircuitOpen, skipped: true})
				continue
			}
			if p.limiter != nil && !p.limiter.Allow() {
				// Over the configured request rate: do not wait (the
				// deadline is short); the next provider may have room.
				failures = append(failures, outcome{provider: p.cfg.Name, priority: p.priority, status: StatusThrottled, skipped: true})
				continue
			}
			if p.slots != nil {
				select {
				case p.slots <- struct{}{}:
				default:
					failures = append(failures, outcome{provider: p.cfg.Name, priority: p.priority, status: StatusOverloaded, skipped: true})
					continue
				}
			}
			inFlight++
			wg.Go(func() {
				if p.slots != nil {
					defer func() { <-p.slots }()
				}
				done <- p.call(ctx, req, a)
			})
			return
		}
	}

	launch()
	var hedge <-chan time.Time
	if l.opts.HedgeDelay > 0 {
		t := time.NewTicker(l.opts.HedgeDelay)
		defer t.Stop()
		hedge = t.C
	}
	for inFlight > 0 {
		select {
		case o := <-done:
			inFlight--
			if o.status == StatusOK {
				return o
			}
			failures = append(failures, o)
			if inFlight == 0 {
				launch()
			}
		case <-hedge:
			launch()
		case <-ctx.Done():
			// The hard deadline or the caller. The providers still in
			// flight see the same ctx and end promptly; a streaming one
			// may have salvaged the ids it had received (Result.Partial),
			// so wait for their outcomes and keep the best partial one.
			salvaged := outcome{provider: l.providers[0].cfg.Name, status: ctxStatus(ctx)}
			for ; inFlight > 0; inFlight-- {
				o := <-done
				if o.status == StatusOK && (salvaged.status != StatusOK || better(o, salvaged)) {
					salvaged = o
				}
			}
			return salvaged
		}
	}
	return worst(failures)
}

// better reports whether answer a beats answer b: a full answer beats a
// partial one, then more ids win, then the higher-priority provider.
func better(a, b outcome) bool {
	switch {
	case a.partial != b.partial:
		return !a.partial
	case len(a.ids) != len(b.ids):
		return len(a.ids) > len(b.ids)
	}
	return a.priority < b.priority
}

// worst picks the failure to report: that of the highest-priority provider
// actually called, or, if none was called, of the first one skipped.
func worst(failures []outcome) outcome {
	best := failures[0]
	for _, f := range failures[1:] {
		if (best.skipped && !f.skipped) || (best.skipped == f.skipped && f.priority < best.priority) {
			best = f
		}
	}
	return best
}
