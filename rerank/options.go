package rerank

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// Options configures an LLM. The zero value is valid: it has no providers,
// so every Rerank returns the fused order with StatusNoProvider. Zero fields
// take the values documented on DefaultOptions.
type Options struct {
	// Providers are the OpenAI-protocol endpoints, in priority order. The
	// first is asked first; the next ones are hedges and fail-overs.
	Providers []Provider

	// Candidates is N, how many of the leading fused candidates are sent to
	// the model (default 20). Candidates after the first N keep their fused
	// order after the reranked ones.
	Candidates int
	// PassageChars caps each passage in the prompt, in characters (runes),
	// heading and title included (default 220).
	PassageChars int
	// AskTop is how many ids the prompt asks the model for (default 5).
	// Ids it does not list keep their fused order after the listed ones.
	AskTop int
	// MaxTokens is the completion budget sent as max_tokens (default 32).
	MaxTokens int

	// Timeout is the hard deadline of one Rerank call, retries and hedges
	// included (default 1.2 s). A shorter ctx deadline wins.
	Timeout time.Duration
	// HedgeDelay is how long a provider may stay silent before the next
	// provider is asked as well (default 500 ms). A failed provider hands
	// over to the next at once, without waiting. Negative disables hedging
	// (fail-over still happens).
	HedgeDelay time.Duration

	// Stream asks for a streamed reply (SSE, "stream": true with
	// stream_options.include_usage, so that vendors which support it send
	// the usage in the last chunk). The content is collected as it arrives: if
	// the deadline, the caller's deadline or a broken connection ends the
	// stream after at least one complete id, that prefix of the answer is
	// used (Result.Partial) instead of falling back to the fused order.
	// SSE keep-alive comments and blank lines are skipped, however many.
	// Default false: one plain JSON reply.
	Stream bool

	// FusedWeight blends the model's order with the fused order, in [0, 1]:
	// each reranked candidate gets (1-w)*model position + w*fused position
	// and ties keep the fused order. 0 (the default) is the model's order;
	// 1 keeps the fused order.
	FusedWeight float64
	// SkipRatio skips the call when retrieval is confident: if the first
	// candidate's fused score is at least SkipRatio times the second's, the
	// fused order is returned with StatusSkippedConfident. 0 (the default)
	// never skips. Scores are Candidate.Score; a non-positive second score
	// with a positive first counts as an infinite ratio.
	SkipRatio float64

	// BreakerFailures is how many consecutive transport, 5xx or timeout
	// failures of one provider open its circuit (default 5; negative
	// disables the breaker). Refusals and unparsable replies do not count.
	BreakerFailures int
	// BreakerCooldown is how long an open circuit stays open (default 10 s).
	// After it, calls go through again; one more failure reopens it.
	BreakerCooldown time.Duration

	// CacheSize is how many successful orders are cached, keyed by prompt
	// version, models, normalised query and the candidates' content
	// (default 10 000; negative disables the cache). Fallbacks are never
	// cached.
	CacheSize int
	// MaxInflight caps concurrent calls to the providers (default 64;
	// negative: no cap). A call over the cap returns the fused order with
	// StatusOverloaded at once.
	MaxInflight int

	// Getenv reads the providers' API keys (default os.Getenv).
	Getenv func(string) string
	// Transport carries the HTTP requests (default a clone of
	// http.DefaultTransport owned by the LLM and closed by Close).
	Transport http.RoundTripper
}

// Provider is one OpenAI-protocol endpoint.
type Provider struct {
	// Name identifies the provider in errors and in Result.Provider.
	Name string
	// BaseURL is the API root, e.g. "https://dashscope.aliyuncs.com/compatible-mode/v1";
	// requests go to BaseURL + "/chat/completions".
	BaseURL string
	// Model is the model or endpoint id.
	Model string
	// APIKeyEnv names the environment variable that holds the API key. The
	// key itself never appears in configuration, errors or results.
	APIKeyEnv string
	// Temperature is the sampling temperature. go-openai omits 0, so the
	// server default (often 0.7-1) applies unless Quirks.SendZeroTemperature
	// is set. Zhipu rejects 0: use 0.01 there.
	Temperature float64
	// Quirks are the vendor-specific request changes.
	Quirks Quirks
	// PricePrompt and PriceCompletion are the prices per million prompt and
	// completion tokens (reasoning tokens are billed as completion), in any
	// one currency; Result.Cost is computed from them.
	PricePrompt, PriceCompletion float64
	// RequestsPerSecond caps the calls to this provider (burst: one second's
	// worth); a call over the rate skips to the next provider. 0: no cap.
	RequestsPerSecond float64
	// MaxInflight caps this provider's concurrent calls; a call over the cap
	// skips to the next provider (status overloaded if none is left). 0: no cap.
	MaxInflight int
}

// Quirks are per-vendor changes to the request body, kept as data so that a
// new vendor needs configuration, not code.
type Quirks struct {
	// ExtraBody fields are merged into the top level of the JSON request
	// body, replacing fields of the same name; e.g. {"enable_thinking": false}
	// for DashScope or {"thinking": {"type": "disabled"}} for Ark, Zhipu,
	// DeepSeek and Kimi.
	ExtraBody map[string]any
	// SendZeroTemperature sends "temperature": 0 when Provider.Temperature
	// is 0, which go-openai would otherwise leave out.
	SendZeroTemperature bool
}

// DashScopeQuirks returns the quirks for Alibaba DashScope (Qwen): thinking
// is switched off with the top-level field enable_thinking.
func DashScopeQuirks() Quirks {
	return Quirks{ExtraBody: map[string]any{"enable_thinking": false}, SendZeroTemperature: true}
}

// ThinkingDisabledQuirks returns the quirks for vendors that switch thinking
// off with {"thinking": {"type": "disabled"}}: Volcengine Ark (Doubao),
// Zhipu (GLM), DeepSeek and Kimi. It does not send temperature 0, because
// Zhipu rejects it; set Provider.Temperature to 0.01 instead.
func ThinkingDisabledQuirks() Quirks {
	return Quirks{ExtraBody: map[string]any{"thinking": map[string]any{"type": "disabled"}}}
}

// DefaultOptions returns the defaults that New fills into zero fields. It
// has no providers.
func DefaultOptions() Options {
	return Options{
		Candidates:      20,
		PassageChars:    220,
		AskTop:          5,
		MaxTokens:       32,
		Timeout:         1200 * time.Millisecond,
		HedgeDelay:      500 * time.Millisecond,
		BreakerFailures: 5,
		BreakerCooldown: 10 * time.Second,
		CacheSize:       10000,
		MaxInflight:     64,
		Getenv:          os.Getenv,
	}
}

// withDefaults fills zero fields from DefaultOptions and validates the rest.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"Candidates", &o.Candidates, d.Candidates},
		{"PassageChars", &o.PassageChars, d.PassageChars},
		{"AskTop", &o.AskTop, d.AskTop},
		{"MaxTokens", &o.MaxTokens, d.MaxTokens},
	} {
		if *f.v < 0 {
			return o, fmt.Errorf("rerank: %s is negative (%d)", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("rerank: Timeout is negative (%v)", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.HedgeDelay == 0 {
		o.HedgeDelay = d.HedgeDelay
	}
	if o.FusedWeight < 0 || o.FusedWeight > 1 {
		return o, fmt.Errorf("rerank: FusedWeight %v is outside [0, 1]", o.FusedWeight)
	}
	if o.SkipRatio < 0 {
		return o, fmt.Errorf("rerank: SkipRatio is negative (%v)", o.SkipRatio)
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = d.BreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = d.BreakerCooldown
	}
	if o.CacheSize == 0 {
		o.CacheSize = d.CacheSize
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = d.MaxInflight
	}
	if o.Getenv == nil {
		o.Getenv = d.Getenv
	}
	return o, nil
}

// validate checks one provider entry; errors name the provider.
func (p Provider) validate(i int, seen map[string]bool) error {
	if p.Name == "" {
		return fmt.Errorf("rerank: provider #%d has no name", i+1)
	}
	if p.RequestsPerSecond < 0 || p.PricePrompt < 0 || p.PriceCompletion < 0 || p.MaxInflight < 0 {
		return fmt.Errorf("rerank: provider %q: negative requests per second, price or max in flight", p.Name)
	}
	if seen[p.Name] {
		return fmt.Errorf("rerank: provider %q is listed twice", p.Name)
	}
	seen[p.Name] = true
	switch {
	case p.BaseURL == "":
		return fmt.Errorf("rerank: provider %q has no base URL", p.Name)
	case p.Model == "":
		return fmt.Errorf("rerank: provider %q has no model", p.Name)
	case p.APIKeyEnv == "":
		return fmt.Errorf("rerank: provider %q has no API key variable", p.Name)
	case p.Temperature < 0:
		return fmt.Errorf("rerank: provider %q has a negative temperature", p.Name)
	}
	return nil
}
