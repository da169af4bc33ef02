// Package retrieve answers queries: it normalises and segments the query and
// weights its terms (query.go: question words count little, dictionary
// sub-words and lexicon synonyms are added at a lower weight), gathers
// candidates from three sources — BM25F (index/bm25), the outline match and
// the keyword graph (index/graph) — and fuses them (fuse.go), optionally
// reranks them with an LLM (rerank.go), and returns hits with their heading
// path, highlights, evidence and, on request, the enclosing section.
package retrieve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/rerank"
)

// Errors callers branch on; all of them mean the request was bad.
var (
	// ErrEmptyQuery means the query has no searchable text.
	ErrEmptyQuery = errors.New("query is empty")
	// ErrInvalid means a request field is out of range; the message names it.
	ErrInvalid = errors.New("invalid request")
)

// Options configures a Searcher. The zero value means the defaults.
// DefaultMaxTopK is Options.MaxTopK's default.
const DefaultMaxTopK = 100

// DefaultMaxQueryRunes is Options.MaxQueryRunes's default.
const DefaultMaxQueryRunes = 8000

type Options struct {
	// MaxTopK caps Request.TopK (default DefaultMaxTopK).
	MaxTopK int
	// DefaultTopK is used when Request.TopK is 0 (default 10).
	DefaultTopK int
	// MaxQueryRunes caps the query length (default 8000 characters: a pasted
	// message; weighting keeps its 64 most telling terms, see capTerms).
	MaxQueryRunes int
	// MaxContextRunes bounds the section text returned with WithContext (default 2000).
	MaxContextRunes int
	// Reranker, if set, reorders the top 20 hits (see Request.Rerank).
	Reranker Reranker
}

func (o Options) withDefaults() Options {
	if o.MaxTopK <= 0 {
		o.MaxTopK = DefaultMaxTopK
	}
	if o.DefaultTopK <= 0 {
		o.DefaultTopK = 10
	}
	o.DefaultTopK = min(o.DefaultTopK, o.MaxTopK) // the default page obeys the cap too
	if o.MaxQueryRunes <= 0 {
		o.MaxQueryRunes = DefaultMaxQueryRunes
	}
	if o.MaxContextRunes <= 0 {
		o.MaxContextRunes = 2000
	}
	return o
}

// Searcher runs queries against a store. It is safe for concurrent use.
type Searcher struct {
	store *store.Store
	an    *analysis.Analyzer
	opts  Options
}

// New returns a Searcher over st.
func New(st *store.Store, opts Options) *Searcher {
	return &Searcher{store: st, an: st.Analyzer(), opts: opts.withDefaults()}
}

// Options returns the effective options (defaults filled in).
func (s *Searcher) Options() Options { return s.opts }

// Request is one search.
type Request struct {
	Collection string
	Query      string
	// TopK is the number of hits wanted; 0 means Options.DefaultTopK.
	TopK   int
	Filter index.Filter
	// WithContext also returns the text of each hit's enclosing section.
	WithContext bool
	// Debug fills Result.Debug.
	Debug bool
	// Rerank says whether the reranker may reorder the hits.
	Rerank RerankMode
	// RerankTimeout, if set, bounds the reranker for this request (it never
	// goes beyond ctx's deadline).
	RerankTimeout time.Duration
	// Mode chooses the candidate sources (default: fused).
	Mode Mode
	// Weights, if set, override the collection's fusion weights.
	Weights *index.FusionWeights

	weights index.FusionWeights // resolved by Search
}

// Span is a byte range in a hit's Text.
type Span struct{ Start, End int }

// Hit is one retrieved chunk.
type Hit struct {
	ChunkID     string
	DocID       string
	Title       string
	HeadingPath []string
	Text        string
	// Highlights are the byte ranges of matched terms in Text, sorted, disjoint.
	Highlights []Span
	Score      float64
	// Matched are the query terms found in the chunk.
	Matched []string
	// Context is the enclosing section's text (bounded), when asked for.
	Context string
	// Question is the chunk's question-bank item, or nil for a passage of
	// text. It is shared with the chunk read from the store: do not modify.
	Question *index.Question
	// Evidence says which sources found the hit and how.
	Evidence Evidence
}

// Stage is the time one step of the search took.
type Stage struct {
	Name string
	Took time.Duration
}

// Debug explains a search.
type Debug struct {
	Terms      []index.QueryTerm
	Postings   int
	Candidates int
	Stages     []Stage
}

// Result is the answer to a Request.
type Result struct {
	Hits  []Hit
	Took  time.Duration
	Debug *Debug
	// Rerank says what the reranker did; never nil after a successful Search.
	Rerank *RerankInfo
}

// FieldError is a request the searcher refused, naming the field (as the
// API calls it). It matches ErrInvalid.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))}
}

// Validate checks a request and fills TopK's default.
func (s *Searcher) Validate(req *Request) error {
	switch {
	case req.Collection == "":
		return invalid("collection", "collection is empty")
	case !utf8.ValidString(req.Query):
		return invalid("query", "query is not valid UTF-8")
	case strings.TrimSpace(req.Query) == "":
		return &FieldError{Field: "query", Err: ErrEmptyQuery}
	case req.TopK < 0:
		return invalid("top_k", "top_k %d is negative", req.TopK)
	case req.TopK > s.opts.MaxTopK:
		return invalid("top_k", "top_k %d is over the limit of %d", req.TopK, s.opts.MaxTopK)
	}
	if n := utf8.RuneCountInString(req.Query); n > s.opts.MaxQueryRunes {
		return invalid("query", "query is %d characters, over the limit of %d", n, s.opts.MaxQueryRunes)
	}
	for i, p := range req.Filter.HeadingPrefix {
		if strings.TrimSpace(p) == "" {
			return invalid(fmt.Sprintf("filter.heading_prefix[%d]", i), "filter heading_prefix[%d] is empty", i)
		}
	}
	if req.Mode < ModeFused || req.Mode > ModeGraph {
		return invalid("mode", "mode %d is unknown", int(req.Mode))
	}
	if req.Weights != nil {
		if err := req.Weights.Validate(); err != nil {
			return &FieldError{Field: "weights", Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
		}
	}
	if req.TopK == 0 {
		req.TopK = s.opts.DefaultTopK
	}
	return nil
}

// Search runs one request.
func (s *Searcher) Search(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	if err := s.Validate(&req); err != nil {
		return Result{}, err
	}
	var dbg Debug
	stage := func(name string, since time.Time) time.Time {
		now := time.Now()
		dbg.Stages = append(dbg.Stages, Stage{name, now.Sub(since)})
		return now
	}
	t := start
	terms := s.QueryTermsIn(req.Collection, req.Query)
	if len(terms) == 0 {
		return Result{}, fmt.Errorf("%w: no searchable words in %q", ErrEmptyQuery, analysis.TruncateRunes(req.Query, 40))
	}
	t = stage("analyse", t)
	k := req.TopK
	reranking := req.Rerank != RerankOff && (s.opts.Reranker != nil || req.Rerank == RerankRequired)
	if reranking {
		k = max(k, rerankPool) // the reranker sees the top 20 whatever top_k is
	}
	if req.Weights != nil {
		req.weights = *req.Weights
	} else {
		w, err := s.store.FusionWeights(req.Collection)
		if err != nil {
			return Result{}, err
		}
		req.weights = w
	}
	hits, evidence, st, err := s.candidates(ctx, &req, terms, k, func(name string) { t = stage(name, t) })
	if err != nil {
		if errors.Is(err, index.ErrInvalid) {
			return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return Result{}, err
	}
	out, err := s.hydrate(ctx, req, terms, hits, evidence)
	if err != nil {
		return Result{}, err
	}
	t = stage("fetch", t)
	var info *RerankInfo
	if reranking {
		if out, info, err = s.rerankHits(ctx, req, out); err != nil {
			return Result{}, err
		}
		stage("rerank", t)
	} else {
		info = &RerankInfo{Status: rerank.StatusOff}
	}
	if len(out) > req.TopK {
		out = out[:req.TopK]
	}
	res := Result{Hits: out, Took: time.Since(start), Rerank: info}
	if req.Debug {
		dbg.Terms, dbg.Postings, dbg.Candidates = terms, st.Postings, st.Candidates
		res.Debug = &dbg
	}
	return res, nil
}

// hydrate loads chunk texts and titles and computes highlights and context;
// ev[i] is the evidence of hits[i].
func (s *Searcher) hydrate(ctx context.Context, req Request, terms []index.QueryTerm, hits []index.Hit, ev []Evidence) ([]Hit, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	all := hits
	hits, chunks, norms, err := s.store.HitChunks(ctx, req.Collection, hits)
	if err != nil {
		return nil, err
	}
	// Words other than function words are evidence by themselves; bigrams
	// and function words are not. A text can be both a word and a bigram
	// ("价格"), and Matched does not say which of the two matched, so a text
	// counts as a word when the query has it as a word (it occurs in the chunk
	// either way).
	word := map[string]bool{}
	from := map[string]string{} // a learned expansion → the query word it stands for
	for _, t := range terms {
		if !t.Gram && t.Weight > weightFunction {
			word[t.Term] = true
		}
		if !t.Gram && t.From != "" {
			from[t.Term] = t.From
		}
	}
	docs := map[string]index.Document{} // for section context
	out := make([]Hit, len(hits))
	n := 0
	for _, h := range hits {
		n += len(h.Matched)
	}
	// All hits' evidence lists, one after the other.
	matched := make([]string, 0, 2*n)
	j := 0 // HitChunks keeps hits in order, dropping those gone: find each one's evidence
	for i, h := range hits {
		for all[j].ChunkID != h.ChunkID {
			j++
		}
		c := chunks[i]
		// Evidence: the words that matched; bigrams only when no word did.
		// A text is listed once.
		start := len(matched)
		for _, m := range h.Matched {
			if !slices.Contains(matched[start:], m) {
				matched = append(matched, m)
			}
		}
		all := matched[start:len(matched):len(matched)]
		start = len(matched)
		for _, m := range all {
			if word[m] {
				matched = append(matched, m)
			}
		}
		h.Matched = nil
		switch strong := matched[start:len(matched):len(matched)]; {
		case len(strong) > 0:
			h.Matched = strong
		case len(all) > 0:
			h.Matched = all
		}
		out[i] = Hit{
			ChunkID: h.ChunkID, DocID: c.DocID, Title: c.DocTitle, HeadingPath: c.HeadingPath,
			Text: c.Text, Score: h.Score, Matched: h.Matched,
			Highlights: highlights(norms[i], c.Text, h.Matched), Question: c.Question,
			Evidence: ev[j],
		}
		for _, m := range out[i].Matched {
			if f, ok := from[m]; ok {
				out[i].Evidence.Expanded = append(out[i].Evidence.Expanded, m+" ← "+f)
			}
		}
		if req.WithContext {
			out[i].Context, err = s.sectionText(ctx, req.Collection, *c, docs)
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Highlights returns the byte ranges in text of the terms in matched.
func (s *Searcher) Highlights(text string, matched []string) []Span {
	if len(matched) == 0 {
		return nil
	}
	return highlights(s.an.Normalize(text), text, matched)
}

// highlights finds the matched terms in n, the normalisation of text, and maps
// them back to byte ranges of text: much cheaper than segmenting every hit
// again.
func highlights(n analysis.Normalized, text string, matched []string) []Span {
	if len(matched) == 0 {
		return nil
	}
	var spans []Span
	for _, m := range matched {
		if m == "" {
			continue
		}
		for off := 0; ; {
			i := strings.Index(n.Text[off:], m)
			if i < 0 {
				break
			}
			start, end := off+i, off+i+len(m)
			// The span ends after the original character that produced the
			// term's last byte: a character that normalises to several
			// ("㍿" → "株式会社") is highlighted whole, never split or empty.
			last := n.Orig(end - 1)
			_, size := utf8.DecodeRuneInString(text[last:])
			spans = append(spans, Span{n.Orig(start), last + size})
			off = end
		}
	}
	slices.SortFunc(spans, func(a, b Span) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	merged := spans[:0]
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, sp.End)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// sectionText returns the text of the chunks that share c's heading path,
// bounded to MaxContextRunes around c.
func (s *Searcher) sectionText(ctx context.Context, collection string, c index.Chunk, docs map[string]index.Document) (string, error) {
	d, ok := docs[c.DocID] // hits often share a document: read it once per request
	var err error
	if !ok {
		d, err = s.store.Document(ctx, collection, c.DocID)
		if err == nil {
			docs[c.DocID] = d
		}
	}
	if errors.Is(err, index.ErrNotFound) {
		// Deleted since its chunk was read.
		return analysis.TruncateRunes(c.Text, s.opts.MaxContextRunes), nil
	}
	if err != nil {
		return "", err
	}
	var parts []string
	at := -1
	for _, dc := range d.Chunks {
		if slices.Equal(dc.HeadingPath, c.HeadingPath) {
			if dc.ID == c.ID {
				at = len(parts)
			}
			parts = append(parts, dc.Text)
		}
	}
	if at < 0 {
		// The document was rewritten after the chunk was read: the hit's own
		// text is all the context there is.
		return analysis.TruncateRunes(c.Text, s.opts.MaxContextRunes), nil
	}
	// Grow a window of whole chunks around the hit until the bound; each
	// added chunk costs its length plus the "\n" that joins it.
	lo, hi := at, at+1
	n := utf8.RuneCountInString(parts[at])
	for {
		grew := false
		if lo > 0 && n+1+utf8.RuneCountInString(parts[lo-1]) <= s.opts.MaxContextRunes {
			lo--
			n += 1 + utf8.RuneCountInString(parts[lo])
			grew = true
		}
		if hi < len(parts) && n+1+utf8.RuneCountInString(parts[hi]) <= s.opts.MaxContextRunes {
			n += 1 + utf8.RuneCountInString(parts[hi])
			hi++
			grew = true
		}
		if !grew {
			break
		}
	}
	return analysis.TruncateRunes(strings.Join(parts[lo:hi], "\n"), s.opts.MaxContextRunes), nil
}
