package grpcapi_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// A write's response carries its log position; a read naming it is
// answered, and one naming a position the node has not reached waits
// (ReadWait), then answers UNAVAILABLE with the node's lag. GetStatus reports
// the same position.
func TestMinPosition(t *testing.T) {
	srv := grpcapitest.ServeWith(t, service.Options{ReadWait: 300 * time.Millisecond})
	c, ctx := srv.Client, t.Context()
	cr, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "sales/price", Content: grpcapitest.SalesMD, Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN}}})
	if err != nil {
		t.Fatal(err)
	}
	if cr.GetPosition() == 0 || up.GetPosition() <= cr.GetPosition() {
		t.Fatalf("positions: create %d, upsert %d; want increasing, above 0", cr.GetPosition(), up.GetPosition())
	}
	res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "预算", MinPosition: up.GetPosition()})
	if err != nil || len(res.GetHits()) == 0 {
		t.Fatalf("search at the write's position: %v, %d hits", err, len(res.GetHits()))
	}
	if _, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "sales/price", MinPosition: up.GetPosition()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "预算", MinPosition: up.GetPosition() + 50})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "50 behind") || !strings.Contains(err.Error(), "another node") {
		t.Fatalf("search beyond the node's position: %v; want UNAVAILABLE naming the lag (50) and another node", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("the read waited %v; want about ReadWait (300 ms)", d)
	}
	_, err = c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "sales/price", MinPosition: up.GetPosition() + 1})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("get beyond the node's position: %v; want UNAVAILABLE", err)
	}
	st, err := c.GetStatus(ctx, &retrievalv1.GetStatusRequest{Digest: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLog() != "local" || st.GetPosition() != up.GetPosition() || st.GetLogLast() != up.GetPosition() || st.GetLag() != 0 || len(st.GetDigest()) != 51 {
		t.Fatalf("status = %v; want the local log at %d, no lag, a digest", st, up.GetPosition())
	}
}
