package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// rerankModeFlag is -rerank: auto, off or required; "-rerank" alone is
// required (the caller asked for reranking and wants to know if it failed).
type rerankModeFlag string

func (m *rerankModeFlag) String() string { return string(*m) }
func (m *rerankModeFlag) Set(v string) error {
	switch v {
	case "true":
		v = "required"
	case "false":
		v = "off"
	}
	if v != "auto" && v != "off" && v != "required" {
		return fmt.Errorf("want auto, off or required")
	}
	*m = rerankModeFlag(v)
	return nil
}

// IsBoolFlag lets "-rerank" stand alone.
func (m *rerankModeFlag) IsBoolFlag() bool { return true }

func (m rerankModeFlag) mode() retrieve.RerankMode {
	switch m {
	case "off":
		return retrieve.RerankOff
	case "required":
		return retrieve.RerankRequired
	}
	return retrieve.RerankAuto
}

// rerankFlags configure one OpenAI-protocol reranking provider. The API key
// comes only from the environment variable named by -rerank-key-env.
type rerankFlags struct {
	config                     string
	url, model, keyEnv, vendor string
	timeout, hedge             time.Duration
	fusedWeight, skipRatio     float64
	stream                     bool
}

func (r *rerankFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.config, "rerank-config", "", `JSON file listing reranking providers in priority order: [{"name", "base_url", "model", "api_key_env", "vendor", "temperature", "extra_body"}]; instead of -rerank-url`)
	fs.StringVar(&r.url, "rerank-url", "", "OpenAI-protocol base URL of the reranking LLM, e.g. https://gateway/v1 (empty: no reranking)")
	fs.StringVar(&r.model, "rerank-model", "", "model name for reranking")
	fs.StringVar(&r.keyEnv, "rerank-key-env", "ZHISOU_RERANK_API_KEY", "name of the environment variable that holds the API key")
	fs.StringVar(&r.vendor, "rerank-vendor", "", "vendor quirks: '' (plain OpenAI), dashscope (enable_thinking false, temperature 0), no-thinking (thinking disabled: Ark, Zhipu, DeepSeek, Kimi)")
	fs.DurationVar(&r.timeout, "rerank-timeout", 1200*time.Millisecond, "hard deadline of one rerank call")
	fs.DurationVar(&r.hedge, "rerank-hedge", 500*time.Millisecond, "ask the next provider after this long without an answer")
	fs.Float64Var(&r.fusedWeight, "rerank-fused-weight", 0, "blend with the retrieval order: 0 = the model's order, 1 = the retrieval order")
	fs.BoolVar(&r.stream, "rerank-stream", false, "stream the reply, so that the ids received before the deadline are used (needs a gateway that streams)")
	fs.Float64Var(&r.skipRatio, "rerank-skip-ratio", 0, "skip the call when the first hit's score is at least this many times the second's (0: never)")
}

// providerEntry is one provider in a -rerank-config file.
type providerEntry struct {
	Name        string  `json:"name"`
	BaseURL     string  `json:"base_url"`
	Model       string  `json:"model"`
	APIKeyEnv   string  `json:"api_key_env"`
	Vendor      string  `json:"vendor"`
	Temperature float64 `json:"temperature"`
	// SendZeroTemperature sends "temperature": 0 explicitly (go-openai drops a zero).
	SendZeroTemperature bool           `json:"send_zero_temperature"`
	ExtraBody           map[string]any `json:"extra_body"`
	// Prices per million prompt and completion tokens.
	PricePrompt     float64 `json:"price_prompt"`
	PriceCompletion float64 `json:"price_completion"`
	// RequestsPerSecond caps the calls to the provider (0: no cap).
	RequestsPerSecond float64 `json:"requests_per_second"`
	// MaxInflight caps the provider's concurrent calls (0: no cap).
	MaxInflight int `json:"max_inflight"`
}

// provider turns an entry into a rerank.Provider with its vendor's quirks;
// extra_body fields are added to (and override) the vendor's.
func (e providerEntry) provider() (rerank.Provider, error) {
	p := rerank.Provider{Name: e.Name, BaseURL: e.BaseURL, Model: e.Model, APIKeyEnv: e.APIKeyEnv, Temperature: e.Temperature,
		PricePrompt: e.PricePrompt, PriceCompletion: e.PriceCompletion, RequestsPerSecond: e.RequestsPerSecond, MaxInflight: e.MaxInflight}
	switch e.Vendor {
	case "":
	case "dashscope":
		p.Quirks = rerank.DashScopeQuirks()
	case "no-thinking":
		p.Quirks = rerank.ThinkingDisabledQuirks()
	default:
		return p, fmt.Errorf("provider %q: vendor %q: want '', dashscope or no-thinking", e.Name, e.Vendor)
	}
	if e.SendZeroTemperature {
		p.Quirks.SendZeroTemperature = true
	}
	if len(e.ExtraBody) > 0 {
		body := map[string]any{}
		maps.Copy(body, p.Quirks.ExtraBody)
		maps.Copy(body, e.ExtraBody)
		p.Quirks.ExtraBody = body
	}
	return p, nil
}

// build returns the reranker, or nil when none is configured.
func (r *rerankFlags) build(getenv func(string) string) (retrieve.Reranker, error) {
	providers, err := loadProviders("reranker", "rerank", r.config, r.url, r.model, r.keyEnv, r.vendor)
	if err != nil || providers == nil {
		return nil, err
	}
	opts := rerank.DefaultOptions()
	opts.Providers = providers
	opts.Timeout, opts.HedgeDelay, opts.FusedWeight, opts.SkipRatio = r.timeout, r.hedge, r.fusedWeight, r.skipRatio
	opts.Stream = r.stream
	opts.Getenv = getenv
	l, err := rerank.New(opts)
	if err != nil {
		return nil, fmt.Errorf("reranker: %w", err)
	}
	return l, nil
}

// loadProviders reads the providers of a -<flag>-config file, or makes one
// of -<flag>-url, -<flag>-model, -<flag>-key-env and -<flag>-vendor; nil
// when neither is given. Errors start with what.
func loadProviders(what, flag, config, url, model, keyEnv, vendor string) ([]rerank.Provider, error) {
	var entries []providerEntry
	switch {
	case config != "" && url != "":
		return nil, fmt.Errorf("%s: give -%s-config or -%s-url, not both", what, flag, flag)
	case config != "":
		b, err := os.ReadFile(config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&entries); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", what, config, err)
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("%s: %s lists no provider", what, config)
		}
	case url != "":
		name := vendor
		if name == "" {
			name = "default"
		}
		entries = []providerEntry{{Name: name, BaseURL: url, Model: model, APIKeyEnv: keyEnv, Vendor: vendor}}
	default:
		return nil, nil
	}
	var out []rerank.Provider
	for _, e := range entries {
		p, err := e.provider()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, p)
	}
	return out, nil
}
