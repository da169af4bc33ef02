package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/retrieve"
)

// Request limits, enforced in one place (validate*) with INVALID_ARGUMENT.
const (
	maxRecvMsgSize   = 64 << 20
	maxDocsPerUpsert = 1000
	maxPageSize      = 1000
	defaultPageSize  = 100
	maxFilterValues  = 1000
)

// server adapts the domain packages to the gRPC API. Handlers validate,
// convert, call the domain, convert back, and map errors through toStatus.
type server struct {
	retrievalv1.UnimplementedRetrievalServiceServer
	store  *store.Store
	search *retrieve.Searcher
	chunk  ingest.ChunkOptions
	logger *slog.Logger
	// rerankMetrics is set by newGRPCServer.
	rerankMetrics *rerankMetrics
}

// rerankMetrics count what the reranker did, by provider and status.
type rerankMetrics struct {
	calls      *prometheus.CounterVec   // provider, status
	tokens     *prometheus.CounterVec   // provider, kind (prompt, completion, reasoning, cached)
	seconds    *prometheus.HistogramVec // provider
	topChanged *prometheus.CounterVec   // provider
	cost       *prometheus.CounterVec   // provider
}

func newRerankMetrics(reg prometheus.Registerer) (*rerankMetrics, error) {
	m := &rerankMetrics{
		calls:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_total", Help: "Rerank attempts by provider and status (ok, timeout, rate_limited, refused, ...)."}, []string{"provider", "status"}),
		tokens:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_tokens_total", Help: "Tokens the rerank providers reported, by kind."}, []string{"provider", "kind"}),
		seconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zhisou_rerank_seconds", Help: "Rerank call time.", Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.2, 1.5, 2, 3, 5}}, []string{"provider"}),
		topChanged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_top_changed_total", Help: "Reranks that changed the first hit."}, []string{"provider"}),
		cost:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_cost_total", Help: "Estimated rerank cost from the configured prices."}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.tokens, m.seconds, m.topChanged, m.cost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register rerank metrics: %w", err)
		}
	}
	return m, nil
}

func (m *rerankMetrics) observe(ri *retrieve.RerankInfo) {
	if m == nil || ri == nil || ri.Status == "off" {
		return
	}
	p := ri.Provider
	m.calls.WithLabelValues(p, ri.Status).Inc()
	for kind, n := range map[string]int{"prompt": ri.Usage.Prompt, "completion": ri.Usage.Completion, "reasoning": ri.Usage.Reasoning, "cached": ri.Usage.Cached} {
		if n > 0 {
			m.tokens.WithLabelValues(p, kind).Add(float64(n))
		}
	}
	if ri.Took > 0 {
		m.seconds.WithLabelValues(p).Observe(ri.Took.Seconds())
	}
	if ri.TopChanged {
		m.topChanged.WithLabelValues(p).Inc()
	}
	if ri.Cost > 0 {
		m.cost.WithLabelValues(p).Add(ri.Cost)
	}
}

// newGRPCServer builds the whole gRPC server: interceptors (metrics, logging,
// then recovery innermost so a panic becomes INTERNAL and is still logged and
// counted), message size limit, keepalive, health and reflection. The metrics
// are registered on reg.
func newGRPCServer(logger *slog.Logger, reg prometheus.Registerer, svc *server, hs *health.Server) (*grpc.Server, error) {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
	))
	if err := reg.Register(metrics); err != nil {
		return nil, fmt.Errorf("register gRPC metrics: %w", err)
	}
	rm, err := newRerankMetrics(reg)
	if err != nil {
		return nil, err
	}
	svc.rerankMetrics = rm
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(func(c codes.Code) logging.Level {
		switch c {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Canceled:
			return logging.LevelDebug
		case codes.Internal, codes.Unknown, codes.DataLoss:
			return logging.LevelError
		}
		return logging.LevelWarn
	})}
	recoverOpt := recovery.WithRecoveryHandler(func(p any) error {
		logger.Error("panic in handler", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "internal error")
	})
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(
			metrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(interceptorLogger(logger), logOpts...),
			recovery.UnaryServerInterceptor(recoverOpt),
		),
		grpc.ChainStreamInterceptor(
			metrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(interceptorLogger(logger), logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
		),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	)
	retrievalv1.RegisterRetrievalServiceServer(s, svc)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	metrics.InitializeMetrics(s)
	return s, nil
}

func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// errInvalid marks request validation failures in this file.
var errInvalid = errors.New("invalid argument")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, a...))
}

// toStatus maps domain errors to gRPC status codes, in one place. Unknown
// errors are logged and returned as INTERNAL without detail.
func (s *server) toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, errInvalid), errors.Is(err, retrieve.ErrInvalid), errors.Is(err, retrieve.ErrEmptyQuery),
		errors.Is(err, index.ErrInvalid), errors.Is(err, ingest.ErrEmpty):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, index.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, index.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, index.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, retrieve.ErrRerankUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	}
	s.logger.Error("internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

func checkUTF8(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid("%s is not valid UTF-8", field)
	}
	return nil
}

func checkCollection(field, name string) error {
	if name == "" {
		return invalid("%s is empty", field)
	}
	return checkUTF8(field, name)
}

// CreateCollection creates a collection with defaults for unset parameters.
func (s *server) CreateCollection(ctx context.Context, req *retrievalv1.CreateCollectionRequest) (*retrievalv1.CreateCollectionResponse, error) {
	pc := req.GetCollection()
	if pc == nil {
		return nil, s.toStatus(invalid("collection is required"))
	}
	if err := checkCollection("collection.name", pc.GetName()); err != nil {
		return nil, s.toStatus(err)
	}
	if err := checkUTF8("collection.description", pc.GetDescription()); err != nil {
		return nil, s.toStatus(err)
	}
	cfg := index.DefaultCollection(pc.GetName())
	cfg.Description = pc.GetDescription()
	if pc.K1 != nil {
		cfg.K1 = pc.GetK1()
	}
	if pc.B != nil {
		cfg.B = pc.GetB()
	}
	if w := pc.GetFieldWeights(); w != nil {
		cfg.Weights = index.FieldWeights{Title: w.GetTitle(), Heading: w.GetHeading(), Body: w.GetBody()}
	}
	if w := pc.GetFusion(); w != nil {
		cfg.Fusion = fusionFromProto(w)
		if err := cfg.Fusion.Validate(); err != nil {
			return nil, s.toStatus(fmt.Errorf("collection.fusion: %w", err))
		}
	}
	if err := s.store.CreateCollection(ctx, cfg); err != nil {
		return nil, s.toStatus(err)
	}
	info, err := s.store.Collection(cfg.Name)
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &retrievalv1.CreateCollectionResponse{Collection: collectionToProto(info)}, nil
}

func collectionToProto(c store.CollectionInfo) *retrievalv1.Collection {
	return &retrievalv1.Collection{
		Name: c.Name, Description: c.Description, K1: &c.K1, B: &c.B,
		FieldWeights:  &retrievalv1.FieldWeights{Title: c.Weights.Title, Heading: c.Weights.Heading, Body: c.Weights.Body},
		DocumentCount: c.Stats.Docs, ChunkCount: c.Stats.Chunks, MetadataKeys: c.MetadataKeys,
		Fusion: fusionToProto(c.FusionWeights()),
	}
}

func fusionFromProto(w *retrievalv1.FusionWeights) index.FusionWeights {
	return index.FusionWeights{BM25: w.GetBm25(), Outline: w.GetOutline(), Graph: w.GetGraph()}
}

func fusionToProto(w index.FusionWeights) *retrievalv1.FusionWeights {
	return &retrievalv1.FusionWeights{Bm25: w.BM25, Outline: w.Outline, Graph: w.Graph}
}

// searchModes maps the API's search modes to the retriever's.
var searchModes = map[retrievalv1.SearchMode]retrieve.Mode{
	retrievalv1.SearchMode_SEARCH_MODE_UNSPECIFIED: retrieve.ModeFused,
	retrievalv1.SearchMode_SEARCH_MODE_FUSED:       retrieve.ModeFused,
	retrievalv1.SearchMode_SEARCH_MODE_BM25:        retrieve.ModeBM25,
	retrievalv1.SearchMode_SEARCH_MODE_OUTLINE:     retrieve.ModeOutline,
	retrievalv1.SearchMode_SEARCH_MODE_GRAPH:       retrieve.ModeGraph,
}

// ListCollections pages through collections by name.
func (s *server) ListCollections(ctx context.Context, req *retrievalv1.ListCollectionsRequest) (*retrievalv1.ListCollectionsResponse, error) {
	size, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &retrievalv1.ListCollectionsResponse{}
	for _, c := range s.store.Collections() {
		if c.Name <= after && after != "" {
			continue
		}
		if len(resp.Collections) == size {
			resp.NextPageToken = encodePageToken(resp.Collections[size-1].GetName())
			break
		}
		resp.Collections = append(resp.Collections, collectionToProto(c))
	}
	return resp, nil
}

// GetCollection returns one collection.
func (s *server) GetCollection(ctx context.Context, req *retrievalv1.GetCollectionRequest) (*retrievalv1.GetCollectionResponse, error) {
	if err := checkCollection("name", req.GetName()); err != nil {
		return nil, s.toStatus(err)
	}
	info, err := s.store.Collection(req.GetName())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &retrievalv1.GetCollectionResponse{Collection: collectionToProto(info)}, nil
}

// DeleteCollection deletes a collection.
func (s *server) DeleteCollection(ctx context.Context, req *retrievalv1.DeleteCollectionRequest) (*retrievalv1.DeleteCollectionResponse, error) {
	if err := checkCollection("name", req.GetName()); err != nil {
		return nil, s.toStatus(err)
	}
	if err := s.store.DeleteCollection(ctx, req.GetName()); err != nil {
		return nil, s.toStatus(err)
	}
	return &retrievalv1.DeleteCollectionResponse{}, nil
}

// buildDocuments validates and parses proto documents; field names in errors
// are prefixed with prefix (e.g. "documents").
func (s *server) buildDocuments(prefix string, pds []*retrievalv1.Document) ([]index.Document, error) {
	if len(pds) == 0 {
		return nil, invalid("%s is empty", prefix)
	}
	if len(pds) > maxDocsPerUpsert {
		return nil, invalid("%s has %d documents, over the limit of %d per request", prefix, len(pds), maxDocsPerUpsert)
	}
	docs := make([]index.Document, len(pds))
	seen := map[string]int{}
	for i, pd := range pds {
		f := fmt.Sprintf("%s[%d]", prefix, i)
		if pd.GetId() == "" {
			return nil, invalid("%s.id is empty", f)
		}
		if j, dup := seen[pd.GetId()]; dup {
			return nil, invalid("%s.id %q repeats %s[%d].id", f, pd.GetId(), prefix, j)
		}
		seen[pd.GetId()] = i
		for name, v := range map[string]string{"id": pd.GetId(), "title": pd.GetTitle(), "source": pd.GetSource(), "content": pd.GetContent()} {
			if err := checkUTF8(f+"."+name, v); err != nil {
				return nil, err
			}
		}
		for k, v := range pd.GetMetadata() {
			if err := errors.Join(checkUTF8(f+".metadata key", k), checkUTF8(f+".metadata["+k+"]", v)); err != nil {
				return nil, err
			}
		}
		format := ingest.Text
		switch pd.GetFormat() {
		case retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN:
			format = ingest.Markdown
		case retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TRANSCRIPT:
			format = ingest.Transcript
		}
		questions, err := questionsFromProto(f, pd.GetQuestions())
		if err != nil {
			return nil, err
		}
		d, err := ingest.Build(ingest.Input{
			ID: pd.GetId(), Title: pd.GetTitle(), Source: pd.GetSource(), Format: format,
			Content: pd.GetContent(), Metadata: pd.GetMetadata(), Version: pd.GetVersion(),
			Questions: questions,
		}, s.chunk)
		if err != nil {
			return nil, invalid("%s: %v", f, err)
		}
		docs[i] = d
	}
	return docs, nil
}

// questionsFromProto validates and converts a document's question-bank items;
// field names in errors are prefixed with f (e.g. "documents[0]").
func questionsFromProto(f string, pqs []*retrievalv1.QuestionItem) ([]index.Question, error) {
	if len(pqs) == 0 {
		return nil, nil
	}
	qs := make([]index.Question, len(pqs))
	for j, pq := range pqs {
		g := fmt.Sprintf("%s.questions[%d]", f, j)
		if strings.TrimSpace(pq.GetStem()) == "" {
			return nil, invalid("%s.stem is empty", g)
		}
		q := *questionFromProto(pq)
		check := map[string]string{
			"stem": q.Stem, "answer": q.Answer, "analysis": q.Analysis,
			"knowledge_point": q.Knowledge, "difficulty": q.Difficulty, "type": q.Type,
		}
		for k, po := range pq.GetOptions() {
			check[fmt.Sprintf("options[%d].label", k)] = po.GetLabel()
			check[fmt.Sprintf("options[%d].text", k)] = po.GetText()
		}
		for name, v := range check {
			if err := checkUTF8(g+"."+name, v); err != nil {
				return nil, err
			}
		}
		qs[j] = q
	}
	return qs, nil
}

// questionFromProto converts a question-bank item without validating it;
// nil stays nil.
func questionFromProto(pq *retrievalv1.QuestionItem) *index.Question {
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

// questionToProto converts a question-bank item; nil stays nil.
func questionToProto(q *index.Question) *retrievalv1.QuestionItem {
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

// UpsertDocuments writes documents; OK means durable.
func (s *server) UpsertDocuments(ctx context.Context, req *retrievalv1.UpsertDocumentsRequest) (*retrievalv1.UpsertDocumentsResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	docs, err := s.buildDocuments("documents", req.GetDocuments())
	if err != nil {
		return nil, s.toStatus(err)
	}
	outs, err := s.store.Upsert(ctx, req.GetCollection(), docs)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &retrievalv1.UpsertDocumentsResponse{}
	for i, o := range outs {
		resp.Results = append(resp.Results, &retrievalv1.UpsertResult{DocumentId: docs[i].ID, Outcome: outcomeToProto[o], ChunkCount: int32(len(docs[i].Chunks))})
	}
	return resp, nil
}

// StreamUpsertDocuments writes batches as they arrive.
func (s *server) StreamUpsertDocuments(stream grpc.ClientStreamingServer[retrievalv1.StreamUpsertDocumentsRequest, retrievalv1.StreamUpsertDocumentsResponse]) error {
	ctx := stream.Context()
	resp := &retrievalv1.StreamUpsertDocumentsResponse{}
	collection := ""
	for n := 0; ; n++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(resp)
		}
		if err != nil {
			return err
		}
		if err := checkCollection(fmt.Sprintf("message %d: collection", n), req.GetCollection()); err != nil {
			return s.toStatus(err)
		}
		if collection == "" {
			collection = req.GetCollection()
		} else if req.GetCollection() != collection {
			return s.toStatus(invalid("message %d: collection %q differs from the stream's %q", n, req.GetCollection(), collection))
		}
		docs, err := s.buildDocuments(fmt.Sprintf("message %d: documents", n), req.GetDocuments())
		if err != nil {
			return s.toStatus(err)
		}
		outs, err := s.store.Upsert(ctx, collection, docs)
		if err != nil {
			return s.toStatus(err)
		}
		for _, o := range outs {
			switch o {
			case index.Added:
				resp.Added++
			case index.Updated:
				resp.Updated++
			case index.Unchanged:
				resp.Unchanged++
			case index.Stale:
				resp.Stale++
			}
		}
	}
}

// DeleteDocuments deletes documents by id.
func (s *server) DeleteDocuments(ctx context.Context, req *retrievalv1.DeleteDocumentsRequest) (*retrievalv1.DeleteDocumentsResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	ids := req.GetDocumentIds()
	if len(ids) == 0 {
		return nil, s.toStatus(invalid("document_ids is empty"))
	}
	if len(ids) > maxDocsPerUpsert {
		return nil, s.toStatus(invalid("document_ids has %d ids, over the limit of %d", len(ids), maxDocsPerUpsert))
	}
	for i, id := range ids {
		if id == "" {
			return nil, s.toStatus(invalid("document_ids[%d] is empty", i))
		}
		if err := checkUTF8(fmt.Sprintf("document_ids[%d]", i), id); err != nil {
			return nil, s.toStatus(err)
		}
	}
	outs, err := s.store.Delete(ctx, req.GetCollection(), ids)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &retrievalv1.DeleteDocumentsResponse{}
	for i, o := range outs {
		if o == index.Deleted {
			resp.Deleted = append(resp.Deleted, ids[i])
		} else {
			resp.Missing = append(resp.Missing, ids[i])
		}
	}
	return resp, nil
}

func docInfoToProto(d index.Document) *retrievalv1.DocumentInfo {
	return &retrievalv1.DocumentInfo{Id: d.ID, Title: d.Title, Source: d.Source, Metadata: d.Metadata, Version: d.Version, ContentHash: d.Hash, ChunkCount: int32(len(d.Chunks))}
}

// GetDocument returns a document with its outline and chunks.
func (s *server) GetDocument(ctx context.Context, req *retrievalv1.GetDocumentRequest) (*retrievalv1.GetDocumentResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	if req.GetDocumentId() == "" {
		return nil, s.toStatus(invalid("document_id is empty"))
	}
	if err := checkUTF8("document_id", req.GetDocumentId()); err != nil {
		return nil, s.toStatus(err)
	}
	d, err := s.store.Document(ctx, req.GetCollection(), req.GetDocumentId())
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &retrievalv1.GetDocumentResponse{Document: docInfoToProto(d), Outline: outlineToProto(d.Chunks)}
	for _, c := range d.Chunks {
		resp.Chunks = append(resp.Chunks, &retrievalv1.Chunk{Id: c.ID, HeadingPath: c.HeadingPath, Ordinal: int32(c.Ordinal), Text: c.Text, Question: questionToProto(c.Question)})
	}
	return resp, nil
}

// outlineToProto builds the heading tree from the chunks' heading paths.
func outlineToProto(chunks []index.Chunk) []*retrievalv1.OutlineNode {
	root := &retrievalv1.OutlineNode{}
	for _, c := range chunks {
		node := root
		for depth, title := range c.HeadingPath {
			var child *retrievalv1.OutlineNode
			if n := len(node.Children); n > 0 && node.Children[n-1].Title == title {
				child = node.Children[n-1]
			} else {
				child = &retrievalv1.OutlineNode{Title: title, HeadingPath: slices.Clone(c.HeadingPath[:depth+1])}
				node.Children = append(node.Children, child)
			}
			node = child
		}
		node.ChunkIds = append(node.ChunkIds, c.ID)
	}
	if len(root.ChunkIds) > 0 {
		return append([]*retrievalv1.OutlineNode{{ChunkIds: root.ChunkIds}}, root.Children...)
	}
	return root.Children
}

// ListDocuments pages through a collection's documents.
func (s *server) ListDocuments(ctx context.Context, req *retrievalv1.ListDocumentsRequest) (*retrievalv1.ListDocumentsResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	size, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(err)
	}
	docs, more, err := s.store.ListDocuments(ctx, req.GetCollection(), after, size)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &retrievalv1.ListDocumentsResponse{}
	for _, d := range docs {
		resp.Documents = append(resp.Documents, docInfoToProto(d))
	}
	if more && len(docs) > 0 {
		resp.NextPageToken = encodePageToken(docs[len(docs)-1].ID)
	}
	return resp, nil
}

const pageTokenPrefix = "v1:"

func encodePageToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + after))
}

func pageParams(size int32, token string) (int, string, error) {
	switch {
	case size < 0:
		return 0, "", invalid("page_size %d is negative", size)
	case size > maxPageSize:
		return 0, "", invalid("page_size %d is over the limit of %d", size, maxPageSize)
	case size == 0:
		size = defaultPageSize
	}
	if token == "" {
		return int(size), "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(b), pageTokenPrefix) || !utf8.Valid(b) {
		return 0, "", invalid("page_token is malformed")
	}
	return int(size), strings.TrimPrefix(string(b), pageTokenPrefix), nil
}

// Search answers a query.
func (s *server) Search(ctx context.Context, req *retrievalv1.SearchRequest) (*retrievalv1.SearchResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	r, err := searchRequestFromProto(req)
	if err != nil {
		return nil, s.toStatus(err)
	}
	res, err := s.search.Search(ctx, r)
	if err != nil {
		return nil, s.toStatus(err)
	}
	s.rerankMetrics.observe(res.Rerank)
	if ri := res.Rerank; ri != nil && ri.Status != "off" {
		level := slog.LevelDebug
		if ri.Status != string(rerank.StatusOK) && !strings.HasPrefix(ri.Status, "skipped") {
			level = slog.LevelWarn // fell back to the retrieval order
		}
		s.logger.Log(ctx, level, "rerank", "provider", ri.Provider, "status", ri.Status, "took", ri.Took,
			"prompt_tokens", ri.Usage.Prompt, "completion_tokens", ri.Usage.Completion, "reasoning_tokens", ri.Usage.Reasoning,
			"cached_tokens", ri.Usage.Cached, "cost", ri.Cost, "cached", ri.Cached, "partial", ri.Partial, "top_changed", ri.TopChanged)
	}
	return searchResultToProto(res), nil
}

func searchRequestFromProto(req *retrievalv1.SearchRequest) (retrieve.Request, error) {
	if err := checkUTF8("query", req.GetQuery()); err != nil {
		return retrieve.Request{}, err
	}
	f := req.GetFilter()
	if n := len(f.GetDocumentIds()) + len(f.GetMetadata()) + len(f.GetHeadingPrefix()); n > maxFilterValues {
		return retrieve.Request{}, invalid("filter has %d values, over the limit of %d", n, maxFilterValues)
	}
	for i, id := range f.GetDocumentIds() {
		if err := checkUTF8(fmt.Sprintf("filter.document_ids[%d]", i), id); err != nil {
			return retrieve.Request{}, err
		}
	}
	for k, v := range f.GetMetadata() {
		if err := errors.Join(checkUTF8("filter.metadata key", k), checkUTF8("filter.metadata["+k+"]", v)); err != nil {
			return retrieve.Request{}, err
		}
	}
	for i, p := range f.GetHeadingPrefix() {
		if err := checkUTF8(fmt.Sprintf("filter.heading_prefix[%d]", i), p); err != nil {
			return retrieve.Request{}, err
		}
	}
	var rt time.Duration
	if d := req.GetRerankTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 || d.AsDuration() > time.Minute {
			return retrieve.Request{}, invalid("rerank_timeout %v: want 0 to 60s", d.AsDuration())
		}
		rt = d.AsDuration()
	}
	mode := retrieve.RerankAuto
	switch req.GetRerank() {
	case retrievalv1.RerankMode_RERANK_MODE_UNSPECIFIED:
	case retrievalv1.RerankMode_RERANK_MODE_OFF:
		mode = retrieve.RerankOff
	case retrievalv1.RerankMode_RERANK_MODE_REQUIRED:
		mode = retrieve.RerankRequired
	default:
		return retrieve.Request{}, invalid("rerank %d is not a RerankMode", req.GetRerank())
	}
	smode, ok := searchModes[req.GetMode()]
	if !ok {
		return retrieve.Request{}, invalid("mode %d is not a SearchMode", req.GetMode())
	}
	var weights *index.FusionWeights
	if w := req.GetFusion(); w != nil {
		fw := fusionFromProto(w)
		if err := fw.Validate(); err != nil {
			return retrieve.Request{}, fmt.Errorf("fusion: %w", err)
		}
		weights = &fw
	}
	return retrieve.Request{
		Rerank: mode, RerankTimeout: rt, Mode: smode, Weights: weights,
		Collection: req.GetCollection(), Query: req.GetQuery(), TopK: int(req.GetTopK()),
		Filter:      index.Filter{DocIDs: f.GetDocumentIds(), Metadata: f.GetMetadata(), HeadingPrefix: f.GetHeadingPrefix()},
		WithContext: req.GetWithContext(), Debug: req.GetDebug(),
	}, nil
}

func searchResultToProto(res retrieve.Result) *retrievalv1.SearchResponse {
	resp := &retrievalv1.SearchResponse{Took: durationpb.New(res.Took)}
	for _, h := range res.Hits {
		ph := &retrievalv1.SearchHit{
			ChunkId: h.ChunkID, DocumentId: h.DocID, DocumentTitle: h.Title, HeadingPath: h.HeadingPath,
			Text: h.Text, Score: h.Score, MatchedTerms: h.Matched, Context: h.Context,
			Question: questionToProto(h.Question), Evidence: evidenceToProto(h.Evidence),
		}
		for _, sp := range h.Highlights {
			ph.Highlights = append(ph.Highlights, &retrievalv1.Highlight{Start: int32(sp.Start), End: int32(sp.End)})
		}
		resp.Hits = append(resp.Hits, ph)
	}
	if ri := res.Rerank; ri != nil {
		resp.Rerank = &retrievalv1.RerankInfo{
			Status: ri.Status, Provider: ri.Provider, Took: durationpb.New(ri.Took), TopChanged: ri.TopChanged, Cost: ri.Cost, Cached: ri.Cached, Partial: ri.Partial,
			PromptTokens: int32(ri.Usage.Prompt), CompletionTokens: int32(ri.Usage.Completion), ReasoningTokens: int32(ri.Usage.Reasoning),
		}
	}
	if d := res.Debug; d != nil {
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
		resp.Debug = pd
	}
	return resp
}

func evidenceToProto(e retrieve.Evidence) *retrievalv1.Evidence {
	return &retrievalv1.Evidence{
		Sources: e.Sources, FusedRank: int32(e.FusedRank), Bm25Rank: int32(e.BM25Rank), OutlineRank: int32(e.OutlineRank), GraphRank: int32(e.GraphRank),
		Bm25Score: e.BM25, OutlineScore: e.Outline, GraphScore: e.Graph, OutlinePath: e.OutlinePath, GraphPath: e.GraphPath,
	}
}

// GetLexicon returns a collection's lexicon.
func (s *server) GetLexicon(ctx context.Context, req *retrievalv1.GetLexiconRequest) (*retrievalv1.GetLexiconResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	info, err := s.store.Lexicon(req.GetCollection())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &retrievalv1.GetLexiconResponse{Lexicon: lexiconToProto(info.Lexicon), Version: info.Version, PendingReindex: int64(info.PendingReindex)}, nil
}

// ReplaceLexicon replaces a collection's lexicon; the chunks it affects are
// re-indexed in the background.
func (s *server) ReplaceLexicon(ctx context.Context, req *retrievalv1.ReplaceLexiconRequest) (*retrievalv1.ReplaceLexiconResponse, error) {
	if err := checkCollection("collection", req.GetCollection()); err != nil {
		return nil, s.toStatus(err)
	}
	if req.GetLexicon() == nil {
		return nil, s.toStatus(invalid("lexicon is required (an empty lexicon clears it)"))
	}
	info, err := s.store.ReplaceLexicon(ctx, req.GetCollection(), lexiconFromProto(req.GetLexicon()))
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &retrievalv1.ReplaceLexiconResponse{ReindexedChunks: int64(info.PendingReindex), Version: info.Version, Lexicon: lexiconToProto(info.Lexicon)}, nil
}
