package rerank

import (
	"context"
	"fmt"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Prompt is one generation asked of the providers (see LLM.Generate).
type Prompt struct {
	System, User string
	// MaxTokens is the completion budget (max_tokens); 0 means Options.MaxTokens.
	MaxTokens int
	// Accept reports whether a reply is usable. A reply it refuses is
	// StatusMalformed, and the next provider is asked like after any
	// failure. nil accepts any non-empty reply.
	Accept func(reply string) bool
}

// Generation is the outcome of LLM.Generate.
type Generation struct {
	// Text is the reply of the provider that answered (StatusOK only).
	Text string
	// Status, Detail, Provider, Usage, Cost and Latency are as in Result.
	Status   Status
	Detail   string
	Provider string
	Usage    Usage
	Cost     float64
	Latency  time.Duration
}

// Err returns nil if a provider answered, and otherwise an error wrapping
// ErrUnavailable that names the status.
func (g Generation) Err() error {
	return Result{Status: g.Status, Detail: g.Detail}.Err()
}

// Generate asks the providers for one completion of p, with the machinery
// of Rerank: the hard deadline Options.Timeout (a shorter ctx deadline
// wins), retries, hedging and fail-over in priority order, circuit
// breakers, rate and in-flight caps. It never panics or blocks past the
// deadline; every failure is a Status. Replies are not cached (callers that
// want a cache key it themselves) and never streamed.
func (l *LLM) Generate(ctx context.Context, p Prompt) Generation {
	start := time.Now()
	g := l.generate(ctx, p)
	g.Latency = time.Since(start)
	return g
}

func (l *LLM) generate(ctx context.Context, p Prompt) Generation {
	if len(l.providers) == 0 {
		return Generation{Status: StatusNoProvider}
	}
	if l.inflight != nil {
		select {
		case l.inflight <- struct{}{}:
			defer func() { <-l.inflight }()
		default:
			return Generation{Status: StatusOverloaded}
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, l.opts.Timeout, errDeadline)
	defer cancel()
	maxTokens := p.MaxTokens
	if maxTokens <= 0 {
		maxTokens = l.opts.MaxTokens
	}
	accept := p.Accept
	if accept == nil {
		accept = func(s string) bool { return s != "" }
	}
	var msgs []openai.ChatCompletionMessage
	if p.System != "" {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: p.System})
	}
	msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: p.User})
	req := openai.ChatCompletionRequest{MaxTokens: maxTokens, Messages: msgs}
	o := l.race(ctx, req, ask{accept: accept})
	g := Generation{Status: o.status, Detail: o.detail, Provider: o.provider, Usage: o.usage, Cost: l.cost(o.provider, o.usage)}
	if o.status == StatusOK {
		g.Text = o.text
	}
	return g
}

// String summarises a generation for logs: status, provider, time, tokens.
func (g Generation) String() string {
	s := fmt.Sprintf("%s (provider %s, %s, tokens in %d / out %d)", g.Status, g.Provider, g.Latency.Round(time.Millisecond), g.Usage.Prompt, g.Usage.Completion)
	if g.Detail != "" {
		s += ": " + g.Detail
	}
	return s
}
