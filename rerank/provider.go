package rerank

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/time/rate"
)

// Retry timing. A retry waits a random backoff in [retryMinBackoff,
// retryMaxBackoff] (or the server's Retry-After), and happens only if at
// least minAttempt of the budget is left after the wait.
const (
	retryMinBackoff = 50 * time.Millisecond
	retryMaxBackoff = 200 * time.Millisecond
	minAttempt      = 100 * time.Millisecond
	// maxBreakerHold caps how long a Retry-After may hold a circuit open.
	maxBreakerHold = time.Minute
)

var (
	// errDeadline is the cancel cause of the hard per-call deadline.
	errDeadline = errors.New("rerank deadline")
	// errHedgeLost is the cancel cause of the calls that lost a hedge race.
	errHedgeLost = errors.New("another provider answered first")
)

// provider is one configured endpoint with its client and breaker.
type provider struct {
	cfg      Provider
	priority int // index in Options.Providers
	client   *openai.Client
	breaker  breaker
	limiter  *rate.Limiter // nil: no rate limit
	slots    chan struct{} // a slot per call in flight; nil: no cap
}

// ask says what a call expects of the reply: the ids of n candidates (a
// rerank), or, when accept is set, a text that accept can read (a
// generation, see LLM.Generate).
type ask struct {
	n      int
	accept func(reply string) bool
}

// outcome is the result of asking one provider.
type outcome struct {
	provider string
	priority int
	status   Status
	detail   string
	ids      []int  // 0-based, valid, best first (StatusOK only, a rerank)
	text     string // the reply (StatusOK only, a generation)
	none     bool   // the model answered "0"
	partial  bool   // a stream cut short after ids (StatusOK only)
	usage    Usage
	skipped  bool // the provider was not called (circuit open)

	retryable  bool          // worth one more attempt
	retryAfter time.Duration // from a Retry-After header, 0 if none
	tripsBreak bool          // counts as a breaker failure
}

// call asks the provider, retrying at most once when the failure is
// transient and the remaining budget allows it.
func (p *provider) call(ctx context.Context, req openai.ChatCompletionRequest, a ask) outcome {
	req.Model = p.cfg.Model
	req.Temperature = float32(p.cfg.Temperature)
	for attempt := 0; ; attempt++ {
		o := p.attempt(ctx, req, a)
		p.breaker.record(time.Now(), o)
		if o.status == StatusOK || !o.retryable || attempt == 1 {
			return o
		}
		wait := o.retryAfter
		if wait == 0 {
			wait = retryMinBackoff + rand.N(retryMaxBackoff-retryMinBackoff)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+minAttempt {
			return o // no time for a useful retry
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return o
		}
	}
}

// attempt makes one HTTP request and classifies its result.
func (p *provider) attempt(ctx context.Context, req openai.ChatCompletionRequest, a ask) outcome {
	if req.Stream {
		return p.attemptStream(ctx, req, a.n)
	}
	o := outcome{provider: p.cfg.Name, priority: p.priority}
	actx, rec := withRecorder(ctx)
	resp, err := p.client.CreateChatCompletion(actx, req)
	if ctx.Err() != nil {
		// Whatever err says, the reason is the deadline, the caller or a
		// lost hedge race.
		o.status = ctxStatus(ctx)
		o.tripsBreak = o.status == StatusTimeout
		return o
	}
	if err != nil {
		classify(&o, err, rec)
		return o
	}
	o.usage = usageOf(resp.Usage)
	if len(resp.Choices) == 0 {
		o.status, o.detail = StatusMalformed, "no choices"
		return o
	}
	ch := resp.Choices[0]
	if ch.FinishReason == openai.FinishReasonContentFilter {
		o.status, o.detail = StatusRefused, "finish_reason=content_filter"
		return o
	}
	if a.accept != nil {
		// A generation: the reply is the text, if the caller can read it.
		if !a.accept(ch.Message.Content) {
			o.status = StatusMalformed
			o.detail = fmt.Sprintf("unreadable reply (finish_reason=%s, %d chars, reasoning_tokens=%d)",
				ch.FinishReason, len([]rune(ch.Message.Content)), o.usage.Reasoning)
			return o
		}
		o.status, o.text = StatusOK, ch.Message.Content
		return o
	}
	ids, none, ok := parseIDs(ch.Message.Content, a.n)
	if !ok {
		o.status = StatusMalformed
		o.detail = fmt.Sprintf("no ids in reply (finish_reason=%s, %d chars, reasoning_tokens=%d)",
			ch.FinishReason, len([]rune(ch.Message.Content)), o.usage.Reasoning)
		return o
	}
	o.status, o.ids, o.none = StatusOK, ids, none
	return o
}

// ctxStatus says why ctx is done.
func ctxStatus(ctx context.Context) Status {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errDeadline), errors.Is(cause, context.DeadlineExceeded):
		return StatusTimeout
	default:
		return StatusCanceled // the caller, or a lost hedge race
	}
}

// refusalCodes are the vendor error codes and types of content-safety
// refusals. A refusal is deterministic: never retried, never a breaker
// failure.
var refusalCodes = []string{
	"data_inspection_failed", "DataInspectionFailed", // DashScope
	"SensitiveContentDetected", "RiskDetection", // Ark
	"1301",           // Zhipu
	"content_filter", // Kimi, Azure
}

// quotaCodes mean the account cannot pay; retrying does not help.
var quotaCodes = []string{
	"1113", "1304", "1308", "1310", // Zhipu: arrears, quotas
	"Arrearage",          // DashScope
	"insufficient_quota", // OpenAI
}

// classify fills o from a failed request.
func classify(o *outcome, err error, rec *recorder) {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	status, code, msg := 0, "", ""
	switch {
	case errors.As(err, &apiErr):
		status, msg = apiErr.HTTPStatusCode, apiErr.Message
		code = fmt.Sprint(apiErr.Code)
		if apiErr.Code == nil {
			code = ""
		}
		if apiErr.Type != "" {
			code = strings.TrimPrefix(code+" "+apiErr.Type, " ")
		}
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
		msg = snippet(string(reqErr.Body))
	case rec.status == 0:
		// No response at all: a transport failure.
		o.status, o.detail = StatusUnreachable, err.Error()
		o.retryable, o.tripsBreak = true, true
		return
	default:
		// A 2xx response that go-openai could not decode.
		o.status, o.detail = StatusMalformed, fmt.Sprintf("http %d: %v", rec.status, err)
		return
	}
	o.detail = fmt.Sprintf("http %d", status)
	if code != "" {
		o.detail += " code=" + code
	}
	if msg != "" {
		o.detail += ": " + msg
	}
	switch {
	case containsAny(code, refusalCodes):
		o.status = StatusRefused
	case containsAny(code, quotaCodes) || status == http.StatusPaymentRequired:
		o.status = StatusQuotaExhausted
	case status == http.StatusTooManyRequests:
		o.status, o.retryable = StatusRateLimited, true
		o.retryAfter = retryAfter(rec.header, time.Now())
	case status >= 500:
		o.status, o.retryable, o.tripsBreak = StatusServerError, true, true
	case status >= 400:
		o.status = StatusClientError
	default:
		o.status = StatusMalformed
	}
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date; 0
// if absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// snippet shortens a raw error body (e.g. a proxy's HTML page) for Detail.
func snippet(s string) string {
	return truncate(oneLine(s), 120)
}

func usageOf(u openai.Usage) Usage {
	out := Usage{Prompt: u.PromptTokens, Completion: u.CompletionTokens}
	if u.CompletionTokensDetails != nil {
		out.Reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	if u.PromptTokensDetails != nil {
		out.Cached = u.PromptTokensDetails.CachedTokens
	}
	return out
}

// breaker is a consecutive-failure circuit breaker. After threshold
// failures in a row it opens for cooldown; a 429 whose Retry-After is
// beyond the call's budget opens it for that long. Once open time has
// passed, calls go through again, and one more failure reopens it.
type breaker struct {
	threshold int // <= 0: disabled
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

func (b *breaker) allow(now time.Time) bool {
	if b.threshold <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !now.Before(b.openUntil)
}

func (b *breaker) record(now time.Time, o outcome) {
	if b.threshold <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case o.status == StatusOK && o.partial:
		// A stream cut short after some ids: the provider was slow or its
		// connection broke, but it answered; neither a failure nor a reset.
	case o.status == StatusOK:
		b.failures = 0
	case o.tripsBreak:
		b.failures++
		if b.failures >= b.threshold {
			b.openUntil = now.Add(b.cooldown)
		}
	}
	if o.status == StatusRateLimited && o.retryAfter > 0 {
		if until := now.Add(min(o.retryAfter, maxBreakerHold)); until.After(b.openUntil) {
			b.openUntil = until
		}
	}
}
