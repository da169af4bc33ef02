package mcpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/mcpapi"
	"github.com/zhisou/zhisou/internal/service"
	"github.com/zhisou/zhisou/retrieve"
)

// connect runs the tools over b in memory and returns a client session.
func connect(t *testing.T, s *mcp.Server) *mcp.ClientSession {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	if _, err := s.Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, err.Error()
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return res, b.String()
}

// TestTools drives every tool with the SDK's client, over the gRPC backend
// 'zhisou mcp' uses: list collections, search with evidence, a document's
// outline, a section; then missing arguments and an unknown collection,
// which are errors the agent can read.
func TestTools(t *testing.T) {
	srv := grpcapitest.Serve(t, retrieve.Options{})
	grpcapitest.Seed(t, srv.Client)
	cs := connect(t, mcpapi.NewServer(mcpapi.Client(srv.Client), nil, "test"))
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "get_outline,list_collections,read_section,search" {
		t.Errorf("tools %v", names)
	}
	if _, out := call(t, cs, "list_collections", nil); !strings.Contains(out, "kb: 2 documents") {
		t.Errorf("list_collections: %q", out)
	}
	res, out := call(t, cs, "search", map[string]any{"collection": "kb", "query": "客户说太贵怎么办", "top_k": 3})
	if res == nil || res.IsError || !strings.Contains(out, "[sales/price]") || !strings.Contains(out, "found by: bm25 rank") {
		t.Fatalf("search: %q", out)
	}
	var structured mcpapi.SearchOut
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &structured); err != nil || len(structured.Hits) == 0 || structured.Hits[0].DocumentID != "sales/price" || structured.Hits[0].Evidence == "" {
		t.Errorf("search structured content: %s (%v)", b, err)
	}
	if _, out := call(t, cs, "get_outline", map[string]any{"collection": "kb", "document_id": "sales/price"}); !strings.Contains(out, "- 第二章 价格异议处理") || !strings.Contains(out, "  - 2.1 确认预算") {
		t.Errorf("get_outline: %q", out)
	}
	if _, out := call(t, cs, "read_section", map[string]any{"collection": "kb", "document_id": "sales/price", "heading_path": []string{"第二章 价格异议处理", "2.1 确认预算"}}); !strings.Contains(out, "折扣超过15%") || strings.Contains(out, "节能收益") {
		t.Errorf("read_section: %q", out)
	}
	for _, tc := range []struct {
		tool string
		args map[string]any
		says string
	}{
		{"search", map[string]any{"collection": "kb"}, "query"},
		{"search", map[string]any{"query": "价格"}, "collection"},
		{"search", map[string]any{"collection": "nope", "query": "价格"}, "not found"},
		{"get_outline", map[string]any{"collection": "kb"}, "document_id"},
		{"read_section", map[string]any{"collection": "kb", "document_id": "sales/price", "heading_path": []string{"没有这一节"}}, "no section"},
	} {
		res, out := call(t, cs, tc.tool, tc.args)
		if (res != nil && !res.IsError) || !strings.Contains(out, tc.says) {
			t.Errorf("%s %v: %q (error %v); want an error saying %q", tc.tool, tc.args, out, res != nil && res.IsError, tc.says)
		}
	}
}

// headerTransport adds a header to every request.
type headerTransport struct{ key, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// TestStreamableHTTP: the tools over streamable HTTP, in process over the
// service, need a key that reaches the collection.
func TestStreamableHTTP(t *testing.T) {
	srv := grpcapitest.ServeWith(t, service.Options{RequireAuth: true})
	admin, _, err := srv.Store.CreateKey("root", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := srv.Store.CreateKey("other", index.RoleRead, []string{"other"})
	if err != nil {
		t.Fatal(err)
	}
	grpcapitest.SeedAs(t, srv.Client, admin)
	hs := httptest.NewServer(mcpapi.HTTPHandler(srv.Service, nil, "test"))
	t.Cleanup(hs.Close)
	session := func(token string) *mcp.ClientSession {
		c := &http.Client{Transport: headerTransport{"Authorization", "Bearer " + token}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: hs.URL, HTTPClient: c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	args := map[string]any{"collection": "kb", "query": "有限空间作业"}
	if res, out := call(t, session(admin), "search", args); res == nil || res.IsError || !strings.Contains(out, "safety/rules") {
		t.Errorf("search over HTTP with the admin key: %q", out)
	}
	if res, out := call(t, session(other), "search", args); (res != nil && !res.IsError) || !strings.Contains(out, "may not reach") {
		t.Errorf("search over HTTP with another collection's key: %q", out)
	}
}
