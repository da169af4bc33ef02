package grpcapi_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// testServer runs the gRPC server over an in-memory connection.
func testServer(t *testing.T) (retrievalv1.RetrievalServiceClient, *grpc.ClientConn) {
	srv := grpcapitest.Serve(t, retrieve.Options{})
	return srv.Client, srv.Conn
}

func testServerWithMetrics(t *testing.T) (retrievalv1.RetrievalServiceClient, *grpc.ClientConn, *prometheus.Registry) {
	srv := grpcapitest.Serve(t, retrieve.Options{})
	return srv.Client, srv.Conn, srv.Registry
}

func seed(t *testing.T, c retrievalv1.RetrievalServiceClient) { t.Helper(); grpcapitest.Seed(t, c) }

const salesMD = grpcapitest.SalesMD

func TestServerEndToEnd(t *testing.T) {
	c, conn, reg := testServerWithMetrics(t)
	ctx := t.Context()
	seed(t, c)

	res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "客户嫌太贵怎么办", Debug: true, WithContext: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetHits()) == 0 || res.GetHits()[0].GetDocumentId() != "sales/price" {
		t.Fatalf("Search(客户嫌太贵怎么办) = %v, want sales/price first", res.GetHits())
	}
	top := res.GetHits()[0]
	if top.GetDocumentTitle() != "第二章 价格异议处理" || len(top.GetHeadingPath()) == 0 || top.GetContext() == "" {
		t.Errorf("top hit title %q, heading path %v, context %q: want title, heading path and context", top.GetDocumentTitle(), top.GetHeadingPath(), top.GetContext())
	}
	for _, h := range top.GetHighlights() {
		if h.GetStart() < 0 || int(h.GetEnd()) > len(top.GetText()) || h.GetStart() >= h.GetEnd() {
			t.Errorf("highlight %v outside text of %d bytes", h, len(top.GetText()))
		}
	}
	if res.GetDebug() == nil || len(res.GetDebug().GetStages()) == 0 || res.GetTook() == nil {
		t.Errorf("Search with debug: debug %v, took %v; want stages and took", res.GetDebug(), res.GetTook())
	}

	// Scoped to a heading: only chunks under 2.2.
	res, err = c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价值", Filter: &retrievalv1.SearchFilter{HeadingPrefix: []string{"第二章 价格异议处理", "2.2 说明价值"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.GetHits() {
		if len(h.GetHeadingPath()) < 2 || h.GetHeadingPath()[1] != "2.2 说明价值" {
			t.Errorf("heading-scoped search returned a chunk under %v", h.GetHeadingPath())
		}
	}
	if len(res.GetHits()) == 0 {
		t.Error("heading-scoped search returned nothing")
	}
	// Metadata filter.
	res, err = c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "作业 价值", Filter: &retrievalv1.SearchFilter{Metadata: map[string]string{"course": "safety"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.GetHits() {
		if h.GetDocumentId() != "safety/rules" {
			t.Errorf("metadata-filtered search returned %s", h.GetDocumentId())
		}
	}

	// The document with its outline.
	doc, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "sales/price"})
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	var walk func(ns []*retrievalv1.OutlineNode, depth int)
	walk = func(ns []*retrievalv1.OutlineNode, depth int) {
		for _, n := range ns {
			titles = append(titles, strings.Repeat("  ", depth)+n.GetTitle())
			walk(n.GetChildren(), depth+1)
		}
	}
	walk(doc.GetOutline(), 0)
	if diff := cmp.Diff([]string{"第二章 价格异议处理", "  2.1 确认预算", "  2.2 说明价值"}, titles); diff != "" {
		t.Errorf("GetDocument outline (-want +got):\n%s", diff)
	}
	if len(doc.GetChunks()) != 3 {
		t.Errorf("GetDocument chunks = %d, want 3", len(doc.GetChunks()))
	}

	// Re-upserting unchanged content is a no-op.
	up, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "sales/price", Content: salesMD, Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN, Metadata: map[string]string{"course": "sales"}},
	}})
	if err != nil || up.GetResults()[0].GetOutcome() != retrievalv1.UpsertOutcome_UPSERT_OUTCOME_UNCHANGED {
		t.Errorf("UpsertDocuments(same content) = %v, %v; want UNCHANGED", up, err)
	}

	// Streaming upsert, then paging through the documents.
	stream, err := c.StreamUpsertDocuments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 3 {
		var docs []*retrievalv1.Document
		for i := range 5 {
			docs = append(docs, &retrievalv1.Document{Id: fmt.Sprintf("bulk/%d-%d", b, i), Content: fmt.Sprintf("批量文档%d-%d，介绍客户跟进。", b, i)})
		}
		if err := stream.Send(&retrievalv1.StreamUpsertDocumentsRequest{Collection: "kb", Documents: docs}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetAdded() != 15 {
		t.Errorf("StreamUpsertDocuments added %d, want 15", sum.GetAdded())
	}
	var ids []string
	token := ""
	for {
		page, err := c.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: "kb", PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.GetDocuments() {
			ids = append(ids, d.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(ids) != 17 {
		t.Errorf("ListDocuments paged through %d documents, want 17: %v", len(ids), ids)
	}

	del, err := c.DeleteDocuments(ctx, &retrievalv1.DeleteDocumentsRequest{Collection: "kb", DocumentIds: []string{"bulk/0-0", "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bulk/0-0"}, del.GetDeleted()); diff != "" {
		t.Errorf("DeleteDocuments deleted (-want +got):\n%s", diff)
	}
	coll, err := c.GetCollection(ctx, &retrievalv1.GetCollectionRequest{Name: "kb"})
	if err != nil || coll.GetCollection().GetDocumentCount() != 16 {
		t.Errorf("GetCollection = %v, %v; want 16 documents", coll, err)
	}

	// Metrics count the calls by method and code.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	searches := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_method"] == "Search" && labels["grpc_code"] == "OK" {
				searches += m.GetCounter().GetValue()
			}
		}
	}
	if searches != 3 {
		t.Errorf("grpc_server_handled_total{grpc_method=Search,grpc_code=OK} = %v, want 3", searches)
	}

	// Health and reflection.
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check = %v, %v; want SERVING", hc, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range rr.GetListServicesResponse().GetService() {
		found = found || s.GetName() == "retrieval.v1.RetrievalService"
	}
	if !found {
		t.Errorf("reflection lists %v, want retrieval.v1.RetrievalService", rr.GetListServicesResponse().GetService())
	}
}

// TestServerBadInput sends each kind of bad request and checks the status
// code and that the message names the problem; the server keeps serving.

// TestServerBadInput sends each kind of bad request and checks the status
// code and that the message names the problem; the server keeps serving.
func TestServerBadInput(t *testing.T) {
	c, _ := testServer(t)
	ctx := t.Context()
	seed(t, c)
	tooMany := make([]*retrievalv1.Document, service.MaxDocsPerUpsert+1)
	for i := range tooMany {
		tooMany[i] = &retrievalv1.Document{Id: fmt.Sprint(i), Content: "x"}
	}
	tests := []struct {
		name     string
		call     func() error
		code     codes.Code
		contains string
	}{
		{"empty query", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "  "})
			return err
		}, codes.InvalidArgument, "query is empty"},
		{"10000-character query", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: strings.Repeat("价", 10000)})
			return err
		}, codes.InvalidArgument, "10000 characters"},
		{"invalid UTF-8 query", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格\xff\xfe"})
			return err
		}, codes.InvalidArgument, "query is not valid UTF-8"},
		{"unknown collection", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "nope", Query: "价格"})
			return err
		}, codes.NotFound, `"nope"`},
		{"no collection", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Query: "价格"})
			return err
		}, codes.InvalidArgument, "collection is empty"},
		{"top_k 1000000", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", TopK: 1000000})
			return err
		}, codes.InvalidArgument, "top_k 1000000"},
		{"negative top_k", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", TopK: -1})
			return err
		}, codes.InvalidArgument, "top_k -1"},
		{"filter on an unknown field", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", Filter: &retrievalv1.SearchFilter{Metadata: map[string]string{"colour": "red"}}})
			return err
		}, codes.InvalidArgument, `"colour"`},
		{"unknown document", func() error {
			_, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "nope"})
			return err
		}, codes.NotFound, `"nope"`},
		{"malformed page token", func() error {
			_, err := c.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: "kb", PageToken: "!!!"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"page size over the cap", func() error {
			_, err := c.ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: "kb", PageSize: 5000})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"document without id", func() error {
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{{Content: "x"}}})
			return err
		}, codes.InvalidArgument, "documents[0].id"},
		{"empty document", func() error {
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{{Id: "e", Content: "  "}}})
			return err
		}, codes.InvalidArgument, "documents[0]"},
		{"duplicate ids", func() error {
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{{Id: "d", Content: "x"}, {Id: "d", Content: "y"}}})
			return err
		}, codes.InvalidArgument, "documents[1].id"},
		{"invalid UTF-8 content", func() error {
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{{Id: "u", Content: "\xff"}}})
			return err
		}, codes.InvalidArgument, "documents[0].content"},
		{"too many documents", func() error {
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: tooMany})
			return err
		}, codes.InvalidArgument, "over the limit"},
		{"negative fusion weight", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", Fusion: &retrievalv1.FusionWeights{Bm25: 1, Graph: -0.5}})
			return err
		}, codes.InvalidArgument, "fusion weight graph -0.5"},
		{"NaN fusion weight", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", Fusion: &retrievalv1.FusionWeights{Bm25: math.NaN()}})
			return err
		}, codes.InvalidArgument, "fusion weight bm25 NaN"},
		{"all fusion weights 0", func() error {
			zero := 0.0 // learned, when unset, is 1
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", Fusion: &retrievalv1.FusionWeights{Learned: &zero}})
			return err
		}, codes.InvalidArgument, "all 0"},
		{"unknown search mode", func() error {
			_, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", Mode: 42})
			return err
		}, codes.InvalidArgument, "mode 42"},
		{"collection with a NaN fusion weight", func() error {
			_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "nan", Fusion: &retrievalv1.FusionWeights{Outline: math.NaN()}}})
			return err
		}, codes.InvalidArgument, "fusion weight outline NaN"},
		{"collection with a NaN k1", func() error {
			k1 := math.NaN()
			_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "nank1", K1: &k1}})
			return err
		}, codes.InvalidArgument, "NaN"},
		{"bad collection name", func() error {
			_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "Bad Name!"}})
			return err
		}, codes.InvalidArgument, "collection name"},
		{"existing collection", func() error {
			_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}})
			return err
		}, codes.AlreadyExists, "kb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := status.Code(err); got != tt.code {
				t.Fatalf("status = %v (%v), want %v", got, err, tt.code)
			}
			if !strings.Contains(status.Convert(err).Message(), tt.contains) {
				t.Errorf("message %q does not contain %q", status.Convert(err).Message(), tt.contains)
			}
			// The server keeps serving.
			if _, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格"}); err != nil {
				t.Errorf("Search after bad request: %v", err)
			}
		})
	}

	// top_k 0 means the default of 10.
	var docs []*retrievalv1.Document
	for i := range 15 {
		docs = append(docs, &retrievalv1.Document{Id: fmt.Sprintf("many/%d", i), Content: fmt.Sprintf("价格说明第%d篇。", i)})
	}
	if _, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: docs}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格", TopK: 0})
	if err != nil || len(res.GetHits()) != 10 {
		t.Errorf("Search(top_k 0) = %d hits, %v; want the default 10", len(res.GetHits()), err)
	}
}

// TestBenchCommand runs the load test briefly against a server on loopback.

// TestServerTranscript: a transcript sent over gRPC keeps whole turns.
func TestServerTranscript(t *testing.T) {
	c, _ := testServer(t)
	seed(t, c)
	var b strings.Builder
	for i := range 30 {
		speaker := []string{"销售", "客户"}[i%2]
		fmt.Fprintf(&b, "%s：这是第%d轮发言，讨论价格、交付周期和售后服务的安排，请对方确认。\n", speaker, i+1)
	}
	_, err := c.UpsertDocuments(t.Context(), &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "roleplay", Title: "销售演练", Content: b.String(), Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_TRANSCRIPT},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.GetDocument(t.Context(), &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "roleplay"})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.GetChunks()) < 2 {
		t.Fatalf("transcript became %d chunks, want several", len(d.GetChunks()))
	}
	for _, ch := range d.GetChunks() {
		for _, line := range strings.Split(ch.GetText(), "\n") {
			if !strings.HasPrefix(line, "销售：") && !strings.HasPrefix(line, "客户：") {
				t.Errorf("chunk %s has a line that is not a whole turn: %q", ch.GetId(), line)
			}
		}
	}
}

func TestServerQuestionBank(t *testing.T) {
	c, _ := testServer(t)
	seed(t, c)
	ctx := t.Context()
	q := &retrievalv1.QuestionItem{
		Stem: "发现电气设备起火时，第一步应当做什么？", Answer: "A", Analysis: "电气火灾先断电，严禁用水扑救带电设备。",
		KnowledgePoint: "消防安全", Difficulty: "易", Type: "单选题",
		Options: []*retrievalv1.QuestionOption{{Label: "A", Text: "切断电源"}, {Label: "B", Text: "用水扑救"}},
	}
	// Through the ingest sink, as `zhisou ingest` sends a CSV question bank.
	sink := grpcapi.Sink{Addr: "bufnet", Client: c}
	outs, err := sink.Upsert(ctx, "kb", []ingest.Input{{ID: "bank", Title: "安全题库", Questions: []index.Question{
		*grpcapi.QuestionFromProto(q),
		{Stem: "干粉灭火器应对准火焰的哪个部位喷射？", Answer: "根部"},
	}}})
	if err != nil || len(outs) != 1 || outs[0] != index.Added {
		t.Fatalf("Sink.Upsert = %v, %v, want [added]", outs, err)
	}

	resp, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "电气设备起火", TopK: 3})
	if err != nil {
		t.Fatalf("Search error = %v", err)
	}
	if len(resp.GetHits()) == 0 {
		t.Fatalf("Search(电气设备起火) = no hits, want the question")
	}
	h := resp.GetHits()[0]
	if diff := cmp.Diff(q, h.GetQuestion(), protocmp.Transform()); diff != "" {
		t.Errorf("Search(电气设备起火) hit question mismatch (-want +got):\n%s", diff)
	}
	if want := []string{"安全题库", "消防安全"}; !slices.Equal(h.GetHeadingPath(), want) {
		t.Errorf("Search(电气设备起火) heading path = %q, want %q", h.GetHeadingPath(), want)
	}
	if !strings.Contains(h.GetText(), "答案：A") {
		t.Errorf("Search(电气设备起火) text = %q, want the rendered question", h.GetText())
	}
	// Passages of text have no question.
	resp, err = c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格异议", TopK: 1, Filter: &retrievalv1.SearchFilter{DocumentIds: []string{"sales/price"}}})
	if err != nil || len(resp.GetHits()) != 1 || resp.GetHits()[0].GetQuestion() != nil {
		t.Errorf("Search(价格异议) = %v, %v, want one hit without a question", resp.GetHits(), err)
	}

	d, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "bank"})
	if err != nil {
		t.Fatalf("GetDocument(bank) error = %v", err)
	}
	if len(d.GetChunks()) != 2 || d.GetChunks()[1].GetQuestion().GetAnswer() != "根部" {
		t.Errorf("GetDocument(bank) chunks = %v, want 2 with questions", d.GetChunks())
	}

	// A question without a stem is refused, naming the field.
	_, err = c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "ok", Content: "正文。"},
		{Id: "bad", Questions: []*retrievalv1.QuestionItem{q, {Answer: "B"}}},
	}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "documents[1].questions[1].stem") {
		t.Errorf("UpsertDocuments(question without stem) error = %v, want InvalidArgument naming documents[1].questions[1].stem", err)
	}
}

// TestUploadFiles: files streamed in parts are read on the server; a file
// name is needed before data; a stream past 64 MiB is refused as it passes.
func TestUploadFiles(t *testing.T) {
	srv := grpcapitest.Serve(t, retrieve.Options{})
	grpcapitest.Seed(t, srv.Client)
	s, err := srv.Client.UploadFiles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	md := []byte("# 上传的课程\n\n## 第一节\n\n销售要兑现每一个承诺。\n")
	for _, m := range []*retrievalv1.UploadFilesRequest{
		{Collection: "kb", FileName: "up/a.md", Data: md[:10]},
		{Data: md[10:]},
		{FileName: "up/b.txt", Data: []byte("第二个文件的正文。")},
		{FileName: "up/empty.txt"},
	} {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resp.GetFiles() {
		line := f.GetPath()
		for _, d := range f.GetDocuments() {
			line += " " + d.GetDocumentId() + " " + d.GetOutcome().String()
		}
		if f.GetSkipped() {
			line += " skipped"
		}
		got = append(got, line)
	}
	want := []string{"up/a.md up/a UPSERT_OUTCOME_ADDED", "up/b.txt up/b UPSERT_OUTCOME_ADDED", "up/empty.txt skipped"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("upload results %q, want %q", got, want)
	}
	d, err := srv.Client.GetDocument(t.Context(), &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "up/a"})
	if err != nil || !strings.Contains(d.GetChunks()[0].GetText(), "兑现") {
		t.Errorf("the uploaded document: %v, %v", d, err)
	}
	s, _ = srv.Client.UploadFiles(t.Context())
	s.Send(&retrievalv1.UploadFilesRequest{Collection: "kb", Data: []byte("no name")})
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "file_name") {
		t.Errorf("data before a file name: %v", err)
	}
	if testing.Short() {
		return
	}
	s, _ = srv.Client.UploadFiles(t.Context())
	part := make([]byte, 4<<20)
	var serr error
	for i := 0; i < 20 && serr == nil; i++ { // 80 MiB, past the 64 MiB limit
		serr = s.Send(&retrievalv1.UploadFilesRequest{Collection: "kb", FileName: fmt.Sprintf("big%d.txt", i), Data: part})
	}
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("an 80 MiB upload: %v; want RESOURCE_EXHAUSTED", err)
	}
}
