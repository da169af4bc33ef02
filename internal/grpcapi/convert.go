package grpcapi

import (
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// Conversions between proto messages and the service's Go types. They do
// not validate, except where a proto value has no Go counterpart (an unknown
// enum number, a malformed Duration).

func collectionToProto(c store.CollectionInfo) *retrievalv1.Collection {
	return &retrievalv1.Collection{
		Name: c.Name, Description: c.Description, K1: &c.K1, B: &c.B,
		FieldWeights:  &retrievalv1.FieldWeights{Title: c.Weights.Title, Heading: c.Weights.Heading, Body: c.Weights.Body},
		DocumentCount: c.Stats.Docs, ChunkCount: c.Stats.Chunks, MetadataKeys: c.MetadataKeys,
		Fusion: FusionToProto(c.FusionWeights()),
	}
}

func fusionFromProto(w *retrievalv1.FusionWeights) index.FusionWeights {
	learned := index.DefaultFusion.Learned
	if w != nil && w.Learned != nil {
		learned = w.GetLearned()
	}
	return index.FusionWeights{BM25: w.GetBm25(), Outline: w.GetOutline(), Graph: w.GetGraph(), Learned: learned}
}

// FusionToProto converts fusion weights.
func FusionToProto(w index.FusionWeights) *retrievalv1.FusionWeights {
	return &retrievalv1.FusionWeights{Bm25: w.BM25, Outline: w.Outline, Graph: w.Graph, Learned: &w.Learned}
}

// formats maps the API's document formats to ingest's; an unknown or
// unspecified format is text.
var formats = map[retrievalv1.DocumentFormat]ingest.Format{
	retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TEXT:       ingest.Text,
	retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN:   ingest.Markdown,
	retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TRANSCRIPT: ingest.Transcript,
}

// inputsFromProto converts documents to ingest inputs (the service
// validates them).
func inputsFromProto(pds []*retrievalv1.Document) []ingest.Input {
	ins := make([]ingest.Input, len(pds))
	for i, pd := range pds {
		ins[i] = ingest.Input{
			ID: pd.GetId(), Title: pd.GetTitle(), Source: pd.GetSource(), Format: formats[pd.GetFormat()],
			Content: pd.GetContent(), Metadata: pd.GetMetadata(), Version: pd.GetVersion(),
		}
		for _, pq := range pd.GetQuestions() {
			ins[i].Questions = append(ins[i].Questions, *QuestionFromProto(pq))
		}
	}
	return ins
}

// inputToProto converts an ingest input to a document.
func inputToProto(in ingest.Input) *retrievalv1.Document {
	f := retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TEXT
	for pf, inf := range formats {
		if inf == in.Format {
			f = pf
		}
	}
	pd := &retrievalv1.Document{
		Id: in.ID, Title: in.Title, Source: in.Source, Content: in.Content, Format: f, Metadata: in.Metadata, Version: in.Version,
	}
	for _, q := range in.Questions {
		pd.Questions = append(pd.Questions, QuestionToProto(&q))
	}
	return pd
}

// QuestionFromProto converts a question-bank item; nil stays nil.
func QuestionFromProto(pq *retrievalv1.QuestionItem) *index.Question {
	if pq == nil {
		return nil
	}
	q := &index.Question{
		Stem: pq.GetStem(), Answer: pq.GetAnswer(), Analysis: pq.GetAnalysis(),
		Knowledge: pq.GetKnowledgePoint(), Difficulty: pq.GetDifficulty(), Type: pq.GetType(),
	}
	for _, po := range pq.GetOptions() {
		q.Options = append(q.Options, index.Option{Label: po.GetLabel(), Text: po.GetText()})
	}
	return q
}

// QuestionToProto converts a question-bank item; nil stays nil.
func QuestionToProto(q *index.Question) *retrievalv1.QuestionItem {
	if q == nil {
		return nil
	}
	pq := &retrievalv1.QuestionItem{
		Stem: q.Stem, Answer: q.Answer, Analysis: q.Analysis,
		KnowledgePoint: q.Knowledge, Difficulty: q.Difficulty, Type: q.Type,
	}
	for _, o := range q.Options {
		pq.Options = append(pq.Options, &retrievalv1.QuestionOption{Label: o.Label, Text: o.Text})
	}
	return pq
}

var outcomeToProto = map[index.Outcome]retrievalv1.UpsertOutcome{
	index.Added:     retrievalv1.UpsertOutcome_UPSERT_OUTCOME_ADDED,
	index.Updated:   retrievalv1.UpsertOutcome_UPSERT_OUTCOME_UPDATED,
	index.Unchanged: retrievalv1.UpsertOutcome_UPSERT_OUTCOME_UNCHANGED,
	index.Stale:     retrievalv1.UpsertOutcome_UPSERT_OUTCOME_STALE,
}

func docInfoToProto(d index.Document) *retrievalv1.DocumentInfo {
	return &retrievalv1.DocumentInfo{Id: d.ID, Title: d.Title, Source: d.Source, Metadata: d.Metadata, Version: d.Version, ContentHash: d.Hash, ChunkCount: int32(len(d.Chunks))}
}

func outlineToProto(nodes []*service.OutlineNode) []*retrievalv1.OutlineNode {
	var out []*retrievalv1.OutlineNode
	for _, n := range nodes {
		out = append(out, &retrievalv1.OutlineNode{Title: n.Title, HeadingPath: n.HeadingPath, ChunkIds: n.ChunkIDs, Children: outlineToProto(n.Children)})
	}
	return out
}

// searchModes maps the API's search modes to the retriever's.
var searchModes = map[retrievalv1.SearchMode]retrieve.Mode{
	retrievalv1.SearchMode_SEARCH_MODE_UNSPECIFIED: retrieve.ModeFused,
	retrievalv1.SearchMode_SEARCH_MODE_FUSED:       retrieve.ModeFused,
	retrievalv1.SearchMode_SEARCH_MODE_BM25:        retrieve.ModeBM25,
	retrievalv1.SearchMode_SEARCH_MODE_OUTLINE:     retrieve.ModeOutline,
	retrievalv1.SearchMode_SEARCH_MODE_GRAPH:       retrieve.ModeGraph,
}

// SearchModeToProto converts a search mode.
func SearchModeToProto(m retrieve.Mode) retrievalv1.SearchMode {
	for pm, rm := range searchModes {
		if rm == m && pm != retrievalv1.SearchMode_SEARCH_MODE_UNSPECIFIED {
			return pm
		}
	}
	return retrievalv1.SearchMode_SEARCH_MODE_UNSPECIFIED
}

// rerankModes maps the API's rerank modes to the retriever's.
var rerankModes = map[retrievalv1.RerankMode]retrieve.RerankMode{
	retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED: retrieve.RerankAuto,
	retrievalv1.RerankMode_RERANK_MODE_OFF:         retrieve.RerankOff,
	retrievalv1.RerankMode_RERANK_MODE_REQUIRED:    retrieve.RerankRequired,
}

// RerankModeToProto converts a rerank mode.
func RerankModeToProto(m retrieve.RerankMode) retrievalv1.RerankMode {
	for pm, rm := range rerankModes {
		if rm == m {
			return pm
		}
	}
	return retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED
}

// searchRequestFromProto converts a search request; the service validates
// the rest.
func searchRequestFromProto(req *retrievalv1.SearchRequest) (retrieve.Request, error) {
	var rt time.Duration
	if d := req.GetRerankTimeout(); d != nil {
		if err := d.CheckValid(); err != nil {
			return retrieve.Request{}, service.Invalid("rerank_timeout", "rerank_timeout %v: want 0 to 60s", d.AsDuration())
		}
		rt = d.AsDuration()
	}
	rmode, ok := rerankModes[req.GetRerank()]
	if !ok {
		return retrieve.Request{}, service.Invalid("rerank", "rerank %d is not a RerankMode", req.GetRerank())
	}
	smode, ok := searchModes[req.GetMode()]
	if !ok {
		return retrieve.Request{}, service.Invalid("mode", "mode %d is not a SearchMode", req.GetMode())
	}
	var weights *index.FusionWeights
	if w := req.GetFusion(); w != nil {
		fw := fusionFromProto(w)
		weights = &fw
	}
	f := req.GetFilter()
	return retrieve.Request{
		Rerank: rmode, RerankTimeout: rt, Mode: smode, Weights: weights,
		Collection: req.GetCollection(), Query: req.GetQuery(), TopK: int(req.GetTopK()),
		Filter:      index.Filter{DocIDs: f.GetDocumentIds(), Metadata: f.GetMetadata(), HeadingPrefix: f.GetHeadingPrefix()},
		WithContext: req.GetWithContext(), Debug: req.GetDebug(),
	}, nil
}

// SearchResultToProto converts a search result.
func SearchResultToProto(res retrieve.Result) *retrievalv1.SearchResponse {
	resp := &retrievalv1.SearchResponse{Took: durationpb.New(res.Took), Rerank: rerankInfoToProto(res.Rerank), Debug: debugToProto(res.Debug)}
	for _, h := range res.Hits {
		ph := &retrievalv1.SearchHit{
			ChunkId: h.ChunkID, DocumentId: h.DocID, DocumentTitle: h.Title, HeadingPath: h.HeadingPath,
			Text: h.Text, Score: h.Score, MatchedTerms: h.Matched, Context: h.Context,
			Question: QuestionToProto(h.Question), Evidence: evidenceToProto(h.Evidence),
		}
		ph.Highlights = highlightsToProto(h.Text, h.Highlights)
		resp.Hits = append(resp.Hits, ph)
	}
	return resp
}

// highlightsToProto gives each byte span its code-point offsets too,
// counting through text once (spans come in order of start).
func highlightsToProto(text string, spans []retrieve.Span) []*retrievalv1.Highlight {
	out := make([]*retrievalv1.Highlight, 0, len(spans))
	b, chars := 0, 0 // chars is the number of code points in text[:b]
	charAt := func(off int) int32 {
		if off < b {
			b, chars = 0, 0 // out of order: count again from the start
		}
		off = min(off, len(text))
		chars += utf8.RuneCountInString(text[b:off])
		b = off
		return int32(chars)
	}
	for _, sp := range spans {
		h := &retrievalv1.Highlight{Start: int32(sp.Start), End: int32(sp.End)}
		h.StartChar = charAt(sp.Start)
		h.EndChar = charAt(sp.End)
		out = append(out, h)
	}
	return out
}

func rerankInfoToProto(ri *retrieve.RerankInfo) *retrievalv1.RerankInfo {
	if ri == nil {
		return nil
	}
	return &retrievalv1.RerankInfo{
		Status: string(ri.Status), Provider: ri.Provider, Took: durationpb.New(ri.Took), TopChanged: ri.TopChanged, Cost: ri.Cost, Cached: ri.Cached, Partial: ri.Partial,
		PromptTokens: int32(ri.Usage.Prompt), CompletionTokens: int32(ri.Usage.Completion), ReasoningTokens: int32(ri.Usage.Reasoning),
	}
}

func debugToProto(d *retrieve.Debug) *retrievalv1.SearchDebug {
	if d == nil {
		return nil
	}
	pd := &retrievalv1.SearchDebug{Postings: int64(d.Postings), Candidates: int64(d.Candidates)}
	for _, t := range d.Terms {
		term := t.Term
		if t.Gram {
			term = "bigram:" + term
		}
		pd.Terms = append(pd.Terms, &retrievalv1.QueryTerm{Term: term, Weight: t.Weight})
	}
	for _, st := range d.Stages {
		pd.Stages = append(pd.Stages, &retrievalv1.StageTiming{Name: st.Name, Took: durationpb.New(st.Took)})
	}
	return pd
}

func evidenceToProto(e retrieve.Evidence) *retrievalv1.Evidence {
	return &retrievalv1.Evidence{
		Sources: e.Sources, FusedRank: int32(e.FusedRank), Bm25Rank: int32(e.BM25Rank), OutlineRank: int32(e.OutlineRank), GraphRank: int32(e.GraphRank),
		Bm25Score: e.BM25, OutlineScore: e.Outline, GraphScore: e.Graph, OutlinePath: e.OutlinePath, GraphPath: e.GraphPath,
		LearnedRank: int32(e.LearnedRank), LearnedScore: e.Learned, LearnedQuestion: e.LearnedQuestion, LearnedGenerated: e.LearnedGenerated, Expanded: e.Expanded,
	}
}

// LexiconFromProto converts a lexicon (the store validates it and names the
// bad entry).
func LexiconFromProto(l *retrievalv1.Lexicon) index.Lexicon {
	out := index.Lexicon{Terms: l.GetTerms(), StopWords: l.GetStopWords()}
	for _, s := range l.GetSynonyms() {
		out.Synonyms = append(out.Synonyms, index.Synonym{Term: s.GetTerm(), Alternatives: s.GetAlternatives()})
	}
	return out
}

// LexiconToProto converts a lexicon.
func LexiconToProto(l index.Lexicon) *retrievalv1.Lexicon {
	out := &retrievalv1.Lexicon{Terms: l.Terms, StopWords: l.StopWords}
	for _, s := range l.Synonyms {
		out.Synonyms = append(out.Synonyms, &retrievalv1.Synonym{Term: s.Term, Alternatives: s.Alternatives})
	}
	return out
}

// KeyToProto converts an API key's description (never a secret or its hash).
func KeyToProto(k *index.APIKey) *retrievalv1.ApiKey {
	out := &retrievalv1.ApiKey{Id: k.ID, Name: k.Name, Role: k.Role, Collections: k.Collections, CreateTime: k.Created.UTC().Format(time.RFC3339)}
	if k.Revoked != nil {
		out.RevokeTime = k.Revoked.UTC().Format(time.RFC3339)
	}
	return out
}

// FileResultsToProto converts an upload's results.
func FileResultsToProto(res []service.FileResult) []*retrievalv1.FileResult {
	out := make([]*retrievalv1.FileResult, 0, len(res))
	for _, r := range res {
		pr := &retrievalv1.FileResult{Path: r.Path, Error: r.Error, Skipped: r.Skipped}
		for _, d := range r.Documents {
			pr.Documents = append(pr.Documents, &retrievalv1.UpsertResult{DocumentId: d.DocumentID, Outcome: outcomeToProto[d.Outcome], ChunkCount: int32(d.Chunks)})
		}
		out = append(out, pr)
	}
	return out
}

// LearnedFromProto converts a learned model's description.
func LearnedFromProto(m *retrievalv1.LearnedModel) store.LearnInfo {
	var i store.LearnInfo
	i.Pairs, i.Questions, i.Words, i.Generated = int(m.GetPairs()), int(m.GetQuestions()), int(m.GetWords()), int(m.GetGenerated())
	i.Reliability, i.Trust = m.GetReliability(), m.GetTrust()
	i.Building, i.BuildError = m.GetBuilding(), m.GetBuildError()
	return i
}

// learnedToProto converts a learned model's description.
func learnedToProto(i store.LearnInfo) *retrievalv1.LearnedModel {
	return &retrievalv1.LearnedModel{Pairs: int64(i.Pairs), Questions: int64(i.Questions), Words: int64(i.Words), Building: i.Building, BuildError: i.BuildError, Reliability: i.Reliability, Trust: i.Trust, Generated: int64(i.Generated)}
}
