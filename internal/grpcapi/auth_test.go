package grpcapi_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// call is one RPC of the API on one collection.
type call func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error

var md = retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN

// rpcs has a call for every method of RetrievalService, and the role it
// needs. TestEveryRPCIsGuarded fails when the service has a method this table
// lacks: a new RPC must say who may call it.
var rpcs = map[string]struct {
	role string
	call call
	// global: the RPC acts on no one collection and needs a key that
	// reaches every collection.
	global bool
}{
	"CreateCollection": {index.RoleAdmin, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: coll + "-new"}})
		return err
	}, false},
	"ListCollections": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.ListCollections(ctx, &retrievalv1.ListCollectionsRequest{})
		return err
	}, false},
	"GetCollection": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.GetCollection(ctx, &retrievalv1.GetCollectionRequest{Name: coll})
		return err
	}, false},
	"DeleteCollection": {index.RoleAdmin, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.DeleteCollection(ctx, &retrievalv1.DeleteCollectionRequest{Name: coll + "-doomed"})
		return err
	}, false},
	"UpsertDocuments": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: coll, Documents: []*retrievalv1.Document{{Id: "n", Content: "# 新\n\n内容。", Format: md}}})
		return err
	}, false},
	"StreamUpsertDocuments": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		s, err := c.StreamUpsertDocuments(ctx)
		if err != nil {
			return err
		}
		// Send says io.EOF when the server has already ended the stream (a
		// refused key); the status comes from CloseAndRecv then.
		if err := s.Send(&retrievalv1.StreamUpsertDocumentsRequest{Collection: coll, Documents: []*retrievalv1.Document{{Id: "s", Content: "# 流\n\n内容。", Format: md}}}); err != nil && err != io.EOF {
			return err
		}
		_, err = s.CloseAndRecv()
		return err
	}, false},
	"DeleteDocuments": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.DeleteDocuments(ctx, &retrievalv1.DeleteDocumentsRequest{Collection: coll, DocumentIds: []string{"gone"}})
		return err
	}, false},
	"GetDocument": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: coll, DocumentId: "sales/price"})
		return err
	}, false},
	"ListDocuments": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: coll})
		return err
	}, false},
	"Search": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: coll, Query: "价格"})
		return err
	}, false},
	"Learn": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.Learn(ctx, &retrievalv1.LearnRequest{Collection: coll, Pairs: []*retrievalv1.LearnPair{{Question: "价格怎么谈", ChunkId: "nope"}}})
		return err
	}, false},
	"GetLearned": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.GetLearned(ctx, &retrievalv1.GetLearnedRequest{Collection: coll})
		return err
	}, false},
	"GetLexicon": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.GetLexicon(ctx, &retrievalv1.GetLexiconRequest{Collection: coll})
		return err
	}, false},
	"ReplaceLexicon": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.ReplaceLexicon(ctx, &retrievalv1.ReplaceLexiconRequest{Collection: coll, Lexicon: &retrievalv1.Lexicon{Terms: []string{"价格异议"}}})
		return err
	}, false},
	"UploadFiles": {index.RoleWrite, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		s, err := c.UploadFiles(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&retrievalv1.UploadFilesRequest{Collection: coll, FileName: "up.md", Data: []byte("# 上传\n\n内容。")}); err != nil && err != io.EOF {
			return err
		}
		_, err = s.CloseAndRecv()
		return err
	}, false},
	"CreateKey": {index.RoleAdmin, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.CreateKey(ctx, &retrievalv1.CreateKeyRequest{Name: "made-on-" + coll, Role: index.RoleRead, Collections: []string{coll}})
		return err
	}, true},
	"GetStatus": {index.RoleRead, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.GetStatus(ctx, &retrievalv1.GetStatusRequest{})
		return err
	}, true},
	"ListKeys": {index.RoleAdmin, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.ListKeys(ctx, &retrievalv1.ListKeysRequest{})
		return err
	}, true},
	"RevokeKey": {index.RoleAdmin, func(ctx context.Context, c retrievalv1.RetrievalServiceClient, coll string) error {
		_, err := c.RevokeKey(ctx, &retrievalv1.RevokeKeyRequest{KeyId: "000000000000"})
		if status.Code(err) == codes.NotFound {
			return nil // the call got past the guard to the store
		}
		return err
	}, true},
}

// TestEveryRPCIsGuarded: every method of the service is in rpcs.
func TestEveryRPCIsGuarded(t *testing.T) {
	var names []string
	for _, m := range retrievalv1.RetrievalService_ServiceDesc.Methods {
		names = append(names, m.MethodName)
	}
	for _, s := range retrievalv1.RetrievalService_ServiceDesc.Streams {
		names = append(names, s.StreamName)
	}
	for _, n := range names {
		if _, ok := rpcs[n]; !ok {
			t.Errorf("RPC %s has no row in rpcs: say which role it needs and test that keys of other collections cannot use it", n)
		}
	}
	if len(names) != len(rpcs) {
		t.Errorf("the service has %d RPCs, rpcs lists %d", len(names), len(rpcs))
	}
}

// TestKeyIsolation runs every RPC with keys of each role, scoped to
// collection a (or to all), against collections a and b, and without a key:
// a call succeeds exactly when the key's role suffices and it reaches the
// collection; otherwise PERMISSION_DENIED, or UNAUTHENTICATED without a key
// or with a revoked one. ListCollections shows a key only what it reaches.
func TestKeyIsolation(t *testing.T) {
	srv := grpcapitest.ServeWith(t, service.Options{RequireAuth: true})
	admin, _, err := srv.Store.CreateKey("root", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	asKey := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	}
	setup := func() {
		for _, name := range []string{"a", "b", "a-doomed", "b-doomed"} {
			_, err := srv.Client.CreateCollection(asKey(admin), &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: name}})
			if err != nil && status.Code(err) != codes.AlreadyExists {
				t.Fatal(err)
			}
			if _, err := srv.Client.UpsertDocuments(asKey(admin), &retrievalv1.UpsertDocumentsRequest{Collection: name,
				Documents: []*retrievalv1.Document{{Id: "sales/price", Content: grpcapitest.SalesMD, Format: md}}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"a-new", "b-new"} {
			srv.Client.DeleteCollection(asKey(admin), &retrievalv1.DeleteCollectionRequest{Name: name})
		}
	}
	setup()
	type key struct {
		name, role string
		colls      []string
	}
	for _, k := range []key{{"read-a", index.RoleRead, []string{"a", "a-new", "a-doomed"}}, {"write-a", index.RoleWrite, []string{"a", "a-new", "a-doomed"}},
		{"admin-a", index.RoleAdmin, []string{"a", "a-new", "a-doomed"}}, {"read-all", index.RoleRead, []string{index.AllCollections}},
		{"admin-all", index.RoleAdmin, []string{index.AllCollections}}} {
		tok, _, err := srv.Store.CreateKey(k.name, k.role, k.colls)
		if err != nil {
			t.Fatal(err)
		}
		for rpc, r := range rpcs {
			for _, coll := range []string{"a", "b"} {
				setup()
				err := r.call(asKey(tok), srv.Client, coll)
				all := slices.Contains(k.colls, index.AllCollections)
				reaches := (coll == "a" && !r.global) || all
				want := codes.OK
				if index.RoleRank(k.role) < index.RoleRank(r.role) || (!reaches && rpc != "ListCollections") {
					want = codes.PermissionDenied
				}
				if got := status.Code(err); got != want {
					t.Errorf("key %s: %s on %s = %v (%v), want %v", k.name, rpc, coll, got, err, want)
				}
			}
		}
		resp, err := srv.Client.ListCollections(asKey(tok), &retrievalv1.ListCollectionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.GetCollections() {
			if c.GetName()[0] == 'b' && !slices.Contains(k.colls, index.AllCollections) {
				t.Errorf("key %s lists collection %s, which it does not reach", k.name, c.GetName())
			}
		}
	}
	revoked, rk, err := srv.Store.CreateKey("old", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.RevokeKey(rk.ID); err != nil {
		t.Fatal(err)
	}
	for rpc, r := range rpcs {
		for name, ctx := range map[string]context.Context{"no key": t.Context(), "a revoked key": asKey(revoked), "a malformed key": asKey("zsk_nope")} {
			if got := status.Code(r.call(ctx, srv.Client, "a")); got != codes.Unauthenticated {
				t.Errorf("%s with %s = %v, want Unauthenticated", rpc, name, got)
			}
		}
	}
}

// TestOversizedRequestRefused: a request over the message limit (here 65
// MiB, as a 300 MB upload would be) is refused with RESOURCE_EXHAUSTED before
// the service sees it, and the server goes on serving.
func TestOversizedRequestRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 65 MiB")
	}
	srv := grpcapitest.Serve(t, retrieve.Options{})
	big := strings.Repeat("价格", (grpcapi.MaxRecvMsgSize+1<<20)/6)
	_, err := srv.Client.UpsertDocuments(t.Context(), &retrievalv1.UpsertDocumentsRequest{Collection: "kb",
		Documents: []*retrievalv1.Document{{Id: "huge", Content: big, Format: md}}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a %d MiB request = %v, want ResourceExhausted", len(big)>>20, err)
	}
	grpcapitest.Seed(t, srv.Client) // still serving
}
