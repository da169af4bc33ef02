package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// server adapts the service to the gRPC API. Handlers convert the request,
// call the service (which validates), convert back, and map errors through
// toStatus.
type server struct {
	retrievalv1.UnimplementedRetrievalServiceServer
	svc    *service.Service
	logger *slog.Logger
}

func (s *server) status(err error) error { return toStatus(s.logger, err) }

// CreateCollection creates a collection with defaults for unset parameters.
func (s *server) CreateCollection(ctx context.Context, req *retrievalv1.CreateCollectionRequest) (*retrievalv1.CreateCollectionResponse, error) {
	pc := req.GetCollection()
	if pc == nil {
		return nil, s.status(service.Invalid("collection", "collection is required"))
	}
	spec := service.CollectionSpec{Name: pc.GetName(), Description: pc.GetDescription(), K1: pc.K1, B: pc.B}
	if w := pc.GetFieldWeights(); w != nil {
		spec.Weights = &index.FieldWeights{Title: w.GetTitle(), Heading: w.GetHeading(), Body: w.GetBody()}
	}
	if w := pc.GetFusion(); w != nil {
		fw := fusionFromProto(w)
		spec.Fusion = &fw
	}
	info, err := s.svc.CreateCollection(ctx, spec)
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.CreateCollectionResponse{Collection: collectionToProto(info), Position: s.svc.Position()}, nil
}

// ListCollections pages through collections by name.
func (s *server) ListCollections(ctx context.Context, req *retrievalv1.ListCollectionsRequest) (*retrievalv1.ListCollectionsResponse, error) {
	colls, next, err := s.svc.ListCollections(ctx, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.status(err)
	}
	resp := &retrievalv1.ListCollectionsResponse{NextPageToken: next}
	for _, c := range colls {
		resp.Collections = append(resp.Collections, collectionToProto(c))
	}
	return resp, nil
}

// GetCollection returns one collection.
func (s *server) GetCollection(ctx context.Context, req *retrievalv1.GetCollectionRequest) (*retrievalv1.GetCollectionResponse, error) {
	info, err := s.svc.GetCollection(ctx, req.GetName())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.GetCollectionResponse{Collection: collectionToProto(info)}, nil
}

// DeleteCollection deletes a collection.
func (s *server) DeleteCollection(ctx context.Context, req *retrievalv1.DeleteCollectionRequest) (*retrievalv1.DeleteCollectionResponse, error) {
	if err := s.svc.DeleteCollection(ctx, req.GetName()); err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.DeleteCollectionResponse{}, nil
}

// UpsertDocuments writes documents; OK means durable.
func (s *server) UpsertDocuments(ctx context.Context, req *retrievalv1.UpsertDocumentsRequest) (*retrievalv1.UpsertDocumentsResponse, error) {
	res, err := s.svc.UpsertDocuments(ctx, service.UpsertRequest{Collection: req.GetCollection(), Documents: inputsFromProto(req.GetDocuments())})
	if err != nil {
		return nil, s.status(err)
	}
	resp := &retrievalv1.UpsertDocumentsResponse{Position: s.svc.Position()}
	for _, r := range res {
		resp.Results = append(resp.Results, &retrievalv1.UpsertResult{DocumentId: r.DocumentID, Outcome: outcomeToProto[r.Outcome], ChunkCount: int32(r.Chunks)})
	}
	return resp, nil
}

// StreamUpsertDocuments writes batches as they arrive; every message names
// the same collection.
func (s *server) StreamUpsertDocuments(stream grpc.ClientStreamingServer[retrievalv1.StreamUpsertDocumentsRequest, retrievalv1.StreamUpsertDocumentsResponse]) error {
	ctx := stream.Context()
	resp := &retrievalv1.StreamUpsertDocumentsResponse{}
	collection := ""
	for n := 0; ; n++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			resp.Position = s.svc.Position()
			return stream.SendAndClose(resp)
		}
		if err != nil {
			return err
		}
		prefix := fmt.Sprintf("message %d: ", n)
		if collection != "" && req.GetCollection() != "" && req.GetCollection() != collection {
			return s.status(service.Invalid(prefix+"collection", "%scollection %q differs from the stream's %q", prefix, req.GetCollection(), collection))
		}
		res, err := s.svc.UpsertDocuments(ctx, service.UpsertRequest{Collection: req.GetCollection(), Documents: inputsFromProto(req.GetDocuments()), FieldPrefix: prefix})
		if err != nil {
			return s.status(err)
		}
		collection = req.GetCollection()
		for _, r := range res {
			switch r.Outcome {
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
	deleted, missing, err := s.svc.DeleteDocuments(ctx, req.GetCollection(), req.GetDocumentIds())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.DeleteDocumentsResponse{Deleted: deleted, Missing: missing, Position: s.svc.Position()}, nil
}

// GetDocument returns a document with its outline and chunks.
func (s *server) GetDocument(ctx context.Context, req *retrievalv1.GetDocumentRequest) (*retrievalv1.GetDocumentResponse, error) {
	if err := s.svc.AwaitPosition(ctx, req.GetMinPosition()); err != nil {
		return nil, s.status(err)
	}
	d, err := s.svc.GetDocument(ctx, req.GetCollection(), req.GetDocumentId())
	if err != nil {
		return nil, s.status(err)
	}
	resp := &retrievalv1.GetDocumentResponse{Document: docInfoToProto(d), Outline: outlineToProto(service.Outline(d.Chunks))}
	for _, c := range d.Chunks {
		resp.Chunks = append(resp.Chunks, &retrievalv1.Chunk{Id: c.ID, HeadingPath: c.HeadingPath, Ordinal: int32(c.Ordinal), Text: c.Text, Question: QuestionToProto(c.Question)})
	}
	return resp, nil
}

// ListDocuments pages through a collection's documents.
func (s *server) ListDocuments(ctx context.Context, req *retrievalv1.ListDocumentsRequest) (*retrievalv1.ListDocumentsResponse, error) {
	docs, next, err := s.svc.ListDocuments(ctx, req.GetCollection(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.status(err)
	}
	resp := &retrievalv1.ListDocumentsResponse{NextPageToken: next}
	for _, d := range docs {
		resp.Documents = append(resp.Documents, docInfoToProto(d))
	}
	return resp, nil
}

// Search answers a query.
func (s *server) Search(ctx context.Context, req *retrievalv1.SearchRequest) (*retrievalv1.SearchResponse, error) {
	r, err := searchRequestFromProto(req)
	if err != nil {
		return nil, s.status(err)
	}
	if err := s.svc.AwaitPosition(ctx, req.GetMinPosition()); err != nil {
		return nil, s.status(err)
	}
	res, err := s.svc.Search(ctx, r)
	if err != nil {
		return nil, s.status(err)
	}
	return SearchResultToProto(res), nil
}

// GetLexicon returns a collection's lexicon.
func (s *server) GetLexicon(ctx context.Context, req *retrievalv1.GetLexiconRequest) (*retrievalv1.GetLexiconResponse, error) {
	info, err := s.svc.GetLexicon(ctx, req.GetCollection())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.GetLexiconResponse{Lexicon: LexiconToProto(info.Lexicon), Version: info.Version, PendingReindex: int64(info.PendingReindex)}, nil
}

// ReplaceLexicon replaces a collection's lexicon; the chunks it affects are
// re-indexed in the background.
func (s *server) ReplaceLexicon(ctx context.Context, req *retrievalv1.ReplaceLexiconRequest) (*retrievalv1.ReplaceLexiconResponse, error) {
	var lex *index.Lexicon
	if req.GetLexicon() != nil {
		l := LexiconFromProto(req.GetLexicon())
		lex = &l
	}
	info, err := s.svc.ReplaceLexicon(ctx, req.GetCollection(), lex)
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.ReplaceLexiconResponse{ReindexedChunks: int64(info.PendingReindex), Version: info.Version, Lexicon: LexiconToProto(info.Lexicon)}, nil
}

// CreateKey creates an API key; its token is in the response only.
func (s *server) CreateKey(ctx context.Context, req *retrievalv1.CreateKeyRequest) (*retrievalv1.CreateKeyResponse, error) {
	token, k, err := s.svc.CreateKey(ctx, req.GetName(), req.GetRole(), req.GetCollections())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.CreateKeyResponse{Key: KeyToProto(&k), Token: token}, nil
}

// ListKeys lists the API keys.
func (s *server) ListKeys(ctx context.Context, _ *retrievalv1.ListKeysRequest) (*retrievalv1.ListKeysResponse, error) {
	keys, err := s.svc.ListKeys(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	resp := &retrievalv1.ListKeysResponse{}
	for i := range keys {
		resp.Keys = append(resp.Keys, KeyToProto(&keys[i]))
	}
	return resp, nil
}

// RevokeKey revokes an API key.
func (s *server) RevokeKey(ctx context.Context, req *retrievalv1.RevokeKeyRequest) (*retrievalv1.RevokeKeyResponse, error) {
	k, err := s.svc.RevokeKey(ctx, req.GetKeyId())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.RevokeKeyResponse{Key: KeyToProto(&k)}, nil
}

// UploadFiles gathers a stream's files (at most service.MaxUploadBytes) and
// has the service read and write them.
func (s *server) UploadFiles(stream grpc.ClientStreamingServer[retrievalv1.UploadFilesRequest, retrievalv1.UploadFilesResponse]) error {
	collection := ""
	var files []service.UploadFile
	var total int64
	for n := 0; ; n++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		prefix := fmt.Sprintf("message %d: ", n)
		switch c := req.GetCollection(); {
		case n == 0 && c == "":
			return s.status(service.Invalid(prefix+"collection", "%scollection is required in the first message", prefix))
		case c != "" && collection != "" && c != collection:
			return s.status(service.Invalid(prefix+"collection", "%scollection %q differs from the stream's %q", prefix, c, collection))
		case c != "":
			collection = c
		}
		if total += int64(len(req.GetData())); total > service.MaxUploadBytes {
			return s.status(fmt.Errorf("%w: the upload passed %d MiB, the limit; send fewer files at once", service.ErrResourceExhausted, service.MaxUploadBytes>>20))
		}
		if name := req.GetFileName(); name != "" {
			files = append(files, service.UploadFile{Name: name})
		} else if len(files) == 0 && len(req.GetData()) > 0 {
			return s.status(service.Invalid(prefix+"file_name", "%sfile_name is required before a file's data", prefix))
		}
		if len(files) > 0 {
			f := &files[len(files)-1]
			f.Data = append(f.Data, req.GetData()...)
		}
	}
	res, err := s.svc.UploadFiles(stream.Context(), collection, files)
	if err != nil {
		return s.status(err)
	}
	return stream.SendAndClose(&retrievalv1.UploadFilesResponse{Files: FileResultsToProto(res)})
}

// GetStatus reports the node's place in the write log.
func (s *server) GetStatus(ctx context.Context, req *retrievalv1.GetStatusRequest) (*retrievalv1.GetStatusResponse, error) {
	st, err := s.svc.Status(ctx, req.GetDigest())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.GetStatusResponse{Log: st.Log, Position: st.Position, LogLast: st.LogLast, Lag: st.Lag,
		Quarantined: uint64(st.Quarantined), Digest: st.Digest}, nil
}

// Learn adds labelled questions to a collection.
func (s *server) Learn(ctx context.Context, req *retrievalv1.LearnRequest) (*retrievalv1.LearnResponse, error) {
	pairs := make([]index.Pair, len(req.GetPairs()))
	for i, p := range req.GetPairs() {
		pairs[i] = index.Pair{Question: p.GetQuestion(), ChunkID: p.GetChunkId()}
	}
	rep, err := s.svc.Learn(ctx, req.GetCollection(), pairs, req.GetReplace(), req.GetNoWait())
	if err != nil {
		return nil, s.status(err)
	}
	out := &retrievalv1.LearnResponse{Added: int32(rep.Added), Model: learnedToProto(rep.Info)}
	for _, r := range rep.Refused {
		out.Refused = append(out.Refused, &retrievalv1.RefusedPair{Index: int32(r.Index), Reason: r.Reason})
	}
	return out, nil
}

// GetLearned describes a collection's learned model.
func (s *server) GetLearned(ctx context.Context, req *retrievalv1.GetLearnedRequest) (*retrievalv1.GetLearnedResponse, error) {
	info, err := s.svc.GetLearned(ctx, req.GetCollection())
	if err != nil {
		return nil, s.status(err)
	}
	return &retrievalv1.GetLearnedResponse{Model: learnedToProto(info)}, nil
}
