package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/rerank"
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
	LearnedRank int32    `json:"learned_rank,omitempty"`
	Learned     float64  `json:"learned_score,omitempty"`
	// LearnedQuestion is the labelled question most like the query that
	// names the hit; Expanded the learned expansions that matched.
	LearnedQuestion  string   `json:"learned_question,omitempty"`
	LearnedGenerated bool     `json:"learned_generated,omitempty"`
	Expanded         []string `json:"expanded,omitempty"`
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
		fmt.Fprintf(env.stderr, "usage: zhisou search [flags] QUERY...\n\nSearches the server at -addr, or the data directory -store when that flag (or ZHISOU_STORE) is set.\nWith -rerank-url or -rerank-config, the hits are reranked here, whichever way they were found.\n\n")
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
	filter, err := searchFilter(metas, docs, headings)
	if err != nil {
		return err
	}
	smode, err := retrieve.ParseMode(*modeName)
	if err != nil {
		return fmt.Errorf("search: -mode: %w", err)
	}
	weights, err := fw.weights(fs)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	reranker, err := rf.build(env.getenv)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req := retrieve.Request{
		Collection: c.collection, Query: query, TopK: *k, Filter: filter, WithContext: *withContext, Debug: *debug,
		Rerank: rerankMode.mode(), Mode: smode, Weights: weights,
	}
	var resp *retrievalv1.SearchResponse
	if isSet(fs, "store") {
		resp, err = searchLocal(ctx, env, &c, logger, req, reranker)
	} else {
		resp, err = searchRemote(ctx, &c, req, reranker)
	}
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return printSearch(env, query, resp, *jsonOut, *explain)
}

// searchFilter builds the filter from the -meta, -doc and -heading flags.
func searchFilter(metas, docs, headings []string) (index.Filter, error) {
	filter := index.Filter{DocIDs: docs}
	for _, m := range metas {
		key, val, ok := strings.Cut(m, "=")
		if !ok || key == "" {
			return filter, fmt.Errorf("search: -meta %q: want KEY=VALUE", m)
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
	return filter, nil
}

// searchLocal searches the data directory opened in this process, through
// the same service a server runs.
func searchLocal(ctx context.Context, env *cmdEnv, c *common, logger *slog.Logger, req retrieve.Request, reranker retrieve.Reranker) (*retrievalv1.SearchResponse, error) {
	store, err := env.openStore(ctx, c, logger)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	// The learned model builds in the background at open; a one-off search
	// waits for it (an unknown collection is the search's to report).
	if err := store.WaitLearned(ctx, req.Collection); err != nil && !errors.Is(err, index.ErrNotFound) {
		return nil, err
	}
	svc, err := service.New(store, service.Options{Retrieve: retrieve.Options{Reranker: reranker}, Logger: logger})
	if err != nil {
		return nil, err
	}
	res, err := svc.Search(ctx, req)
	if err != nil {
		return nil, err
	}
	return grpcapi.SearchResultToProto(res), nil
}

// searchRemote searches through the server at addr. With a reranker, the
// server's own reranking is off and the hits are reranked here: that is how
// a reranker is tried against a running server (which holds the store).
func searchRemote(ctx context.Context, c *common, req retrieve.Request, reranker retrieve.Reranker) (*retrievalv1.SearchResponse, error) {
	addr := c.addr
	conn, client, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	preq := &retrievalv1.SearchRequest{
		Collection: req.Collection, Query: req.Query, TopK: int32(req.TopK), WithContext: req.WithContext, Debug: req.Debug,
		Rerank: grpcapi.RerankModeToProto(req.Rerank),
		Filter: &retrievalv1.SearchFilter{DocumentIds: req.Filter.DocIDs, Metadata: req.Filter.Metadata, HeadingPrefix: req.Filter.HeadingPrefix},
		Mode:   grpcapi.SearchModeToProto(req.Mode),
	}
	if req.Weights != nil {
		preq.Fusion = grpcapi.FusionToProto(*req.Weights)
	}
	rerankHere := reranker != nil && req.Rerank != retrieve.RerankOff
	if rerankHere {
		preq.Rerank = retrievalv1.RerankMode_RERANK_MODE_OFF
		preq.TopK = int32(max(req.TopK, rerankPool))
	}
	resp, err := client.Search(ctx, preq)
	if err != nil {
		return nil, grpcapi.ClientErr(addr, err)
	}
	if rerankHere {
		if err := rerankResponse(ctx, reranker, req, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// rerankPool is how many hits the reranker sees whatever -k is, as on the
// server.
const rerankPool = 20

// rerankResponse reorders the response's hits with the reranker, keeps the
// top req.TopK, and says what it did in resp.Rerank. A failure keeps the
// server's order, unless reranking was required.
func rerankResponse(ctx context.Context, reranker retrieve.Reranker, req retrieve.Request, resp *retrievalv1.SearchResponse) error {
	hits := resp.GetHits()
	cands := make([]rerank.Candidate, len(hits))
	for i, h := range hits {
		cands[i] = rerank.Candidate{Heading: index.HeadingString(h.GetHeadingPath()), Title: h.GetDocumentTitle(), Text: h.GetText(), Score: h.GetScore()}
	}
	r := reranker.Rerank(ctx, req.Query, cands)
	resp.Rerank = &retrievalv1.RerankInfo{
		Status: string(r.Status), Provider: r.Provider, Took: durationpb.New(r.Latency), Cost: r.Cost, Cached: r.Cached, Partial: r.Partial,
		PromptTokens: int32(r.Usage.Prompt), CompletionTokens: int32(r.Usage.Completion), ReasoningTokens: int32(r.Usage.Reasoning),
	}
	if err := r.Err(); err != nil && req.Rerank == retrieve.RerankRequired {
		return fmt.Errorf("%w: %w", retrieve.ErrRerankUnavailable, err)
	}
	if r.Err() == nil && len(r.Order) == len(hits) {
		out := make([]*retrievalv1.SearchHit, len(hits))
		for i, j := range r.Order {
			out[i] = hits[j]
		}
		resp.Rerank.TopChanged = len(out) > 0 && out[0].GetChunkId() != hits[0].GetChunkId()
		resp.Hits = out
	}
	resp.Hits = resp.Hits[:min(len(resp.Hits), max(req.TopK, 0))]
	return nil
}

// printSearch prints the response, readable or as JSON.
func printSearch(env *cmdEnv, query string, resp *retrievalv1.SearchResponse, jsonOut, explain bool) error {
	hits, dbg, took := viewsFromProto(resp)
	rr := resp.GetRerank()
	if jsonOut {
		enc := json.NewEncoder(env.stdout)
		enc.SetEscapeHTML(false)
		out := map[string]any{"query": query, "took_ms": float64(took.Microseconds()) / 1000, "hits": hits}
		if rr != nil {
			out["rerank"] = map[string]any{"status": rr.GetStatus(), "provider": rr.GetProvider(), "took_ms": float64(rr.GetTook().AsDuration().Microseconds()) / 1000,
				"prompt_tokens": rr.GetPromptTokens(), "completion_tokens": rr.GetCompletionTokens(), "reasoning_tokens": rr.GetReasoningTokens(), "cost": rr.GetCost(), "top_changed": rr.GetTopChanged()}
		}
		return enc.Encode(out)
	}
	printHits(env, query, hits, dbg, took, explain)
	if rr != nil && rerank.Status(rr.GetStatus()).Attempted() {
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
				LearnedRank: e.GetLearnedRank(), Learned: e.GetLearnedScore(), LearnedQuestion: e.GetLearnedQuestion(), LearnedGenerated: e.GetLearnedGenerated(), Expanded: e.GetExpanded(),
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
	if f, ok := asFile(env.stdout); ok && term.IsTerminal(int(f.Fd())) {
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
	if e.LearnedRank > 0 {
		kind := "labelled"
		if e.LearnedGenerated {
			kind = "generated"
		}
		fmt.Fprintf(w, "     learned  rank %d, score %.3f, like the %s question %q\n", e.LearnedRank, e.Learned, kind, e.LearnedQuestion)
	}
	if len(e.Expanded) > 0 {
		fmt.Fprintf(w, "     expanded %s\n", strings.Join(e.Expanded, ", "))
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
