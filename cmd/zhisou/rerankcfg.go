package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// rerankFlags configure one OpenAI-protocol reranking provider. The API key
// comes only from the environment variable named by -rerank-key-env.
type rerankFlags struct {
	url, model, keyEnv, vendor string
	timeout, hedge             time.Duration
	fusedWeight, skipRatio     float64
}

func (r *rerankFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "rerank-url", "", "OpenAI-protocol base URL of the reranking LLM, e.g. https://gateway/v1 (empty: no reranking)")
	fs.StringVar(&r.model, "rerank-model", "", "model name for reranking")
	fs.StringVar(&r.keyEnv, "rerank-key-env", "ZHISOU_RERANK_API_KEY", "name of the environment variable that holds the API key")
	fs.StringVar(&r.vendor, "rerank-vendor", "", "vendor quirks: '' (plain OpenAI), dashscope (enable_thinking false, temperature 0), no-thinking (thinking disabled: Ark, Zhipu, DeepSeek, Kimi)")
	fs.DurationVar(&r.timeout, "rerank-timeout", 1200*time.Millisecond, "hard deadline of one rerank call")
	fs.DurationVar(&r.hedge, "rerank-hedge", 500*time.Millisecond, "ask the next provider after this long without an answer")
	fs.Float64Var(&r.fusedWeight, "rerank-fused-weight", 0, "blend with the retrieval order: 0 = the model's order, 1 = the retrieval order")
	fs.Float64Var(&r.skipRatio, "rerank-skip-ratio", 0, "skip the call when the first hit's score is at least this many times the second's (0: never)")
}

// build returns the reranker, or nil when none is configured.
func (r *rerankFlags) build(getenv func(string) string) (retrieve.Reranker, error) {
	if r.url == "" {
		return nil, nil
	}
	p := rerank.Provider{Name: "default", BaseURL: r.url, Model: r.model, APIKeyEnv: r.keyEnv}
	switch r.vendor {
	case "":
	case "dashscope":
		p.Name, p.Quirks = "dashscope", rerank.DashScopeQuirks()
	case "no-thinking":
		p.Name, p.Quirks = "no-thinking", rerank.ThinkingDisabledQuirks()
	default:
		return nil, fmt.Errorf("-rerank-vendor %q: want '', dashscope or no-thinking", r.vendor)
	}
	opts := rerank.DefaultOptions()
	opts.Providers = []rerank.Provider{p}
	opts.Timeout, opts.HedgeDelay, opts.FusedWeight, opts.SkipRatio = r.timeout, r.hedge, r.fusedWeight, r.skipRatio
	opts.Getenv = getenv
	l, err := rerank.New(opts)
	if err != nil {
		return nil, fmt.Errorf("reranker: %w", err)
	}
	return l, nil
}
