package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/httpapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// door is an HTTP/JSON server over a seeded gRPC test server's service.
type door struct {
	*grpcapitest.Server
	url string
}

func newDoor(t *testing.T, opts service.Options) *door {
	t.Helper()
	srv := grpcapitest.ServeWith(t, opts)
	h, err := httpapi.Handler(srv.Service, srv.Health, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &door{Server: srv, url: hs.URL}
}

// do sends a request with a JSON body (none when body is "") and returns the
// status and the response body.
func (d *door) do(t *testing.T, method, path, body, key string) (int, []byte) {
	t.Helper()
	if body == "" {
		return d.send(t, method, path, nil, "", key)
	}
	return d.send(t, method, path, strings.NewReader(body), "application/json", key)
}

// send sends a request with a body of the content type (none when body is
// nil) and the API key (none when ""), and returns the status and the
// response body.
func (d *door) send(t *testing.T, method, path string, body io.Reader, ctype, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestSearchEqualsGRPC: a search over HTTP/JSON answers what the same search
// over gRPC answers: the same chunks, scores and order; and each highlight's
// character offsets slice the same text as its byte offsets.
func TestSearchEqualsGRPC(t *testing.T) {
	d := newDoor(t, service.Options{})
	grpcapitest.Seed(t, d.Client)
	for _, q := range []string{"客户说太贵怎么办", "有限空间作业", "PPR-9087 节能"} {
		want, err := d.Client.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: q, TopK: 5})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"query": q, "top_k": 5})
		code, b := d.do(t, "POST", "/v1/collections/kb:search", string(body), "")
		if code != http.StatusOK {
			t.Fatalf("search %q: %d %s", q, code, b)
		}
		var got retrievalv1.SearchResponse
		if err := protojson.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.GetHits()) == 0 || len(got.GetHits()) != len(want.GetHits()) {
			t.Fatalf("search %q: %d hits over HTTP, %d over gRPC", q, len(got.GetHits()), len(want.GetHits()))
		}
		for i, h := range got.GetHits() {
			w := want.GetHits()[i]
			if h.GetChunkId() != w.GetChunkId() || h.GetScore() != w.GetScore() {
				t.Errorf("search %q hit %d: %s %v over HTTP, %s %v over gRPC", q, i, h.GetChunkId(), h.GetScore(), w.GetChunkId(), w.GetScore())
			}
			runes := []rune(h.GetText())
			for _, hl := range h.GetHighlights() {
				byBytes := h.GetText()[hl.GetStart():hl.GetEnd()]
				byChars := string(runes[hl.GetStartChar():hl.GetEndChar()])
				if byBytes != byChars || byBytes == "" || !utf8.ValidString(byBytes) {
					t.Errorf("highlight %v: bytes give %q, characters %q", hl, byBytes, byChars)
				}
			}
		}
		if !bytes.Contains(b, []byte(`"chunk_id"`)) {
			t.Errorf("JSON field names are not the proto's: %.200s", b)
		}
	}
}

// TestRoutes walks the other routes once: collections, documents (an id with
// a slash), lexicon, keys.
func TestRoutes(t *testing.T) {
	d := newDoor(t, service.Options{})
	for _, step := range []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"POST", "/v1/collections", `{"name":"kb","description":"销售课程"}`, 200, `"name":"kb"`},
		{"GET", "/v1/collections", "", 200, `"kb"`},
		{"POST", "/v1/collections/kb/documents:upsert", `{"documents":[{"id":"sales/price","content":"# 价格异议\n\n客户说太贵时先确认预算。","format":"DOCUMENT_FORMAT_MARKDOWN"}]}`, 200, `UPSERT_OUTCOME_ADDED`},
		{"GET", "/v1/collections/kb", "", 200, `"document_count":"1"`},
		{"GET", "/v1/collections/kb/documents/sales/price", "", 200, `先确认预算`},
		{"GET", "/v1/collections/kb/documents?page_size=10", "", 200, `"sales/price"`},
		{"PUT", "/v1/collections/kb/lexicon", `{"terms":["价格异议"]}`, 200, `"价格异议"`},
		{"GET", "/v1/collections/kb/lexicon", "", 200, `"价格异议"`},
		{"POST", "/v1/collections/kb/documents:delete", `{"document_ids":["sales/price","nope"]}`, 200, `"missing":["nope"]`},
		{"GET", "/v1/collections/kb/documents/sales/price", "", 404, `"code":5`},
		{"DELETE", "/v1/collections/kb", "", 200, `{}`},
		{"GET", "/v1/collections/kb", "", 404, `not found`},
		{"GET", "/healthz", "", 200, "ok"},
		{"GET", "/v1/keys", "", 200, `"keys":[]`},
	} {
		code, b := d.do(t, step.method, step.path, step.body, "")
		if code != step.want || !strings.Contains(string(b), step.contains) {
			t.Errorf("%s %s = %d %s; want %d containing %s", step.method, step.path, code, b, step.want, step.contains)
		}
	}
}

// TestBadRequests: malformed JSON, an unknown field, another content type,
// an oversized body, a bad field value and a malformed Authorization header
// each get a JSON error with the gRPC code, a message, and the field where
// there is one; the server goes on serving.
func TestBadRequests(t *testing.T) {
	d := newDoor(t, service.Options{})
	grpcapitest.Seed(t, d.Client)
	for _, tc := range []struct {
		name, body, ctype, auth string
		want                    int
		code                    float64
		says                    string
	}{
		{"malformed JSON", `{"query": "价格`, "application/json", "", 400, 3, ""},
		{"unknown field", `{"query": "价格", "topk": 3}`, "application/json", "", 400, 3, "topk"},
		{"form body", `query=价格`, "application/x-www-form-urlencoded", "", 415, 3, "application/json"},
		{"bad top_k", `{"query": "价格", "top_k": 100000}`, "application/json", "", 400, 3, "top_k"},
		{"Basic auth", `{"query": "价格"}`, "application/json", "Basic dXNlcjpwYXNz", 401, 16, "Bearer"},
		{"unknown key", `{"query": "价格"}`, "application/json", "Bearer zsk_000000000000_x", 401, 16, "unknown key"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", d.url+"/v1/collections/kb:search", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Code    float64          `json:"code"`
			Message string           `json:"message"`
			Details []map[string]any `json:"details"`
		}
		if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != tc.want || e.Code != tc.code || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %s; want %d, code %v, saying %q", tc.name, resp.StatusCode, b, tc.want, tc.code, tc.says)
		}
		if tc.name == "bad top_k" && !strings.Contains(string(b), `"field":"top_k"`) {
			t.Errorf("bad top_k: the field is not in the details: %s", b)
		}
	}
	// 65 MiB announced: refused before the body is read.
	req := httptest.NewRequest("POST", "/v1/collections/kb:search", strings.NewReader("{}"))
	req.ContentLength = httpapi.MaxBodyBytes + 1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h, _ := httpapi.Handler(d.Service, d.Health, nil)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"code":8`) {
		t.Errorf("an oversized body: %d %s; want 413 with code 8", rec.Code, rec.Body.String())
	}
	if code, _ := d.do(t, "POST", "/v1/collections/kb:search", `{"query":"价格"}`, ""); code != 200 {
		t.Errorf("a good search after the bad ones: %d", code)
	}
}

// httpRoutes has a request for every route of retrieval_http.yaml, keyed by
// RPC, on collection "b" where the route names one. TestEveryRouteIsGuarded
// fails when the file has a route this table lacks.
var httpRoutes = map[string]struct {
	method, path, body string
	global             bool // acts on no one collection (the key RPCs)
}{
	"CreateCollection": {"POST", "/v1/collections", `{"name":"b-new"}`, false},
	"ListCollections":  {"GET", "/v1/collections", "", false},
	"GetCollection":    {"GET", "/v1/collections/b", "", false},
	"DeleteCollection": {"DELETE", "/v1/collections/b-doomed", "", false},
	"UpsertDocuments":  {"POST", "/v1/collections/b/documents:upsert", `{"documents":[{"id":"n","content":"新内容。"}]}`, false},
	"DeleteDocuments":  {"POST", "/v1/collections/b/documents:delete", `{"document_ids":["n"]}`, false},
	"GetDocument":      {"GET", "/v1/collections/b/documents/sales/price", "", false},
	"ListDocuments":    {"GET", "/v1/collections/b/documents", "", false},
	"Search":           {"POST", "/v1/collections/b:search", `{"query":"价格"}`, false},
	"GetLexicon":       {"GET", "/v1/collections/b/lexicon", "", false},
	"ReplaceLexicon":   {"PUT", "/v1/collections/b/lexicon", `{"terms":["价格"]}`, false},
	"CreateKey":        {"POST", "/v1/keys", `{"name":"x","role":"read","collections":["b"]}`, true},
	"ListKeys":         {"GET", "/v1/keys", "", true},
	"RevokeKey":        {"POST", "/v1/keys/000000000000:revoke", "", true},
	"GetStatus":        {"GET", "/v1/status", "", true},
	"Learn":            {"POST", "/v1/collections/b:learn", `{"pairs":[{"question":"价格怎么定","chunk_id":"sales/price"}]}`, false},
	"GetLearned":       {"GET", "/v1/collections/b/learned", "", false},
}

// TestEveryRouteIsGuarded: every HTTP route answers 401 without a key, and
// 403 to a key that does not reach its collection (or, for the key routes,
// every collection), on a server that requires keys; a key that may, passes.
func TestEveryRouteIsGuarded(t *testing.T) {
	yml, err := os.ReadFile("../../proto/retrieval/v1/retrieval_http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rpcs []string
	for _, m := range regexp.MustCompile(`selector: retrieval\.v1\.RetrievalService\.(\w+)`).FindAllSubmatch(yml, -1) {
		rpcs = append(rpcs, string(m[1]))
		if _, ok := httpRoutes[string(m[1])]; !ok {
			t.Errorf("route of %s has no row in httpRoutes: add one, so that its guard is tested", m[1])
		}
	}
	if len(rpcs) != len(httpRoutes) {
		t.Errorf("retrieval_http.yaml has %d routes, httpRoutes %d", len(rpcs), len(httpRoutes))
	}
	d := newDoor(t, service.Options{RequireAuth: true})
	admin, _, err := d.Store.CreateKey("root", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	adminA, _, err := d.Store.CreateKey("admin-a", index.RoleAdmin, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "b-doomed"} {
		if code, b := d.do(t, "POST", "/v1/collections", `{"name":"`+c+`"}`, admin); code != 200 {
			t.Fatalf("create %s: %d %s", c, code, b)
		}
	}
	for _, rpc := range slices.Sorted(func(yield func(string) bool) {
		for k := range httpRoutes {
			if !yield(k) {
				return
			}
		}
	}) {
		r := httpRoutes[rpc]
		if code, b := d.do(t, r.method, r.path, r.body, ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a key = %d %s; want 401", r.method, r.path, code, b)
		}
		code, b := d.do(t, r.method, r.path, r.body, adminA)
		if rpc == "ListCollections" {
			if code != 200 || strings.Contains(string(b), `"name":"b"`) {
				t.Errorf("ListCollections with a key for a = %d %s; want 200 without b", code, b)
			}
		} else if code != http.StatusForbidden {
			t.Errorf("%s %s with an admin key for a = %d %s; want 403", r.method, r.path, code, b)
		}
		if code, b := d.do(t, r.method, r.path, r.body, admin); code != 200 && code != 404 {
			t.Errorf("%s %s with the admin key = %d %s; want 200 (or 404)", r.method, r.path, code, b)
		}
	}
}
