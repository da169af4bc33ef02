package grpcapi_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// lexiconServer runs the gRPC server over an in-memory connection and also
// returns its store, so that a test can wait for background re-indexing.
func lexiconServer(t *testing.T) (retrievalv1.RetrievalServiceClient, *store.Store) {
	srv := grpcapitest.Serve(t, retrieve.Options{})
	return srv.Client, srv.Store
}

const (
	feedbackMD  = grpcapitest.FeedbackMD
	canteenMD   = grpcapitest.CanteenMD
	catalogueMD = grpcapitest.CatalogueMD
)

// TestLexiconOverGRPC is the target of the lexicon: a course-jargon term and
// a product code that gse splits are found as whole terms once added, through
// a running server, without a restart.
func TestLexiconOverGRPC(t *testing.T) {
	c, st := lexiconServer(t)
	ctx := t.Context()
	if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "course"}}); err != nil {
		t.Fatal(err)
	}
	md := retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN
	if _, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "course", Documents: []*retrievalv1.Document{
		{Id: "leader/feedback", Content: feedbackMD, Format: md},
		{Id: "canteen", Content: canteenMD, Format: md},
		{Id: "catalogue", Content: catalogueMD, Format: md},
	}}); err != nil {
		t.Fatal(err)
	}
	search := func(q string) []*retrievalv1.SearchHit {
		t.Helper()
		res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "course", Query: q})
		if err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
		if len(res.GetHits()) == 0 {
			t.Fatalf("Search(%q) found nothing", q)
		}
		return res.GetHits()
	}
	heading := func(h *retrievalv1.SearchHit) string { return index.HeadingString(h.GetHeadingPath()) }
	cases := []struct {
		query, whole      string
		pieces, wholeHead string // the document with the pieces only; the heading of the chunk with the whole term
	}{
		{"三明治反馈法", "三明治反馈法", "canteen", "第四章 绩效沟通 > 4.1 谈话的结构"},
		{"天枢X9", "天枢x9", "catalogue", "第四章 绩效沟通 > 4.2 工具"},
	}
	// Before: gse cuts both into pieces, and the short chunks that merely
	// contain the pieces rank first.
	for _, tc := range cases {
		hits := search(tc.query)
		if hits[0].GetDocumentId() != tc.pieces {
			t.Errorf("before the lexicon, Search(%q) ranks %s first, want %s (pieces only)", tc.query, hits[0].GetDocumentId(), tc.pieces)
		}
		for _, h := range hits {
			if slices.Contains(h.GetMatchedTerms(), tc.whole) {
				t.Errorf("before the lexicon, Search(%q) matched the whole term in %s", tc.query, h.GetChunkId())
			}
		}
	}

	resp, err := c.ReplaceLexicon(ctx, &retrievalv1.ReplaceLexiconRequest{Collection: "course", Lexicon: &retrievalv1.Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Two chunks hold a whole term (4.1 and 4.2); the others hold pieces only.
	if resp.GetReindexedChunks() != 2 || resp.GetVersion() == 0 || !slices.Equal(resp.GetLexicon().GetTerms(), []string{"三明治反馈法", "天枢x9"}) {
		t.Fatalf("ReplaceLexicon = %v, want 2 chunks to re-index, a version, the normalised terms", resp)
	}
	if err := st.WaitReindex(ctx, "course"); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetLexicon(ctx, &retrievalv1.GetLexiconRequest{Collection: "course"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPendingReindex() != 0 || got.GetVersion() != resp.GetVersion() || len(got.GetLexicon().GetTerms()) != 2 {
		t.Errorf("GetLexicon = %v, want version %d, 2 terms, nothing pending", got, resp.GetVersion())
	}
	// After, on the same server: the chunk with the whole term ranks first.
	for _, tc := range cases {
		hits := search(tc.query)
		if heading(hits[0]) != tc.wholeHead || !slices.Contains(hits[0].GetMatchedTerms(), tc.whole) {
			t.Errorf("after the lexicon, Search(%q) ranks %s (%s, matched %v) first, want the chunk under %q matching %q",
				tc.query, hits[0].GetDocumentId(), heading(hits[0]), hits[0].GetMatchedTerms(), tc.wholeHead, tc.whole)
		}
	}
	if err := st.Verify(ctx, "course"); err != nil {
		t.Error(err)
	}

	// Synonyms change no segmentation: nothing to re-index. The synonym finds
	// the lesson that uses the other name.
	resp, err = c.ReplaceLexicon(ctx, &retrievalv1.ReplaceLexiconRequest{Collection: "course", Lexicon: &retrievalv1.Lexicon{
		Terms:     []string{"三明治反馈法", "天枢X9"},
		Synonyms:  []*retrievalv1.Synonym{{Term: "汉堡包法", Alternatives: []string{"三明治反馈法"}}, {Term: "三明治反馈法", Alternatives: []string{"汉堡包法"}}},
		StopWords: []string{"通知"},
	}})
	if err != nil || resp.GetReindexedChunks() != 0 {
		t.Fatalf("ReplaceLexicon(synonyms, stop words) = %v, %v; want nothing to re-index", resp, err)
	}
	if hits := search("汉堡包法"); heading(hits[0]) != "第四章 绩效沟通 > 4.1 谈话的结构" {
		t.Errorf("Search(汉堡包法) with its synonym ranks %s (%s) first, want the 三明治反馈法 lesson", hits[0].GetDocumentId(), heading(hits[0]))
	}
	// A query of stop words only is searched as written.
	if hits := search("通知"); hits[0].GetDocumentId() != "canteen" {
		t.Errorf("Search(通知), a stop word only, ranks %s first, want canteen", hits[0].GetDocumentId())
	}
}

func TestLexiconBadRequests(t *testing.T) {
	c, st := lexiconServer(t)
	ctx := t.Context()
	if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "one"}}); err != nil {
		t.Fatal(err)
	}
	// A collection with a single chunk.
	if _, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "one", Documents: []*retrievalv1.Document{
		{Id: "only", Content: "黄金三问：问目标、问现状、问下一步。", Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN},
	}}); err != nil {
		t.Fatal(err)
	}
	lex := func(terms ...string) *retrievalv1.Lexicon { return &retrievalv1.Lexicon{Terms: terms} }
	tests := []struct {
		name string
		req  *retrievalv1.ReplaceLexiconRequest
		code codes.Code
		msg  string
	}{
		{"no collection", &retrievalv1.ReplaceLexiconRequest{Lexicon: lex("a")}, codes.InvalidArgument, "collection is empty"},
		{"unknown collection", &retrievalv1.ReplaceLexiconRequest{Collection: "nope", Lexicon: lex("a")}, codes.NotFound, "nope"},
		{"no lexicon", &retrievalv1.ReplaceLexiconRequest{Collection: "one"}, codes.InvalidArgument, "lexicon is required"},
		{"empty term", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: lex("黄金三问", "")}, codes.InvalidArgument, "terms[1] is empty"},
		{"duplicate term", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: lex("XQ-7700", "xq-7700")}, codes.InvalidArgument, `terms[1] "xq-7700" duplicates terms[0]`},
		{"10000-character term", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: lex(strings.Repeat("问", 10_000))}, codes.InvalidArgument, "terms[0] \"问问问问问问问问问问问问问问问问问问问问问问问问\"… (10000 characters) is over the limit of 64 characters"},
		{"invalid UTF-8", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: &retrievalv1.Lexicon{StopWords: []string{"\xff"}}}, codes.InvalidArgument, "stop_words[0] is not valid UTF-8"},
		{"synonym without alternatives", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: &retrievalv1.Lexicon{Synonyms: []*retrievalv1.Synonym{{Term: "a"}}}}, codes.InvalidArgument, "synonyms[0]"},
		// Accepted: a cycle expands one hop each way.
		{"synonym cycle", &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: &retrievalv1.Lexicon{Synonyms: []*retrievalv1.Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "b", Alternatives: []string{"a"}}}}}, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ReplaceLexicon(ctx, tt.req)
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("ReplaceLexicon() = %v, want %v containing %q", err, tt.code, tt.msg)
			}
		})
	}
	if _, err := c.GetLexicon(ctx, &retrievalv1.GetLexiconRequest{Collection: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetLexicon(unknown collection) = %v, want NotFound", err)
	}
	if _, err := c.GetLexicon(ctx, &retrievalv1.GetLexiconRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetLexicon(no collection) = %v, want InvalidArgument", err)
	}
	// The rejected requests harmed nothing; the single chunk takes a lexicon.
	resp, err := c.ReplaceLexicon(ctx, &retrievalv1.ReplaceLexiconRequest{Collection: "one", Lexicon: lex("黄金三问")})
	if err != nil || resp.GetReindexedChunks() != 1 {
		t.Fatalf("ReplaceLexicon on a one-chunk collection = %v, %v; want 1 chunk to re-index", resp, err)
	}
	if err := st.WaitReindex(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "one", Query: "黄金三问"})
	if err != nil || len(res.GetHits()) != 1 || !slices.Contains(res.GetHits()[0].GetMatchedTerms(), "黄金三问") {
		t.Errorf("Search(黄金三问) = %v, %v; want the chunk, matched whole", res, err)
	}
	if err := st.Verify(ctx, "one"); err != nil {
		t.Error(err)
	}
}
