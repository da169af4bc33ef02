package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// hitView is a hit as search prints it, whichever way it was fetched.
type hitView struct {
	Rank        int      `json:"rank"`
	ChunkID     string   `json:"chunk_id"`
	DocumentID  string   `json:"document_id"`
	Title       string   `json:"title"`
	HeadingPath []string `json:"heading_path"`
	Text        string   `json:"text"`
	Highlights  [][2]int `json:"highlights"`
	Score       float64  `json:"score"`
	Matched     []string `json:"matched_terms"`
	Context     string   `json:"context,omitempty"`
	// Question is the hit's question-bank item, when it is one.
	Question *index.Question `json:"question,omitempty"`
	Evidence *evidenceView   `json:"evidence,omitempty"`
}

// evidenceView is a hit's evidence as search prints it.
type evidenceView struct {
	Sources     []string `json:"sources"`
	FusedRank   int32    `json:"fused_rank"`
	BM25Rank    int32    `json:"bm25_rank"`
	OutlineRank int32    `json:"outline_rank"`
	GraphRank   int32    `json:"graph_rank"`
	BM25        float64  `json:"bm25_score"`
	Outline     float64  `json:"outline_score"`
	Graph       float64  `json:"graph_score"`
	OutlinePath []string `json:"outline_path,omitempty"`
	GraphPath   []string `json:"graph_path,omitempty"`
}

type debugView struct {
	Terms      []string
	Postings   int64
	Candidates int64
	Stages     []string
}

func cmdSearch(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou search", flag.ContinueOnError)
	var c common
	c.register(fs)
	k := fs.Int("k", 10, "number of hits (1-100)")
	jsonOut := fs.Bool("json", false, "print hits as JSON")
	withContext := fs.Bool("context", false, "also print each hit's enclosing section")
	debug := fs.Bool("debug", false, "print analysed terms and stage timings")
	var docs, metas, headings listFlag
	fs.Var(&docs, "doc", "only this document id (repeatable)")
	fs.Var(&metas, "meta", "only documents whose metadata KEY=VALUE (repeatable)")
	fs.Var(&headings, "heading", `only chunks under this heading path, parts joined by " > " (e.g. "第二章 价格异议处理")`)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	rerankMode := rerankModeFlag("auto")
	fs.Var(&rerankMode, "rerank", "LLM reranking: auto (when configured), off, or required; -rerank alone means required")
	var rf rerankFlags
	rf.register(fs)
	explain := fs.Bool("explain", false, "print each hit's evidence: sources, ranks, scores, outline and graph paths")
	modeName := fs.String("mode", "fused", "candidate sources: fused, bm25, outline or graph")
	var fw fusionFlags
	fw.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou search [flags] QUERY...\n\nSearches the server at -addr, or the data directory -store when that flag (or ZHISOU_STORE) is set.\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	query := strings.Join(fs.Args(), " ")
	if strings.TrimSpace(query) == "" {
		fs.Usage()
		return errNoQuery
	}
	filter := index.Filter{DocIDs: docs}
	for _, m := range metas {
		key, val, ok := strings.Cut(m, "=")
		if !ok || key == "" {
			return fmt.Errorf("search: -meta %q: want KEY=VALUE", m)
		}
		if filter.Metadata == nil {
			filter.Metadata = map[string]string{}
		}
		filter.Metadata[key] = val
	}
	for _, h := range headings {
		for _, p := range strings.Split(h, ">") {
			filter.HeadingPrefix = append(filter.HeadingPrefix, strings.TrimSpace(p))
		}
	}
	mode := rerankMode.mode()
	smode, err := retrieve.ParseMode(*modeName)
	if err != nil {
		return fmt.Errorf("search: -mode: %w", err)
	}
	weights, err := fw.weights(fs)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	logger, err := env.logger(c.logLevel)
	if err != nil {
		return err
	}
	var hits []hitView
	var dbg *debugView
	var took time.Duration
	var rr *retrievalv1.RerankInfo
	if isSet(fs, "store") {
		store, err := env.openStore(ctx, &c, logger)
		if err != nil {
			return err
		}
		defer store.Close()
		reranker, err := rf.build(env.getenv)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		res, err := retrieve.New(store, retrieve.Options{Reranker: reranker}).Search(ctx, retrieve.Request{
			Collection: c.collection, Query: query, TopK: *k, Filter: filter, WithContext: *withContext, Debug: *debug, Rerank: mode,
			Mode: smode, Weights: weights,
		})
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		pr := grpcapi.SearchResultToProto(res)
		hits, dbg, took = viewsFromProto(pr)
		rr = pr.GetRerank()
	} else {
		conn, client, err := grpcapi.Dial(c.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		preq := &retrievalv1.SearchRequest{
			Collection: c.collection, Query: query, TopK: int32(*k), WithContext: *withContext, Debug: *debug,
			Rerank: []retrievalv1.RerankMode{retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED, retrievalv1.RerankMode_RERANK_MODE_OFF, retrievalv1.RerankMode_RERANK_MODE_REQUIRED}[mode],
			Filter: &retrievalv1.SearchFilter{DocumentIds: filter.DocIDs, Metadata: filter.Metadata, HeadingPrefix: filter.HeadingPrefix},
			Mode:   grpcapi.SearchModeToProto(smode),
		}
		if weights != nil {
			preq.Fusion = grpcapi.FusionToProto(*weights)
		}
		resp, err := client.Search(ctx, preq)
		if err != nil {
			return fmt.Errorf("search: %w", grpcapi.ClientErr(c.addr, err))
		}
		hits, dbg, took = viewsFromProto(resp)
		rr = resp.GetRerank()
	}
	if *jsonOut {
		enc := json.NewEncoder(env.stdout)
		enc.SetEscapeHTML(false)
		out := map[string]any{"query": query, "took_ms": float64(took.Microseconds()) / 1000, "hits": hits}
		if rr != nil {
			out["rerank"] = map[string]any{"status": rr.GetStatus(), "provider": rr.GetProvider(), "took_ms": float64(rr.GetTook().AsDuration().Microseconds()) / 1000,
				"prompt_tokens": rr.GetPromptTokens(), "completion_tokens": rr.GetCompletionTokens(), "reasoning_tokens": rr.GetReasoningTokens(), "cost": rr.GetCost(), "top_changed": rr.GetTopChanged()}
		}
		return enc.Encode(out)
	}
	printHits(env, query, hits, dbg, took, *explain)
	if rr != nil && rr.GetStatus() != "off" {
		fmt.Fprintf(env.stdout, "\nrerank: %s (provider %s, %s, tokens in %d / out %d / reasoning %d, cost %.6f, top changed %v)\n",
			rr.GetStatus(), rr.GetProvider(), rr.GetTook().AsDuration().Round(time.Millisecond), rr.GetPromptTokens(), rr.GetCompletionTokens(), rr.GetReasoningTokens(), rr.GetCost(), rr.GetTopChanged())
	}
	return nil
}

func viewsFromProto(resp *retrievalv1.SearchResponse) ([]hitView, *debugView, time.Duration) {
	hits := make([]hitView, 0, len(resp.GetHits()))
	for i, h := range resp.GetHits() {
		v := hitView{
			Rank: i + 1, ChunkID: h.GetChunkId(), DocumentID: h.GetDocumentId(), Title: h.GetDocumentTitle(),
			HeadingPath: h.GetHeadingPath(), Text: h.GetText(), Score: h.GetScore(), Matched: h.GetMatchedTerms(), Context: h.GetContext(),
			Highlights: [][2]int{}, Question: grpcapi.QuestionFromProto(h.GetQuestion()),
		}
		if e := h.GetEvidence(); e != nil {
			v.Evidence = &evidenceView{
				Sources: e.GetSources(), FusedRank: e.GetFusedRank(), BM25Rank: e.GetBm25Rank(), OutlineRank: e.GetOutlineRank(), GraphRank: e.GetGraphRank(),
				BM25: e.GetBm25Score(), Outline: e.GetOutlineScore(), Graph: e.GetGraphScore(), OutlinePath: e.GetOutlinePath(), GraphPath: e.GetGraphPath(),
			}
		}
		for _, sp := range h.GetHighlights() {
			v.Highlights = append(v.Highlights, [2]int{int(sp.GetStart()), int(sp.GetEnd())})
		}
		hits = append(hits, v)
	}
	var dbg *debugView
	if d := resp.GetDebug(); d != nil {
		dbg = &debugView{Postings: d.GetPostings(), Candidates: d.GetCandidates()}
		for _, t := range d.GetTerms() {
			dbg.Terms = append(dbg.Terms, fmt.Sprintf("%s(%.1f)", t.GetTerm(), t.GetWeight()))
		}
		for _, s := range d.GetStages() {
			dbg.Stages = append(dbg.Stages, fmt.Sprintf("%s %s", s.GetName(), s.GetTook().AsDuration()))
		}
	}
	return hits, dbg, resp.GetTook().AsDuration()
}

func printHits(env *cmdEnv, query string, hits []hitView, dbg *debugView, took time.Duration, explain bool) {
	open, closeMark := "【", "】"
	if f, ok := env.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		open, closeMark = "\x1b[1;31m", "\x1b[0m"
	}
	w := env.stdout
	fmt.Fprintf(w, "%d hits for %q in %s\n", len(hits), query, took.Round(time.Microsecond))
	if dbg != nil {
		fmt.Fprintf(w, "terms: %s\npostings %d, candidates %d; %s\n", strings.Join(dbg.Terms, " "), dbg.Postings, dbg.Candidates, strings.Join(dbg.Stages, ", "))
	}
	for _, h := range hits {
		fmt.Fprintf(w, "\n%d. %s  [%s]  score %.3f\n", h.Rank, h.Title, h.DocumentID, h.Score)
		if len(h.HeadingPath) > 0 {
			fmt.Fprintf(w, "   %s\n", index.HeadingString(h.HeadingPath))
		}
		if h.Question != nil {
			// The text renders the question one field a line: print it whole.
			full := mark(h.Text, h.Highlights, 0, len(h.Text), open, closeMark)
			fmt.Fprintf(w, "   %s\n", strings.ReplaceAll(full, "\n", "\n   "))
		} else {
			fmt.Fprintf(w, "   %s\n", snippet(h.Text, h.Highlights, 160, open, closeMark))
		}
		if h.Context != "" {
			fmt.Fprintf(w, "   context: %s\n", strings.ReplaceAll(h.Context, "\n", " "))
		}
		if explain && h.Evidence != nil {
			printEvidence(w, h)
		}
	}
}

// printEvidence prints how a hit was found: one line per source that found it,
// then the matched terms.
func printEvidence(w io.Writer, h hitView) {
	e := h.Evidence
	fmt.Fprintf(w, "   evidence: fused rank %d, found by %s\n", e.FusedRank, strings.Join(e.Sources, " + "))
	if e.BM25Rank > 0 {
		fmt.Fprintf(w, "     bm25     rank %d, score %.3f\n", e.BM25Rank, e.BM25)
	}
	if e.OutlineRank > 0 {
		fmt.Fprintf(w, "     outline  rank %d, score %.3f, section %s\n", e.OutlineRank, e.Outline, index.HeadingString(e.OutlinePath))
	}
	if e.GraphRank > 0 {
		fmt.Fprintf(w, "     graph    rank %d, score %.3f, keywords %s\n", e.GraphRank, e.Graph, strings.Join(e.GraphPath, " → "))
	}
	if len(h.Matched) > 0 {
		fmt.Fprintf(w, "     matched  %s\n", strings.Join(h.Matched, " "))
	}
}

// snippet returns about n runes of text around the first highlight, with the
// highlights marked.
func snippet(text string, hl [][2]int, n int, open, closeMark string) string {
	start := 0
	if len(hl) > 0 {
		// Start a few runes before the first highlight.
		start = hl[0][0]
		for back := 0; start > 0 && back < 20; back++ {
			_, size := utf8.DecodeLastRuneInString(text[:start])
			start -= size
		}
	}
	end := start
	for count := 0; end < len(text) && count < n; count++ {
		_, size := utf8.DecodeRuneInString(text[end:])
		end += size
	}
	var b strings.Builder
	if start > 0 {
		b.WriteString("…")
	}
	b.WriteString(mark(text, hl, start, end, open, closeMark))
	if end < len(text) {
		b.WriteString("…")
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// mark returns text[start:end] with the highlights inside it marked.
func mark(text string, hl [][2]int, start, end int, open, closeMark string) string {
	var b strings.Builder
	pos := start
	for _, h := range hl {
		if h[1] <= start || h[0] >= end {
			continue
		}
		s, e := max(h[0], pos), min(h[1], end)
		if s < pos {
			continue
		}
		b.WriteString(text[pos:s])
		b.WriteString(open + text[s:e] + closeMark)
		pos = e
	}
	b.WriteString(text[pos:end])
	return b.String()
}
