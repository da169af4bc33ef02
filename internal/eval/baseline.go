// Package eval scores retrieval on labelled query sets (recall@k, MRR, nDCG,
// latency) and runs stock bleve side by side as the baseline.
package eval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/blevesearch/bleve/v2"
	bleveanalysis "github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/registry"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/ingest"
)

// Baseline is stock bleve used the plain way: a scorch index with
// bleve's own BM25 scoring, the same gse Analyzer as a bleve tokenizer, title
// and text in the composite field, and a match query. zhisou eval runs it side
// by side with the Store to report quality and latency ratios.
type Baseline struct {
	idx bleve.Index
}

// BaselineDoc is one document for the baseline.
type BaselineDoc struct {
	ID, Title, Text string
}

// NewBaseline creates an empty baseline index in dir (a scorch index on disk,
// as bleve is normally used).
func NewBaseline(dir string, an *analysis.Analyzer) (*Baseline, error) {
	im := bleve.NewIndexMapping()
	im.ScoringModel = bindex.BM25Scoring
	if err := im.AddCustomTokenizer("zh_tok", map[string]any{"type": tokenizerName, "analyzer": an}); err != nil {
		return nil, fmt.Errorf("baseline tokenizer: %w", err)
	}
	if err := im.AddCustomAnalyzer("zh", map[string]any{"type": custom.Name, "tokenizer": "zh_tok"}); err != nil {
		return nil, fmt.Errorf("baseline analyzer: %w", err)
	}
	im.DefaultAnalyzer = "zh"
	dm := bleve.NewDocumentStaticMapping()
	for _, f := range []string{"title", "text"} {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer, fm.Store, fm.IncludeInAll = "zh", false, true
		dm.AddFieldMappingsAt(f, fm)
	}
	im.DefaultMapping = dm
	// Scorch explicitly: BM25 needs it (upside_down, which bleve.NewMemOnly
	// picks, silently scores with TF-IDF whatever the mapping says).
	idx, err := bleve.NewUsing(dir, im, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("baseline index: %w", err)
	}
	return &Baseline{idx: idx}, nil
}

// Add indexes documents.
func (b *Baseline) Add(docs []BaselineDoc) error {
	batch := b.idx.NewBatch()
	for i, d := range docs {
		if err := batch.Index(d.ID, map[string]any{"title": d.Title, "text": d.Text}); err != nil {
			return err
		}
		if (i+1)%1000 == 0 {
			if err := b.idx.Batch(batch); err != nil {
				return err
			}
			batch = b.idx.NewBatch()
		}
	}
	return b.idx.Batch(batch)
}

// Search runs a match query on the composite field and returns document ids
// and scores, best first.
func (b *Baseline) Search(ctx context.Context, q string, k int) ([]string, []float64, error) {
	mq := bleve.NewMatchQuery(q)
	mq.SetField("_all")
	res, err := b.idx.SearchInContext(ctx, bleve.NewSearchRequestOptions(mq, k, 0, false))
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, len(res.Hits))
	scores := make([]float64, len(res.Hits))
	for i, h := range res.Hits {
		ids[i], scores[i] = h.ID, h.Score
	}
	return ids, scores, nil
}

// ForceMerge merges the index's segments into one.
func (b *Baseline) ForceMerge(ctx context.Context) error { return bm25.MergeSegments(ctx, b.idx) }

// Close releases the index.
func (b *Baseline) Close() error { return b.idx.Close() }

// tokenizerName is the bleve tokenizer that runs an analysis.Analyzer. Only the
// baseline uses it: zhisou's own index receives terms already analysed.
const tokenizerName = "zhisou"

// bleve finds tokenizers through a process-wide registry, so this is the one
// global registration in the project (see STYLE.md §14). It lives with the
// baseline, the only user, so that the server binary's index never needs it.
// The Analyzer itself is passed in the tokenizer's config map, so no analyzer
// is global.
func init() {
	registry.RegisterTokenizer(tokenizerName, func(cfg map[string]any, _ *registry.Cache) (bleveanalysis.Tokenizer, error) {
		a, ok := cfg["analyzer"].(*analysis.Analyzer)
		if !ok || a == nil {
			return nil, fmt.Errorf("tokenizer %s: config has no *analysis.Analyzer under \"analyzer\"", tokenizerName)
		}
		return bleveTokenizer{a}, nil
	})
}

type bleveTokenizer struct{ a *analysis.Analyzer }

func (t bleveTokenizer) Tokenize(in []byte) bleveanalysis.TokenStream {
	toks := t.a.Tokens(string(in))
	out := make(bleveanalysis.TokenStream, len(toks))
	for i, tk := range toks {
		out[i] = &bleveanalysis.Token{Term: []byte(tk.Term), Start: tk.Start, End: tk.End, Position: i + 1, Type: bleveanalysis.Ideographic}
	}
	return out
}

// runBaseline indexes the corpus with stock bleve, force-merges it, warms up
// on request, and times the same two passes as zhisou's: depth 100 (scored)
// and top 10.
func runBaseline(ctx context.Context, cfg Config, inputs []ingest.Input) (*metrics, map[string][]rankedDoc, error) {
	dir, err := os.MkdirTemp("", "zhisou-eval-bleve-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	b, err := NewBaseline(filepath.Join(dir, "index"), cfg.Analyzer)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	docs := make([]BaselineDoc, len(inputs))
	for i, in := range inputs {
		docs[i] = BaselineDoc{ID: in.ID, Title: in.Title, Text: in.Content}
	}
	start := time.Now()
	if err := b.Add(docs); err != nil {
		return nil, nil, err
	}
	if err := b.ForceMerge(ctx); err != nil {
		return nil, nil, err
	}
	took := time.Since(start)
	queries := cfg.Set.Queries
	for pass := 0; cfg.Warm && pass < warmPasses; pass++ {
		for _, q := range queries {
			if _, _, err := b.Search(ctx, q.Text, evalDepth); err != nil {
				return nil, nil, fmt.Errorf("baseline warm-up query %s: %w", q.ID, err)
			}
		}
	}
	run := map[string][]rankedDoc{}
	lat := make([]time.Duration, 0, len(queries))
	for _, q := range queries {
		start := time.Now()
		ids, scores, err := b.Search(ctx, q.Text, evalDepth)
		lat = append(lat, time.Since(start))
		if err != nil {
			return nil, nil, fmt.Errorf("baseline query %s: %w", q.ID, err)
		}
		ranked := make([]rankedDoc, len(ids))
		for i := range ids {
			ranked[i] = rankedDoc{ids[i], scores[i]}
		}
		run[q.ID] = ranked
	}
	m := score(cfg.Set, run, lat)
	lat = lat[:0]
	for _, q := range queries {
		start := time.Now()
		if _, _, err := b.Search(ctx, q.Text, 10); err != nil {
			return nil, nil, fmt.Errorf("baseline query %s: %w", q.ID, err)
		}
		lat = append(lat, time.Since(start))
	}
	m.top10Latency, m.longTop10Latency = percentiles(lat), percentiles(longOnly(cfg.Set, lat))
	m.Docs = len(docs)
	m.IngestSeconds = took.Seconds()
	return m, run, nil
}
