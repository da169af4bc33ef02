package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// Config is one evaluation.
type Config struct {
	Set      *Set
	Analyzer *analysis.Analyzer
	// Collection, when set, is an existing collection of the store in
	// StoreDir to search instead of ingesting the set's corpus into a
	// temporary store.
	Collection string
	StoreDir   string
	// Baseline also runs stock bleve on the same corpus (not with Collection).
	Baseline bool
	// Reranker, if set, reranks every query; Result counts what it did.
	Reranker retrieve.Reranker
	Mode     retrieve.Mode
	// Weights, if set, override the collection's fusion weights.
	Weights *index.FusionWeights
	// Warm runs every query warmPasses times, untimed, before the timed
	// pass (both sides).
	Warm bool
	// Folds, when 2 or more, cross-validates learning from labelled pairs:
	// query i is in fold i mod Folds; for each fold the collection learns
	// the pairs (query text, relevant document) of the other folds, replacing
	// what it held, and the fold's own queries are scored. No query is ever
	// learned and scored in one round.
	Folds int
}

// Validate reports a configuration Run cannot carry out, before any work.
func (c Config) Validate() error {
	switch {
	case c.Set == nil:
		return errors.New("eval: no set")
	case c.Analyzer == nil:
		return errors.New("eval: no analyzer")
	case c.Baseline && c.Collection != "":
		return errors.New("eval: the baseline needs the corpus ingested by eval itself, not an existing collection")
	case c.Folds == 1 || c.Folds < 0 || c.Folds > 100:
		return fmt.Errorf("eval: %d folds: want 2 to 100 (or 0 for no cross-validation)", c.Folds)
	case c.Folds > 1 && c.Collection != "":
		return errors.New("eval: cross-validation replaces the collection's learned pairs; it runs on the corpus ingested by eval itself, not an existing collection")
	}
	return nil
}

// Result is what Run measured: Print writes it, WriteRuns and JSON export it.
type Result struct {
	zhisou, bleve       *metrics
	zhisouRun, bleveRun map[string][]rankedDoc
	rerank              rerankSummary
}

// rerankSummary adds up what the reranker did over the queries.
type rerankSummary struct {
	statuses   map[string]int // empty without a reranker
	usage      rerank.Usage
	topChanged int
	cost       float64
}

func (s *rerankSummary) add(ri *retrieve.RerankInfo) {
	if ri == nil || !ri.Status.Attempted() {
		return
	}
	s.statuses[string(ri.Status)]++
	s.usage.Prompt += ri.Usage.Prompt
	s.usage.Completion += ri.Usage.Completion
	s.usage.Reasoning += ri.Usage.Reasoning
	s.cost += ri.Cost
	if ri.TopChanged {
		s.topChanged++
	}
}

const (
	// warmPasses is the number of untimed passes of Config.Warm.
	warmPasses = 2
	// warmPause lets the background decoder cache the terms a warm-up pass
	// asked for, so that the timed pass measures a warm index.
	warmPause = 500 * time.Millisecond
	// evalDepth is how many documents each query ranks: recall@100 needs 100.
	evalDepth = 100
	// evalMaxChunks bounds the chunks fetched to find them.
	evalMaxChunks = 1600
)

// Run evaluates: it ingests the corpus (unless Config.Collection names one),
// warms up on request, times every query at depth 100 and again at the top
// 10, scores the rankings, and does the same with the baseline on request.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := openTarget(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer t.close()
	res := &Result{rerank: rerankSummary{statuses: map[string]int{}}}
	s := retrieve.New(t.store, retrieve.Options{MaxTopK: evalMaxChunks, Reranker: cfg.Reranker})
	n := len(cfg.Set.Queries)
	p := pass{cfg: cfg, s: s, collection: t.collection, lat: make([]time.Duration, n), lat10: make([]time.Duration, n), refused: map[string]bool{}, refusedPairs: map[index.Pair]bool{}}
	res.zhisouRun = map[string][]rankedDoc{}
	folds := max(cfg.Folds, 1)
	for f := range folds {
		p.only = nil
		if folds > 1 {
			if err := p.learnFolds(ctx, t.store, f, folds); err != nil {
				return nil, err
			}
			for i := f; i < n; i += folds {
				p.only = append(p.only, i)
			}
		} else {
			for i := range n {
				p.only = append(p.only, i)
			}
		}
		if cfg.Warm {
			if err := p.warmUp(ctx); err != nil {
				return nil, err
			}
		}
		if err := p.timed(ctx, res); err != nil {
			return nil, err
		}
		if err := p.top10(ctx); err != nil {
			return nil, err
		}
	}
	res.zhisou = score(cfg.Set, res.zhisouRun, p.lat)
	res.zhisou.Refused, res.zhisou.RefusedPairs = len(p.refused), len(p.refusedPairs)
	if len(p.extra) > 0 {
		res.zhisou.extraLatency = percentiles(p.extra)
	}
	lat10 := p.lat10
	res.zhisou.top10Latency, res.zhisou.longTop10Latency = percentiles(lat10), percentiles(longOnly(cfg.Set, lat10))
	info, err := t.store.Collection(t.collection)
	if err != nil {
		return nil, err
	}
	res.zhisou.Docs = int(info.Stats.Docs)
	res.zhisou.IngestSeconds = t.ingestTook.Seconds()
	if cfg.Baseline {
		if res.bleve, res.bleveRun, err = runBaseline(ctx, cfg, t.inputs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// target is the store and collection the queries run against.
type target struct {
	store      *store.Store
	collection string
	inputs     []ingest.Input // the corpus, when eval ingested it
	ingestTook time.Duration
	tmp        string // removed by close
}

func (t *target) close() {
	if t.store != nil {
		t.store.Close()
	}
	if t.tmp != "" {
		os.RemoveAll(t.tmp)
	}
}

// openTarget opens the existing collection, or reads the corpus and ingests
// it into a temporary store, merging its segments before queries are timed.
func openTarget(ctx context.Context, cfg Config) (*target, error) {
	t := &target{}
	dir := cfg.StoreDir
	if cfg.Collection == "" {
		inputs, failed, err := ingest.ReadAll([]string{cfg.Set.Corpus}, 0)
		if err != nil {
			return nil, fmt.Errorf("eval corpus: %w", err)
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("eval corpus: %d files failed, first: %w", len(failed), failed[0])
		}
		if err := checkQrels(cfg.Set, inputs); err != nil {
			return nil, err
		}
		if t.tmp, err = os.MkdirTemp("", "zhisou-eval-"); err != nil {
			return nil, err
		}
		dir, t.inputs = t.tmp, inputs
	}
	st, err := store.Open(ctx, dir, cfg.Analyzer, store.Options{})
	if err != nil {
		t.close()
		return nil, err
	}
	t.store, t.collection = st, cfg.Collection
	if cfg.Collection != "" {
		// An existing collection may hold labelled pairs or generated
		// questions: score with the model the store builds at open.
		if err := st.WaitLearned(ctx, cfg.Collection); err != nil {
			t.close()
			return nil, fmt.Errorf("eval: %w", err)
		}
		return t, nil
	}
	t.collection = "eval"
	if err := t.ingest(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// ingest writes the corpus into a new collection and merges its segments,
// so that latency is measured in a steady state rather than against
// background merges (the baseline gets the same).
func (t *target) ingest(ctx context.Context) error {
	if err := t.store.CreateCollection(ctx, index.DefaultCollection(t.collection)); err != nil {
		return err
	}
	start := time.Now()
	// As zhisou ingest writes: the same batches, two at a time.
	rep, err := ingest.Write(ctx, ingest.Local{Store: t.store}, t.inputs, ingest.Options{Collection: t.collection})
	if err == nil && len(rep.Failed) > 0 {
		err = fmt.Errorf("%d documents refused, the first %s", len(rep.Failed), rep.Failed[0])
	}
	if err != nil {
		return fmt.Errorf("eval ingest: %w", err)
	}
	if err := t.store.ForceMerge(ctx, t.collection); err != nil {
		return fmt.Errorf("eval ingest: merge: %w", err)
	}
	t.ingestTook = time.Since(start)
	return nil
}

// pass runs the set's queries through zhisou.
type pass struct {
	cfg        Config
	s          *retrieve.Searcher
	collection string
	// only are the indices of the queries this round runs, in order.
	only []int
	// lat and lat10 are each query's latency at depth 100 and at the top
	// 10, by query index; extra the fusion's share.
	lat, lat10 []time.Duration
	extra      []time.Duration
	// refused are the queries the searcher refused (counted as misses);
	// refusedPairs the pairs cross-validation could not learn.
	refused      map[string]bool
	refusedPairs map[index.Pair]bool
}

// learnFolds replaces the collection's learned pairs with those of every
// fold but f: (query text, relevant document), in batches.
func (p *pass) learnFolds(ctx context.Context, st *store.Store, f, folds int) error {
	var pairs []index.Pair
	for i, q := range p.cfg.Set.Queries {
		if i%folds == f {
			continue
		}
		for _, d := range sortedRelevant(p.cfg.Set.Qrels[q.ID]) {
			pairs = append(pairs, index.Pair{Question: q.Text, ChunkID: d})
		}
	}
	replace := true
	for len(pairs) > 0 || replace {
		batch := pairs[:min(len(pairs), store.MaxPairsPerWrite)]
		pairs = pairs[len(batch):]
		rep, err := st.Learn(ctx, p.collection, batch, replace, len(pairs) > 0)
		if err != nil {
			return fmt.Errorf("eval: learn fold %d: %w", f, err)
		}
		for _, r := range rep.Refused { // scored, never learned: counted
			p.refusedPairs[r.Pair] = true
		}
		replace = false
	}
	return nil
}

// sortedRelevant lists the relevant documents of a query's qrels, in order.
func sortedRelevant(rels map[string]int) []string {
	var out []string
	for d, r := range rels {
		if r > 0 {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (p pass) request(q Query, k int) retrieve.Request {
	return retrieve.Request{Collection: p.collection, Query: q.Text, TopK: k, Mode: p.cfg.Mode, Weights: p.cfg.Weights}
}

// search runs one request; a query without searchable words is an empty
// ranking, not an error, and so is a query the searcher refuses (too long,
// say): it counts as a miss, and the report says how many were refused.
func (p pass) search(ctx context.Context, q Query, req retrieve.Request) (retrieve.Result, error) {
	r, err := p.s.Search(ctx, req)
	if errors.Is(err, retrieve.ErrInvalid) && !errors.Is(err, index.ErrNotFound) {
		p.refused[q.ID] = true
		return retrieve.Result{}, nil
	}
	if err != nil && !errors.Is(err, retrieve.ErrEmptyQuery) {
		return r, fmt.Errorf("query %s: %w", q.ID, err)
	}
	return r, nil
}

// warmUp runs the untimed passes, each followed by a pause (cut short when
// ctx ends).
func (p pass) warmUp(ctx context.Context) error {
	for range warmPasses {
		for _, i := range p.only {
			q := p.cfg.Set.Queries[i]
			if _, err := p.search(ctx, q, p.request(q, evalDepth)); err != nil {
				return fmt.Errorf("warm-up %w", err)
			}
		}
		if err := sleep(ctx, warmPause); err != nil {
			return err
		}
	}
	return nil
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// timed is the timed pass at depth 100 over the round's queries: it fills
// res.zhisouRun, the latencies, and the rerank summary.
func (p *pass) timed(ctx context.Context, res *Result) error {
	for _, i := range p.only {
		q := p.cfg.Set.Queries[i]
		ranked, first, took, err := p.rankDeep(ctx, q)
		if err != nil {
			return err
		}
		p.lat[i] = took
		if p.cfg.Mode == retrieve.ModeFused && first.Debug != nil {
			p.extra = append(p.extra, fusionTime(first.Debug))
		}
		res.rerank.add(first.Rerank)
		res.zhisouRun[q.ID] = ranked
	}
	return nil
}

// rankDeep ranks evalDepth documents for q. It asks for evalDepth chunks;
// when they hold fewer documents (documents with many chunks), it asks again
// for more, so that recall@100 counts 100 documents. It returns the first
// call's result and latency: the search a caller asking for 100 hits makes.
func (p pass) rankDeep(ctx context.Context, q Query) ([]rankedDoc, retrieve.Result, time.Duration, error) {
	var ranked []rankedDoc
	var first retrieve.Result
	var took time.Duration
	for k := evalDepth; ; k *= 4 {
		start := time.Now()
		req := p.request(q, min(k, evalMaxChunks))
		req.Debug = true
		r, err := p.search(ctx, q, req)
		if k == evalDepth {
			first, took = r, time.Since(start)
		}
		if err != nil {
			return nil, first, took, err
		}
		ranked = ranked[:0]
		seen := map[string]bool{}
		for _, h := range r.Hits {
			if !seen[h.DocID] {
				seen[h.DocID] = true
				ranked = append(ranked, rankedDoc{h.DocID, h.Score})
			}
		}
		if len(ranked) >= evalDepth || len(r.Hits) < k || k >= evalMaxChunks {
			return ranked[:min(len(ranked), evalDepth)], first, took, nil
		}
	}
}

// fusionTime is the time the outline and graph sources and the fusion took.
func fusionTime(d *retrieve.Debug) time.Duration {
	var t time.Duration
	for _, st := range d.Stages {
		if st.Name == retrieve.SourceOutline || st.Name == retrieve.SourceGraph || st.Name == retrieve.StageFuse {
			t += st.Took
		}
	}
	return t
}

// top10 is a second timed pass at the API's default page, the top 10,
// without reranking, over the round's queries; it fills p.lat10.
func (p *pass) top10(ctx context.Context) error {
	for _, i := range p.only {
		q := p.cfg.Set.Queries[i]
		start := time.Now()
		req := p.request(q, 10)
		req.Rerank = retrieve.RerankOff
		_, err := p.search(ctx, q, req)
		p.lat10[i] = time.Since(start)
		if err != nil {
			return err
		}
	}
	return nil
}
