package grpcapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// Dial connects to a server over TLS with tlsCfg (nil: a plain
// connection), sending apiKey (when not "") with every call. addr may list
// several servers, comma-separated ("a:7700,b:7700,c:7700", replicas of one
// store): calls are spread over those that answer (round robin). A call that
// fails with UNAVAILABLE before the server has answered is tried again, up
// to three times in all with backoff, on the next server (the API's writes
// are idempotent). The connection is lazy: errors show on the first call.
// The caller closes the connection.
func Dial(addr, apiKey string, tlsCfg *tls.Config) (*grpc.ClientConn, retrievalv1.RetrievalServiceClient, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize), grpc.MaxCallSendMsgSize(MaxRecvMsgSize)),
		grpc.WithDefaultServiceConfig(clientServiceConfig)}
	if apiKey != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(apiKey)))
	}
	target := addr
	if addrs := strings.Split(addr, ","); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("zhisou")
		var st resolver.State
		for _, a := range addrs {
			if a = strings.TrimSpace(a); a == "" {
				return nil, nil, fmt.Errorf("connect to %q: an empty address in the list", addr)
			}
			st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
		}
		r.InitialState(st)
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///replicas"
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, retrievalv1.NewRetrievalServiceClient(conn), nil
}

// clientServiceConfig spreads calls over the addresses that answer and
// retries UNAVAILABLE (https://github.com/grpc/grpc/blob/master/doc/service_config.md).
const clientServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "retrieval.v1.RetrievalService"}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// ClientErr turns a gRPC error from the server at addr into one that names
// the server and matches the sentinel errors the ingest runner and the
// command branch on: ingest.ErrSinkUnavailable, index.ErrNotFound,
// index.ErrInvalid, and the ctx errors.
func ClientErr(addr string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		if strings.HasPrefix(st.Message(), index.ErrUnavailable.Error()) {
			// A live server whose shared write log did not answer (a
			// leader election, a lost quorum): busy for now, retried.
			return remoteError{fmt.Sprintf("server %s: %s", addr, st.Message()), ingest.ErrSinkBusy}
		}
		return fmt.Errorf("%w: no zhisou server at %s (%s); start one with 'zhisou serve', or use -store DIR to open a data directory directly (a server with TLS needs -tls or -tls-ca)", ingest.ErrSinkUnavailable, addr, st.Message())
	case codes.NotFound:
		return remoteError{st.Message(), index.ErrNotFound}
	case codes.InvalidArgument:
		return remoteError{st.Message(), index.ErrInvalid}
	case codes.Unauthenticated:
		return fmt.Errorf("server %s refused the call: %s; give a key with -api-key or ZHISOU_API_KEY (zhisou keys create makes one)", addr, st.Message())
	case codes.ResourceExhausted:
		return remoteError{fmt.Sprintf("server %s: %s: %s", addr, st.Code(), st.Message()), ingest.ErrSinkBusy}
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

// Sink is an ingest.Sink that sends documents to the server at Addr.
type Sink struct {
	Addr   string
	Client retrievalv1.RetrievalServiceClient
}

// Upsert sends the inputs in one request; the server builds them.
func (g Sink) Upsert(ctx context.Context, collection string, ins []ingest.Input) ([]index.Outcome, error) {
	req := &retrievalv1.UpsertDocumentsRequest{Collection: collection}
	for _, in := range ins {
		req.Documents = append(req.Documents, inputToProto(in))
	}
	resp, err := g.Client.UpsertDocuments(ctx, req)
	if err != nil {
		return nil, ClientErr(g.Addr, err)
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

// Delete deletes documents, in requests of at most service.MaxDocsPerUpsert ids.
func (g Sink) Delete(ctx context.Context, collection string, ids []string) error {
	for i := 0; i < len(ids); i += service.MaxDocsPerUpsert {
		_, err := g.Client.DeleteDocuments(ctx, &retrievalv1.DeleteDocumentsRequest{Collection: collection, DocumentIds: ids[i:min(i+service.MaxDocsPerUpsert, len(ids))]})
		if err != nil {
			return ClientErr(g.Addr, err)
		}
	}
	return nil
}

// DocumentSources lists every document's source, page by page.
func (g Sink) DocumentSources(ctx context.Context, collection string) (map[string]string, error) {
	out := map[string]string{}
	token := ""
	for {
		resp, err := g.Client.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: collection, PageSize: service.MaxPageSize, PageToken: token})
		if err != nil {
			return nil, ClientErr(g.Addr, err)
		}
		for _, d := range resp.GetDocuments() {
			out[d.GetId()] = d.GetSource()
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// EnsureCollection creates the collection on the server if it is missing.
func (g Sink) EnsureCollection(ctx context.Context, name string) error {
	_, err := g.Client.GetCollection(ctx, &retrievalv1.GetCollectionRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		_, err = g.Client.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: name}})
		if status.Code(err) == codes.AlreadyExists {
			err = nil
		}
	}
	if err != nil {
		return ClientErr(g.Addr, err)
	}
	return nil
}
