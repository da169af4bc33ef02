// Package mcpapi is the MCP door (Model Context Protocol, with
// github.com/modelcontextprotocol/go-sdk): tools an agent calls to list
// collections, search one (with the evidence of each hit), read a
// document's outline, and read a section. The tools call the RetrievalService
// API: over gRPC for 'zhisou mcp' on stdio, in process for the streamable
// HTTP endpoint of 'zhisou serve' (/mcp), so they run the same validation,
// authorisation and search as every other door.
package mcpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// Backend is what the tools call: the RetrievalService calls they need.
type Backend interface {
	ListCollections(ctx context.Context, req *retrievalv1.ListCollectionsRequest) (*retrievalv1.ListCollectionsResponse, error)
	Search(ctx context.Context, req *retrievalv1.SearchRequest) (*retrievalv1.SearchResponse, error)
	GetDocument(ctx context.Context, req *retrievalv1.GetDocumentRequest) (*retrievalv1.GetDocumentResponse, error)
}

// Client adapts a gRPC client (which carries its own API key) to Backend.
func Client(c retrievalv1.RetrievalServiceClient) Backend { return grpcBackend{c} }

type grpcBackend struct {
	c retrievalv1.RetrievalServiceClient
}

func (g grpcBackend) ListCollections(ctx context.Context, req *retrievalv1.ListCollectionsRequest) (*retrievalv1.ListCollectionsResponse, error) {
	return g.c.ListCollections(ctx, req)
}

func (g grpcBackend) Search(ctx context.Context, req *retrievalv1.SearchRequest) (*retrievalv1.SearchResponse, error) {
	return g.c.Search(ctx, req)
}

func (g grpcBackend) GetDocument(ctx context.Context, req *retrievalv1.GetDocumentRequest) (*retrievalv1.GetDocumentResponse, error) {
	return g.c.GetDocument(ctx, req)
}

// Authenticator puts the caller's key into ctx from the HTTP headers of a
// tool call (nil headers on stdio); nil means no authentication here.
type Authenticator func(ctx context.Context, h http.Header) (context.Context, error)

// NewServer returns the MCP server with the tools over b.
func NewServer(b Backend, auth Authenticator, version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "zhisou", Title: "zhisou 知搜: Chinese training material search", Version: version}, nil)
	t := tools{b: b, auth: auth}
	mcp.AddTool(s, &mcp.Tool{Name: "list_collections", Description: "List the knowledge bases (collections) with their document and chunk counts."}, t.listCollections)
	mcp.AddTool(s, &mcp.Tool{Name: "search", Description: "Search a collection for the passages that answer a question (Chinese or mixed text). " +
		"Each hit gives its document, heading path, score, text and the evidence of how it was found."}, t.search)
	mcp.AddTool(s, &mcp.Tool{Name: "get_outline", Description: "The outline (heading tree) of a document, to see how it is organised before reading a section."}, t.outline)
	mcp.AddTool(s, &mcp.Tool{Name: "read_section", Description: "The text of a document's section: every passage under a heading path (the whole document when heading_path is empty)."}, t.section)
	return s
}

type tools struct {
	b    Backend
	auth Authenticator
}

// ctx authenticates a tool call.
func (t tools) ctx(ctx context.Context, req *mcp.CallToolRequest) (context.Context, error) {
	if t.auth == nil {
		return ctx, nil
	}
	var h http.Header
	if req != nil && req.Extra != nil {
		h = req.Extra.Header
	}
	return t.auth(ctx, h)
}

// ListCollectionsIn takes no arguments.
type ListCollectionsIn struct{}

// CollectionOut describes a collection.
type CollectionOut struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Documents   int64  `json:"documents"`
	Chunks      int64  `json:"chunks"`
}

// ListCollectionsOut lists collections.
type ListCollectionsOut struct {
	Collections []CollectionOut `json:"collections"`
}

func (t tools) listCollections(ctx context.Context, req *mcp.CallToolRequest, _ ListCollectionsIn) (*mcp.CallToolResult, ListCollectionsOut, error) {
	out := ListCollectionsOut{Collections: []CollectionOut{}}
	ctx, err := t.ctx(ctx, req)
	if err != nil {
		return nil, out, err
	}
	token := ""
	for {
		resp, err := t.b.ListCollections(ctx, &retrievalv1.ListCollectionsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, out, err
		}
		for _, c := range resp.GetCollections() {
			out.Collections = append(out.Collections, CollectionOut{Name: c.GetName(), Description: c.GetDescription(), Documents: c.GetDocumentCount(), Chunks: c.GetChunkCount()})
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	var b strings.Builder
	for _, c := range out.Collections {
		fmt.Fprintf(&b, "%s: %d documents, %d chunks", c.Name, c.Documents, c.Chunks)
		if c.Description != "" {
			fmt.Fprintf(&b, " (%s)", c.Description)
		}
		b.WriteByte('\n')
	}
	if len(out.Collections) == 0 {
		b.WriteString("no collections\n")
	}
	return text(b.String()), out, nil
}

// SearchIn is a search.
type SearchIn struct {
	Collection string `json:"collection" jsonschema:"the collection to search (see list_collections)"`
	Query      string `json:"query" jsonschema:"the question or keywords"`
	TopK       int    `json:"top_k,omitempty" jsonschema:"how many hits (default 5, at most 100)"`
}

// HitOut is a search hit.
type HitOut struct {
	DocumentID    string   `json:"document_id"`
	DocumentTitle string   `json:"document_title"`
	HeadingPath   []string `json:"heading_path"`
	ChunkID       string   `json:"chunk_id"`
	Score         float64  `json:"score"`
	Text          string   `json:"text"`
	MatchedTerms  []string `json:"matched_terms"`
	Evidence      string   `json:"evidence"`
}

// SearchOut is a search's hits, best first.
type SearchOut struct {
	Hits []HitOut `json:"hits"`
}

func (t tools) search(ctx context.Context, req *mcp.CallToolRequest, in SearchIn) (*mcp.CallToolResult, SearchOut, error) {
	out := SearchOut{Hits: []HitOut{}}
	ctx, err := t.ctx(ctx, req)
	if err != nil {
		return nil, out, err
	}
	k := in.TopK
	if k == 0 {
		k = 5
	}
	resp, err := t.b.Search(ctx, &retrievalv1.SearchRequest{Collection: in.Collection, Query: in.Query, TopK: int32(k)})
	if err != nil {
		return nil, out, err
	}
	var b strings.Builder
	for i, h := range resp.GetHits() {
		ho := HitOut{DocumentID: h.GetDocumentId(), DocumentTitle: h.GetDocumentTitle(), HeadingPath: h.GetHeadingPath(), ChunkID: h.GetChunkId(),
			Score: h.GetScore(), Text: h.GetText(), MatchedTerms: h.GetMatchedTerms(), Evidence: evidence(h.GetEvidence())}
		if ho.HeadingPath == nil {
			ho.HeadingPath = []string{}
		}
		out.Hits = append(out.Hits, ho)
		fmt.Fprintf(&b, "%d. %s [%s] score %.3f\n   %s\n   %s\n   found by: %s\n\n", i+1, ho.DocumentTitle, ho.DocumentID, ho.Score,
			strings.Join(ho.HeadingPath, " > "), ho.Text, ho.Evidence)
	}
	if len(out.Hits) == 0 {
		fmt.Fprintf(&b, "no passage of %s matches %q\n", in.Collection, in.Query)
	}
	return text(b.String()), out, nil
}

// evidence says how a hit was found, in a line.
func evidence(e *retrievalv1.Evidence) string {
	if e == nil {
		return ""
	}
	var parts []string
	if e.GetBm25Rank() > 0 {
		parts = append(parts, fmt.Sprintf("bm25 rank %d", e.GetBm25Rank()))
	}
	if e.GetOutlineRank() > 0 {
		parts = append(parts, fmt.Sprintf("outline rank %d (heading %s)", e.GetOutlineRank(), strings.Join(e.GetOutlinePath(), " > ")))
	}
	if e.GetGraphRank() > 0 {
		parts = append(parts, fmt.Sprintf("keyword graph rank %d (via %s)", e.GetGraphRank(), strings.Join(e.GetGraphPath(), " → ")))
	}
	return strings.Join(parts, "; ")
}

// DocumentIn names a document.
type DocumentIn struct {
	Collection string `json:"collection" jsonschema:"the collection"`
	DocumentID string `json:"document_id" jsonschema:"the document id (as search hits give it)"`
}

// HeadingOut is a heading of a document's outline.
type HeadingOut struct {
	Title       string   `json:"title"`
	HeadingPath []string `json:"heading_path"`
	Depth       int      `json:"depth"`
	Passages    int      `json:"passages"`
}

// OutlineOut is a document's outline: its headings in document order, each
// with its depth (0 for the top level), flattened.
type OutlineOut struct {
	DocumentID string       `json:"document_id"`
	Title      string       `json:"title"`
	Headings   []HeadingOut `json:"headings"`
}

func (t tools) outline(ctx context.Context, req *mcp.CallToolRequest, in DocumentIn) (*mcp.CallToolResult, OutlineOut, error) {
	out := OutlineOut{DocumentID: in.DocumentID, Headings: []HeadingOut{}}
	ctx, err := t.ctx(ctx, req)
	if err != nil {
		return nil, out, err
	}
	resp, err := t.b.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: in.Collection, DocumentId: in.DocumentID})
	if err != nil {
		return nil, out, err
	}
	out.Title = resp.GetDocument().GetTitle()
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s]\n", out.Title, in.DocumentID)
	var walk func(nodes []*retrievalv1.OutlineNode, depth int)
	walk = func(nodes []*retrievalv1.OutlineNode, depth int) {
		for _, n := range nodes {
			title := n.GetTitle()
			if title == "" {
				title = "(before the first heading)"
			}
			fmt.Fprintf(&b, "%s- %s (%d passages)\n", strings.Repeat("  ", depth), title, len(n.GetChunkIds()))
			out.Headings = append(out.Headings, HeadingOut{Title: n.GetTitle(), HeadingPath: nonNil(n.GetHeadingPath()), Depth: depth, Passages: len(n.GetChunkIds())})
			walk(n.GetChildren(), depth+1)
		}
	}
	walk(resp.GetOutline(), 0)
	return text(b.String()), out, nil
}

// SectionIn names a section.
type SectionIn struct {
	Collection  string   `json:"collection" jsonschema:"the collection"`
	DocumentID  string   `json:"document_id" jsonschema:"the document id"`
	HeadingPath []string `json:"heading_path,omitempty" jsonschema:"the section's heading path, outermost first, as get_outline or a search hit gives it; empty for the whole document"`
}

// SectionOut is a section's passages.
type SectionOut struct {
	DocumentID  string   `json:"document_id"`
	HeadingPath []string `json:"heading_path"`
	Text        string   `json:"text"`
	Passages    int      `json:"passages"`
}

func (t tools) section(ctx context.Context, req *mcp.CallToolRequest, in SectionIn) (*mcp.CallToolResult, SectionOut, error) {
	out := SectionOut{DocumentID: in.DocumentID, HeadingPath: nonNil(in.HeadingPath)}
	ctx, err := t.ctx(ctx, req)
	if err != nil {
		return nil, out, err
	}
	resp, err := t.b.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: in.Collection, DocumentId: in.DocumentID})
	if err != nil {
		return nil, out, err
	}
	var b strings.Builder
	for _, c := range resp.GetChunks() {
		if !hasPrefix(c.GetHeadingPath(), in.HeadingPath) {
			continue
		}
		if out.Passages > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(c.GetText())
		out.Passages++
	}
	if out.Passages == 0 {
		return nil, out, fmt.Errorf("document %s has no section %q (see get_outline)", in.DocumentID, strings.Join(in.HeadingPath, " > "))
	}
	out.Text = b.String()
	return text(out.Text), out, nil
}

func hasPrefix(path, prefix []string) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i, p := range prefix {
		if path[i] != p {
			return false
		}
	}
	return true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
