package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

func cmdEval(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou eval", flag.ContinueOnError)
	var c common
	c.register(fs)
	data := fs.String("data", "", "eval set folder with queries.jsonl and qrels.tsv (and corpus.jsonl)")
	corpus := fs.String("corpus", "", "corpus file or folder (default: DATA/corpus.jsonl)")
	baseline := fs.String("baseline", "", "also run this baseline side by side: 'bleve' (stock bleve BM25, same analyzer)")
	jsonOut := fs.Bool("json", false, "print one JSON object with the metrics on the last line")
	runFile := fs.String("run", "", "write each query's ranked list (qid, docid, rank, score) to this file; the baseline's goes to FILE.bleve")
	var rf rerankFlags
	rf.register(fs)
	withRerank := fs.Bool("rerank", false, "rerank with the LLM configured by -rerank-url or -rerank-config, and report status counts, tokens and cost")
	modeName := fs.String("mode", "fused", "candidate sources: fused, bm25, outline or graph")
	warm := fs.Bool("warm", false, "run every query twice, untimed, before the timed pass (zhisou and the baseline): steady-state latency instead of a cold first pass")
	var fw fusionFlags
	fw.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou eval -data DIR [-corpus PATH] [-baseline bleve] [-json] [-run FILE]\n\nWithout -collection the corpus is ingested into a temporary store; with -collection NAME\n(and -store DIR) the queries run against that existing collection instead.\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		fs.Usage()
		return errors.New("eval: -data is required")
	}
	if *baseline != "" && *baseline != "bleve" {
		return fmt.Errorf("eval: -baseline %q: the only baseline is 'bleve'", *baseline)
	}
	logger, err := env.logger(c.logLevel)
	if err != nil {
		return err
	}
	set, err := loadEvalSet(*data, *corpus)
	if err != nil {
		return err
	}
	an, err := env.loadAnalyzer(&c, logger)
	if err != nil {
		return err
	}
	reranker, err := rf.build(env.getenv)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	switch {
	case *withRerank && reranker == nil:
		return errors.New("eval: -rerank needs -rerank-url or -rerank-config")
	case !*withRerank:
		reranker = nil // retrieval alone unless asked
	}
	mode, err := retrieve.ParseMode(*modeName)
	if err != nil {
		return fmt.Errorf("eval: -mode: %w", err)
	}
	weights, err := fw.weights(fs)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	cfg := evalConfig{set: set, an: an, existing: isSet(fs, "collection"), store: c.store, collection: c.collection, baseline: *baseline == "bleve", logger: logger, reranker: reranker, mode: mode, weights: weights, warm: *warm}
	res, err := evaluate(ctx, cfg)
	if err != nil {
		return err
	}
	if *runFile != "" {
		if err := writeRun(*runFile, res.zhisouRun); err != nil {
			return err
		}
		if res.bleve != nil {
			if err := writeRun(*runFile+".bleve", res.bleveRun); err != nil {
				return err
			}
		}
	}
	printEval(env.stdout, res)
	if len(res.rerank) > 0 {
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(res.rerank)) {
			parts = append(parts, fmt.Sprintf("%s %d", st, res.rerank[st]))
		}
		u := res.rerankUsage
		fmt.Fprintf(env.stdout, "\nrerank: %s; top hit changed %d; tokens in %d, out %d, reasoning %d; estimated cost %.4f\n",
			strings.Join(parts, ", "), res.rerankTopChanged, u.Prompt, u.Completion, u.Reasoning, res.rerankCost)
	}
	if *jsonOut {
		var v any = res.zhisou
		if res.bleve != nil {
			v = map[string]*evalMetrics{"zhisou": res.zhisou, "bleve": res.bleve}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, string(b))
	}
	return nil
}

// evalSet is a labelled set: queries, judgements, and the corpus to search.
type evalSet struct {
	queries []evalQuery
	qrels   map[string]map[string]int // query id → doc id → relevance
	corpus  string                    // file or folder
}

type evalQuery struct {
	ID, Text, Kind string
}

func loadEvalSet(dir, corpus string) (*evalSet, error) {
	set := &evalSet{qrels: map[string]map[string]int{}, corpus: corpus}
	if set.corpus == "" {
		set.corpus = filepath.Join(dir, "corpus.jsonl")
	}
	var err error
	if set.queries, err = loadEvalQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "qrels.tsv"))
	if err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(parts) != 3 {
			return nil, fmt.Errorf("eval set: qrels.tsv line %d: want query_id<TAB>doc_id<TAB>relevance", n+1)
		}
		rel, err := strconv.Atoi(parts[2])
		if err != nil {
			if n == 0 {
				continue // a header line
			}
			return nil, fmt.Errorf("eval set: qrels.tsv line %d: relevance %q: %w", n+1, parts[2], err)
		}
		if rel < 1 {
			continue
		}
		if set.qrels[parts[0]] == nil {
			set.qrels[parts[0]] = map[string]int{}
		}
		set.qrels[parts[0]][parts[1]] = rel
	}
	for _, q := range set.queries {
		if len(set.qrels[q.ID]) == 0 {
			return nil, fmt.Errorf("eval set: query %s has no relevant document in qrels.tsv", q.ID)
		}
	}
	return set, nil
}

// loadEvalQueries reads a queries.jsonl file: {"id", "text", "kind"} per line.
func loadEvalQueries(path string) ([]evalQuery, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []evalQuery
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var q struct{ ID, Text, Kind string }
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
		if q.ID == "" || strings.TrimSpace(q.Text) == "" {
			return nil, fmt.Errorf("%s line %d: needs id and text", filepath.Base(path), n)
		}
		out = append(out, evalQuery{q.ID, q.Text, q.Kind})
	}
	return out, sc.Err()
}

// evalMetrics are the numbers eval reports; the JSON keys are fixed.
type evalMetrics struct {
	Queries       int                `json:"queries"`
	Docs          int                `json:"docs"`
	Recall1       float64            `json:"recall@1"`
	Recall5       float64            `json:"recall@5"`
	Recall10      float64            `json:"recall@10"`
	Recall100     float64            `json:"recall@100"`
	Hit10         float64            `json:"hit@10"`
	MRR10         float64            `json:"mrr@10"`
	NDCG10        float64            `json:"ndcg@10"`
	Latency       map[string]float64 `json:"latency_ms"`
	IngestSeconds float64            `json:"ingest_seconds"`
	byKind        map[string]*evalMetrics
	// longQueries and longLatency are the latency of the queries of at
	// least longQueryRunes characters (not in the JSON, whose keys are fixed).
	longQueries int
	longLatency map[string]float64
	// top10Latency is the latency of a second pass asking for 10 hits (the
	// API's default) instead of 100.
	top10Latency map[string]float64
	// longTop10Latency is the same for the long questions.
	longTop10Latency map[string]float64
	// extraLatency is the time the outline and graph sources and the fusion
	// took per query (their debug stages), in fused mode.
	extraLatency map[string]float64
}

type rankedDoc struct {
	id    string
	score float64
}

type evalConfig struct {
	set        *evalSet
	an         *analysis.Analyzer
	existing   bool
	store      string
	collection string
	baseline   bool
	logger     interface{ Info(string, ...any) }
	tune       *index.Collection
	reranker   retrieve.Reranker
	mode       retrieve.Mode
	weights    *index.FusionWeights // nil: the collection's
	// warm runs every query warmPasses times, untimed, before the timed
	// pass (both sides).
	warm bool
}

type evalResult struct {
	// rerank counts rerank statuses over the queries (empty without a reranker).
	rerank           map[string]int
	rerankUsage      rerank.Usage
	rerankTopChanged int
	rerankCost       float64

	zhisou, bleve       *evalMetrics
	zhisouRun, bleveRun map[string][]rankedDoc
	queries             []evalQuery
}

// warmPasses is the number of untimed passes of -warm.
const warmPasses = 2

// longOnly returns the latencies of the long questions (lat is in query order).
func longOnly(set *evalSet, lat []time.Duration) []time.Duration {
	var out []time.Duration
	for i, q := range set.queries {
		if i < len(lat) && utf8.RuneCountInString(q.Text) >= longQueryRunes {
			out = append(out, lat[i])
		}
	}
	return out
}

// longQueryRunes is where a "long question" starts: everyday questions of 20
// characters or more, the slow case for an inverted index.
const longQueryRunes = 20

// evalDepth is how many documents each query ranks: recall@100 needs 100.
// evalMaxChunks bounds the chunks fetched to find them.
const (
	evalDepth     = 100
	evalMaxChunks = 1600
)

func evaluate(ctx context.Context, cfg evalConfig) (*evalResult, error) {
	res := &evalResult{queries: cfg.set.queries}
	var inputs []ingest.Input
	storeDir, collection := cfg.store, cfg.collection
	if !cfg.existing {
		var failed []ingest.FileError
		var err error
		inputs, failed, err = ingest.ReadAll([]string{cfg.set.corpus}, 0)
		if err != nil {
			return nil, fmt.Errorf("eval corpus: %w", err)
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("eval corpus: %d files failed, first: %w", len(failed), failed[0])
		}
		if err := checkQrels(cfg.set, inputs); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp("", "zhisou-eval-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		storeDir, collection = tmp, "eval"
	}
	store, err := store.Open(ctx, storeDir, cfg.an, store.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	var ingestTook time.Duration
	if !cfg.existing {
		cc := index.DefaultCollection(collection)
		if cfg.tune != nil {
			cc = *cfg.tune
			cc.Name = collection
		}
		if err := store.CreateCollection(ctx, cc); err != nil {
			return nil, err
		}
		start := time.Now()
		sink := ingest.Local{Store: store}
		for i := 0; i < len(inputs); i += 256 {
			if _, err := sink.Upsert(ctx, collection, inputs[i:min(i+256, len(inputs))]); err != nil {
				return nil, fmt.Errorf("eval ingest: %w", err)
			}
		}
		// Merge segments before timing queries, so that latency is measured
		// in a steady state rather than against background merges (the
		// baseline gets the same).
		if err := store.ForceMerge(ctx, collection); err != nil {
			return nil, fmt.Errorf("eval ingest: merge: %w", err)
		}
		ingestTook = time.Since(start)
	}
	info, err := store.Collection(collection)
	if err != nil {
		return nil, err
	}
	s := retrieve.New(store, retrieve.Options{MaxTopK: evalMaxChunks, Reranker: cfg.reranker})
	res.rerank = map[string]int{}
	res.zhisouRun = map[string][]rankedDoc{}
	request := func(q evalQuery, k int) retrieve.Request {
		return retrieve.Request{Collection: collection, Query: q.Text, TopK: k, Mode: cfg.mode, Weights: cfg.weights}
	}
	// Warm-up: untimed passes, with a pause for the background decoder to
	// cache the terms the first pass asked for, so the timed pass measures a
	// warm index.
	for pass := 0; cfg.warm && pass < warmPasses; pass++ {
		for _, q := range cfg.set.queries {
			if _, err := s.Search(ctx, request(q, evalDepth)); err != nil && !errors.Is(err, retrieve.ErrEmptyQuery) {
				return nil, fmt.Errorf("warm-up query %s: %w", q.ID, err)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	var lat, extra []time.Duration
	for _, q := range cfg.set.queries {
		// Ask for evalDepth chunks; when they hold fewer than evalDepth
		// documents (documents with many chunks), ask again for more, so that
		// recall@100 counts 100 documents. Latency is the first call's: the
		// search a caller asking for 100 hits makes.
		var ranked []rankedDoc
		for k := evalDepth; ; k *= 4 {
			start := time.Now()
			req := request(q, min(k, evalMaxChunks))
			req.Debug = true
			r, err := s.Search(ctx, req)
			if k == evalDepth {
				lat = append(lat, time.Since(start))
				if cfg.mode == retrieve.ModeFused && r.Debug != nil {
					var d time.Duration
					for _, st := range r.Debug.Stages {
						if st.Name == retrieve.SourceOutline || st.Name == retrieve.SourceGraph || st.Name == retrieve.StageFuse {
							d += st.Took
						}
					}
					extra = append(extra, d)
				}
				if ri := r.Rerank; ri != nil && ri.Status != "off" {
					res.rerank[ri.Status]++
					res.rerankUsage.Prompt += ri.Usage.Prompt
					res.rerankUsage.Completion += ri.Usage.Completion
					res.rerankUsage.Reasoning += ri.Usage.Reasoning
					res.rerankCost += ri.Cost
					if ri.TopChanged {
						res.rerankTopChanged++
					}
				}
			}
			if err != nil && !errors.Is(err, retrieve.ErrEmptyQuery) {
				return nil, fmt.Errorf("query %s: %w", q.ID, err)
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
				break
			}
		}
		res.zhisouRun[q.ID] = ranked[:min(len(ranked), evalDepth)]
	}
	res.zhisou = score(cfg.set, res.zhisouRun, lat)
	if len(extra) > 0 {
		res.zhisou.extraLatency = percentiles(extra)
	}
	// A second timed pass at the API's default page, top 10.
	lat10 := make([]time.Duration, 0, len(cfg.set.queries))
	for _, q := range cfg.set.queries {
		start := time.Now()
		req := request(q, 10)
		req.Rerank = retrieve.RerankOff
		_, err := s.Search(ctx, req)
		lat10 = append(lat10, time.Since(start))
		if err != nil && !errors.Is(err, retrieve.ErrEmptyQuery) {
			return nil, fmt.Errorf("query %s: %w", q.ID, err)
		}
	}
	res.zhisou.top10Latency, res.zhisou.longTop10Latency = percentiles(lat10), percentiles(longOnly(cfg.set, lat10))
	res.zhisou.Docs = int(info.Stats.Docs)
	res.zhisou.IngestSeconds = ingestTook.Seconds()

	if cfg.baseline {
		if cfg.existing {
			return nil, errors.New("eval: -baseline needs the corpus ingested by eval itself; drop -collection")
		}
		bdir, err := os.MkdirTemp("", "zhisou-eval-bleve-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(bdir)
		b, err := eval.NewBaseline(filepath.Join(bdir, "index"), cfg.an)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		docs := make([]eval.BaselineDoc, len(inputs))
		for i, in := range inputs {
			docs[i] = eval.BaselineDoc{ID: in.ID, Title: in.Title, Text: in.Content}
		}
		start := time.Now()
		if err := b.Add(docs); err != nil {
			return nil, err
		}
		if err := b.ForceMerge(ctx); err != nil {
			return nil, err
		}
		took := time.Since(start)
		res.bleveRun = map[string][]rankedDoc{}
		for pass := 0; cfg.warm && pass < warmPasses; pass++ {
			for _, q := range cfg.set.queries {
				if _, _, err := b.Search(ctx, q.Text, evalDepth); err != nil {
					return nil, fmt.Errorf("baseline warm-up query %s: %w", q.ID, err)
				}
			}
		}
		lat = lat[:0]
		for _, q := range cfg.set.queries {
			start := time.Now()
			ids, scores, err := b.Search(ctx, q.Text, evalDepth)
			lat = append(lat, time.Since(start))
			if err != nil {
				return nil, fmt.Errorf("baseline query %s: %w", q.ID, err)
			}
			ranked := make([]rankedDoc, len(ids))
			for i := range ids {
				ranked[i] = rankedDoc{ids[i], scores[i]}
			}
			res.bleveRun[q.ID] = ranked
		}
		res.bleve = score(cfg.set, res.bleveRun, lat)
		lat = lat[:0]
		for _, q := range cfg.set.queries {
			start := time.Now()
			if _, _, err := b.Search(ctx, q.Text, 10); err != nil {
				return nil, fmt.Errorf("baseline query %s: %w", q.ID, err)
			}
			lat = append(lat, time.Since(start))
		}
		res.bleve.top10Latency, res.bleve.longTop10Latency = percentiles(lat), percentiles(longOnly(cfg.set, lat))
		res.bleve.Docs = len(docs)
		res.bleve.IngestSeconds = took.Seconds()
	}
	return res, nil
}

// checkQrels fails when a judged document is not in the corpus.
func checkQrels(set *evalSet, inputs []ingest.Input) error {
	ids := map[string]bool{}
	for _, in := range inputs {
		ids[in.ID] = true
	}
	for q, rels := range set.qrels {
		for d := range rels {
			if !ids[d] {
				return fmt.Errorf("eval set: qrels.tsv judges document %q for query %s, but the corpus has no such document", d, q)
			}
		}
	}
	return nil
}

func score(set *evalSet, run map[string][]rankedDoc, lat []time.Duration) *evalMetrics {
	all := &evalMetrics{byKind: map[string]*evalMetrics{}}
	add := func(m *evalMetrics, q evalQuery) {
		rels := set.qrels[q.ID]
		ranked := run[q.ID]
		m.Queries++
		m.Recall1 += recallAt(ranked, rels, 1)
		m.Recall5 += recallAt(ranked, rels, 5)
		m.Recall10 += recallAt(ranked, rels, 10)
		m.Recall100 += recallAt(ranked, rels, 100)
		for i, d := range ranked[:min(10, len(ranked))] {
			if rels[d.id] > 0 {
				m.Hit10++
				m.MRR10 += 1 / float64(i+1)
				break
			}
		}
		m.NDCG10 += ndcgAt(ranked, rels, 10)
	}
	for _, q := range set.queries {
		add(all, q)
		if q.Kind != "" {
			if all.byKind[q.Kind] == nil {
				all.byKind[q.Kind] = &evalMetrics{}
			}
			add(all.byKind[q.Kind], q)
		}
	}
	for _, m := range append([]*evalMetrics{all}, mapsValues(all.byKind)...) {
		n := float64(max(m.Queries, 1))
		for _, p := range []*float64{&m.Recall1, &m.Recall5, &m.Recall10, &m.Recall100, &m.Hit10, &m.MRR10, &m.NDCG10} {
			*p = round4(*p / n)
		}
	}
	all.Latency = percentiles(lat)
	long := longOnly(set, lat)
	all.longQueries, all.longLatency = len(long), percentiles(long)
	return all
}

func mapsValues(m map[string]*evalMetrics) []*evalMetrics {
	out := make([]*evalMetrics, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func recallAt(ranked []rankedDoc, rels map[string]int, k int) float64 {
	found := 0
	for _, d := range ranked[:min(k, len(ranked))] {
		if rels[d.id] > 0 {
			found++
		}
	}
	return float64(found) / float64(len(rels))
}

func ndcgAt(ranked []rankedDoc, rels map[string]int, k int) float64 {
	dcg := 0.0
	for i, d := range ranked[:min(k, len(ranked))] {
		dcg += float64(rels[d.id]) / math.Log2(float64(i+2))
	}
	ideal := make([]int, 0, len(rels))
	for _, r := range rels {
		ideal = append(ideal, r)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ideal)))
	idcg := 0.0
	for i, r := range ideal[:min(k, len(ideal))] {
		idcg += float64(r) / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

func percentiles(lat []time.Duration) map[string]float64 {
	if len(lat) == 0 {
		return map[string]float64{"p50": 0, "p95": 0, "p99": 0}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return math.Round(float64(s[max(i, 0)].Microseconds())) / 1000
	}
	return map[string]float64{"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

func writeRun(path string, run map[string][]rankedDoc) error {
	var b strings.Builder
	qids := make([]string, 0, len(run))
	for q := range run {
		qids = append(qids, q)
	}
	sort.Strings(qids)
	for _, q := range qids {
		for i, d := range run[q] {
			fmt.Fprintf(&b, "%s\t%s\t%d\t%.6f\n", q, d.id, i+1, d.score)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func printEval(w io.Writer, res *evalResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "metric\tzhisou\t"
	if res.bleve != nil {
		header += "bleve\tratio\t"
	}
	fmt.Fprintln(tw, header)
	row := func(name string, z, b float64, lowerBetter bool) {
		line := fmt.Sprintf("%s\t%.4f\t", name, z)
		if res.bleve != nil {
			ratio := "-"
			if b != 0 {
				ratio = fmt.Sprintf("%.2fx", z/b)
			}
			line += fmt.Sprintf("%.4f\t%s\t", b, ratio)
		}
		fmt.Fprintln(tw, line)
	}
	z, b := res.zhisou, res.bleve
	if b == nil {
		b = &evalMetrics{Latency: map[string]float64{}, longLatency: map[string]float64{}}
	}
	fmt.Fprintf(tw, "queries\t%d\t", z.Queries)
	if res.bleve != nil {
		fmt.Fprintf(tw, "%d\t\t", b.Queries)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "docs\t%d\t", z.Docs)
	if res.bleve != nil {
		fmt.Fprintf(tw, "%d\t\t", b.Docs)
	}
	fmt.Fprintln(tw)
	row("recall@1", z.Recall1, b.Recall1, false)
	row("recall@5", z.Recall5, b.Recall5, false)
	row("recall@10", z.Recall10, b.Recall10, false)
	row("recall@100", z.Recall100, b.Recall100, false)
	row("hit@10", z.Hit10, b.Hit10, false)
	row("mrr@10", z.MRR10, b.MRR10, false)
	row("ndcg@10", z.NDCG10, b.NDCG10, false)
	for _, p := range []string{"p50", "p95", "p99"} {
		row("latency "+p+" ms", z.Latency[p], b.Latency[p], true)
	}
	if z.top10Latency != nil {
		for _, p := range []string{"p50", "p99"} {
			row("top 10 latency "+p+" ms", z.top10Latency[p], b.top10Latency[p], true)
		}
	}
	if z.longQueries > 0 {
		for _, p := range []string{"p50", "p99"} {
			row(fmt.Sprintf("%d queries ≥%d chars %s ms", z.longQueries, longQueryRunes, p), z.longLatency[p], b.longLatency[p], true)
		}
		if z.longTop10Latency != nil {
			for _, p := range []string{"p50", "p99"} {
				row(fmt.Sprintf("same, top 10 %s ms", p), z.longTop10Latency[p], b.longTop10Latency[p], true)
			}
		}
	}
	if z.extraLatency != nil {
		for _, p := range []string{"p50", "p99"} {
			row("outline+graph+fusion "+p+" ms", z.extraLatency[p], 0, true)
		}
	}
	row("ingest s", z.IngestSeconds, b.IngestSeconds, true)
	tw.Flush()
	if len(z.byKind) > 0 {
		fmt.Fprintln(w, "\nby query kind (zhisou):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "kind\tqueries\trecall@10\tmrr@10\tndcg@10\t")
		kinds := make([]string, 0, len(z.byKind))
		for k := range z.byKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			m := z.byKind[k]
			fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%.4f\t\n", k, m.Queries, m.Recall10, m.MRR10, m.NDCG10)
		}
		tw.Flush()
	}
}
