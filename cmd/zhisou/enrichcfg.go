package main

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest/enrich"
	"github.com/zhisou/zhisou/rerank"
)

// enrichFlags configure the language model that writes questions and
// keywords for each chunk at ingest (package ingest/enrich); off unless
// -enrich-url or -enrich-config is given.
type enrichFlags struct {
	config, url, model, keyEnv, vendor string
	timeout                            time.Duration
	concurrency, questions             int
}

func (f *enrichFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "enrich-config", "", "JSON file listing the providers that write questions for each chunk at ingest, in priority order (the format of -rerank-config); instead of -enrich-url")
	fs.StringVar(&f.url, "enrich-url", "", "OpenAI-protocol base URL of the model that writes questions and keywords for each chunk at ingest (empty: no enrichment)")
	fs.StringVar(&f.model, "enrich-model", "", "model name for enrichment")
	fs.StringVar(&f.keyEnv, "enrich-key-env", "ZHISOU_ENRICH_API_KEY", "name of the environment variable that holds the enrichment API key")
	fs.StringVar(&f.vendor, "enrich-vendor", "", "vendor quirks for enrichment: '', dashscope or no-thinking (as -rerank-vendor)")
	fs.DurationVar(&f.timeout, "enrich-timeout", 30*time.Second, "hard deadline of one enrichment call (the chunk is written without questions past it)")
	fs.IntVar(&f.concurrency, "enrich-concurrency", 4, "enrichment calls one write makes at once")
	fs.IntVar(&f.questions, "enrich-questions", 3, "questions asked for per chunk")
}

// build returns the enricher, or nil when none is configured.
func (f *enrichFlags) build(getenv func(string) string, logger *slog.Logger) (*enrich.Enricher, error) {
	providers, err := loadProviders("enrichment", "enrich", f.config, f.url, f.model, f.keyEnv, f.vendor)
	if err != nil || providers == nil {
		return nil, err
	}
	if f.concurrency < 1 || f.questions < 1 || f.timeout <= 0 {
		return nil, fmt.Errorf("enrichment: -enrich-concurrency, -enrich-questions and -enrich-timeout must be positive")
	}
	opts := rerank.DefaultOptions()
	opts.Providers = providers
	opts.Timeout = f.timeout
	opts.HedgeDelay = -1 // a generation takes seconds: ask the next provider only when one fails
	opts.CacheSize = -1  // the store keeps what was generated
	opts.Getenv = getenv
	l, err := rerank.New(opts)
	if err != nil {
		return nil, fmt.Errorf("enrichment: %w", err)
	}
	return enrich.New(l, enrich.Options{Questions: f.questions, Concurrency: f.concurrency, Logger: logger}), nil
}

// storeEnricher is e as a store.Enricher: nil (no enrichment) for a nil e.
func storeEnricher(e *enrich.Enricher) store.Enricher {
	if e == nil {
		return nil
	}
	return e
}
