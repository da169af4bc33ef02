package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// dial connects to a server. The connection is lazy: errors show on the first call.
func dial(addr string) (*grpc.ClientConn, retrievalv1.RetrievalServiceClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize), grpc.MaxCallSendMsgSize(maxRecvMsgSize)))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, retrievalv1.NewRetrievalServiceClient(conn), nil
}

// clientErr turns a gRPC error into one that names the server and keeps the
// sentinel errors the ingest runner branches on.
func clientErr(addr string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%w: no zhisou server at %s (%s); start one with 'zhisou serve', or use -store DIR to open a data directory directly", ingest.ErrSinkUnavailable, addr, st.Message())
	case codes.NotFound:
		return remoteError{st.Message(), index.ErrNotFound}
	case codes.InvalidArgument:
		return remoteError{st.Message(), index.ErrInvalid}
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return fmt.Errorf("server %s: %s: %s", addr, st.Code(), st.Message())
}

// remoteError is a server's message that matches a local sentinel error.
type remoteError struct {
	msg      string
	sentinel error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.sentinel }

// grpcSink sends ingested documents to a server.
type grpcSink struct {
	addr   string
	client retrievalv1.RetrievalServiceClient
	logger *slog.Logger
}

func (g grpcSink) Upsert(ctx context.Context, collection string, ins []ingest.Input) ([]index.Outcome, error) {
	req := &retrievalv1.UpsertDocumentsRequest{Collection: collection}
	for _, in := range ins {
		f := retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TEXT
		switch in.Format {
		case ingest.Markdown:
			f = retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN
		case ingest.Transcript:
			f = retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TRANSCRIPT
		}
		pd := &retrievalv1.Document{
			Id: in.ID, Title: in.Title, Source: in.Source, Content: in.Content, Format: f, Metadata: in.Metadata, Version: in.Version,
		}
		for _, q := range in.Questions {
			pd.Questions = append(pd.Questions, questionToProto(&q))
		}
		req.Documents = append(req.Documents, pd)
	}
	resp, err := g.client.UpsertDocuments(ctx, req)
	if err != nil {
		return nil, clientErr(g.addr, err)
	}
	outs := make([]index.Outcome, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		switch r.GetOutcome() {
		case retrievalv1.UpsertOutcome_UPSERT_OUTCOME_ADDED:
			outs[i] = index.Added
		case retrievalv1.UpsertOutcome_UPSERT_OUTCOME_UPDATED:
			outs[i] = index.Updated
		case retrievalv1.UpsertOutcome_UPSERT_OUTCOME_STALE:
			outs[i] = index.Stale
		default:
			outs[i] = index.Unchanged
		}
	}
	return outs, nil
}

func (g grpcSink) Delete(ctx context.Context, collection string, ids []string) error {
	for i := 0; i < len(ids); i += maxDocsPerUpsert {
		_, err := g.client.DeleteDocuments(ctx, &retrievalv1.DeleteDocumentsRequest{Collection: collection, DocumentIds: ids[i:min(i+maxDocsPerUpsert, len(ids))]})
		if err != nil {
			return clientErr(g.addr, err)
		}
	}
	return nil
}

func (g grpcSink) DocumentSources(ctx context.Context, collection string) (map[string]string, error) {
	out := map[string]string{}
	token := ""
	for {
		resp, err := g.client.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: collection, PageSize: maxPageSize, PageToken: token})
		if err != nil {
			return nil, clientErr(g.addr, err)
		}
		for _, d := range resp.GetDocuments() {
			out[d.GetId()] = d.GetSource()
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// ensureCollection creates the collection on the server if it is missing.
func (g grpcSink) ensureCollection(ctx context.Context, name string) error {
	_, err := g.client.GetCollection(ctx, &retrievalv1.GetCollectionRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		_, err = g.client.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: name}})
		if status.Code(err) == codes.AlreadyExists {
			err = nil
		}
	}
	if err != nil {
		return clientErr(g.addr, err)
	}
	return nil
}

// ensureLocalCollection creates the collection in a store if it is missing.
func ensureLocalCollection(ctx context.Context, store *store.Store, name string) error {
	_, err := store.Collection(name)
	if errors.Is(err, index.ErrNotFound) {
		err = store.CreateCollection(ctx, index.DefaultCollection(name))
		if errors.Is(err, index.ErrExists) {
			err = nil
		}
	}
	return err
}
