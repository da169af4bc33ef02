// Package fakellm is a fake OpenAI-protocol chat server for tests. It
// serves POST /v1/chat/completions (and /chat/completions) on an
// httptest.Server, answering each request with the next scripted Mode, and
// records the request bodies so tests can check what was sent.
//
// Modes that wait (Delay, Trickle, the Stream* modes) stop as soon as the
// client goes away, so Close never hangs on them. The Stream* modes answer
// with server-sent events as the vendors' streaming endpoints do.
package fakellm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mode answers one request.
type Mode func(w http.ResponseWriter, r *http.Request)

// Request is one request the server received.
type Request struct {
	Path   string
	Header http.Header
	// Body is the raw JSON body.
	Body []byte
}

// Fields decodes the body's top-level JSON fields; nil if it is not JSON.
func (r Request) Fields() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to configure as the provider's BaseURL; it ends
	// in /v1.
	URL string

	srv      *httptest.Server
	canceled chan struct{}

	mu    sync.Mutex
	modes []Mode
	reqs  []Request
}

// New starts a server that answers the i-th request with modes[i], and every
// request after the last with the last mode. With no modes it answers
// Answer("1"). If t is not nil, the server is closed in t.Cleanup.
func New(t testing.TB, modes ...Mode) *Server {
	if len(modes) == 0 {
		modes = []Mode{Answer("1")}
	}
	s := &Server{modes: modes, canceled: make(chan struct{}, 1<<16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.serve)
	mux.HandleFunc("POST /chat/completions", s.serve)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/v1"
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down, closing client connections first.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Requests returns the requests received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count returns how many requests arrived.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Canceled receives one value each time a waiting mode (Delay, Trickle,
// StreamChunks, StreamPermutation) saw its client go away before it
// finished.
func (s *Server) Canceled() <-chan struct{} { return s.canceled }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // a short read only makes the recorded body short
	s.mu.Lock()
	i := min(len(s.reqs), len(s.modes)-1)
	s.reqs = append(s.reqs, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	mode := s.modes[i]
	s.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body)) // for the modes that read it (Compute)
	mode(w, withCancelNotify(r, s.canceled))
}

type notifyKey struct{}

// withCancelNotify lets wait report a client that went away.
func withCancelNotify(r *http.Request, ch chan struct{}) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), notifyKey{}, ch))
}

// wait blocks for d or until the client goes away; it reports whether the
// full time passed.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		if ch, ok := r.Context().Value(notifyKey{}).(chan struct{}); ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return false
	}
}

// Completion is the JSON reply of a successful chat completion.
type Completion struct {
	Content          string
	ReasoningContent string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	ReasoningTokens  int
	CachedTokens     int
}

func (c Completion) json() []byte {
	finish := c.FinishReason
	if finish == "" {
		finish = "stop"
	}
	b, _ := json.Marshal(map[string]any{ // plain maps and strings always marshal
		"id":      "chatcmpl-fake",
		"object":  "chat.completion",
		"created": 1767225600,
		"model":   "fake",
		"choices": []any{map[string]any{
			"index": 0,
			"message": map[string]any{
				"role":              "assistant",
				"content":           c.Content,
				"reasoning_content": c.ReasoningContent,
			},
			"finish_reason": finish,
		}},
		"usage": c.usage(),
	})
	return b
}

// Reply answers 200 with c.
func Reply(c Completion) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(c.json())
	}
}

// Answer answers 200 with content as the model's reply, e.g. "3,1,2".
func Answer(content string) Mode {
	return Reply(Completion{Content: content, PromptTokens: 100, CompletionTokens: 5, CachedTokens: 64})
}

// Permutation answers the 1-based ids, comma-separated, e.g. Permutation(3, 1, 2).
func Permutation(ids ...int) Mode {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return Answer(strings.Join(s, ","))
}

// Delay waits d before running next; it sends no headers meanwhile.
func Delay(d time.Duration, next Mode) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		if wait(r, d) {
			next(w, r)
		}
	}
}

// Trickle sends 200 headers at once, then a valid body for content one
// byte every interval.
func Trickle(interval time.Duration, content string) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		body := Completion{Content: content}.json()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			if rc.Flush() != nil || !wait(r, interval) {
				return
			}
		}
	}
}

// Error answers status with body as JSON and the given extra headers.
func Error(status int, body string, header ...string) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// RateLimited answers 429 with the given Retry-After value (seconds or an
// HTTP date; "" sends none).
func RateLimited(retryAfter string) Mode {
	var h []string
	if retryAfter != "" {
		h = []string{"Retry-After", retryAfter}
	}
	return Error(http.StatusTooManyRequests,
		`{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached","type":"requests"}}`, h...)
}

// HTMLError answers status with an HTML page, as a proxy in front of the
// vendor does.
func HTMLError(status int) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%d</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>",
			status, status, http.StatusText(status))
	}
}

// MalformedJSON answers 200 with a truncated JSON body.
func MalformedJSON() Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-fake","choices":[{"index":0,"message":{"role":"assistant","content":"3,1`)
	}
}

// Empty answers 200 with empty content.
func Empty() Mode { return Answer("") }

// Prose answers 200 with a polite refusal that has no ids.
func Prose() Mode { return Answer("抱歉，我无法完成这个请求。") }

// DashScopeRefusal answers DashScope's content-inspection refusal (HTTP 400).
func DashScopeRefusal() Mode {
	return Error(http.StatusBadRequest,
		`{"error":{"code":"data_inspection_failed","param":null,"message":"Input data may contain inappropriate content.","type":"data_inspection_failed"}}`)
}

// ArkRefusal answers Volcengine Ark's SensitiveContentDetected (HTTP 400).
func ArkRefusal() Mode {
	return Error(http.StatusBadRequest,
		`{"error":{"code":"SensitiveContentDetected","message":"The request failed because the input text may contain sensitive information.","param":"","type":"BadRequest"}}`)
}

// ZhipuRefusal answers Zhipu's business code 1301 (HTTP 400).
func ZhipuRefusal() Mode {
	return Error(http.StatusBadRequest,
		`{"error":{"code":"1301","message":"系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"}}`)
}

// KimiContentFilter answers 200 with finish_reason content_filter and no
// content.
func KimiContentFilter() Mode {
	return Reply(Completion{FinishReason: "content_filter"})
}

// ZhipuArrears answers Zhipu's 1113 "account in arrears" with HTTP 429.
func ZhipuArrears() Mode {
	return Error(http.StatusTooManyRequests, `{"error":{"code":"1113","message":"您的账户已欠费，请充值后重试。"}}`)
}

// Thinking answers like a thinking model that spent max_tokens reasoning:
// empty content, finish_reason length, reasoning tokens in usage.
func Thinking() Mode {
	return Reply(Completion{
		ReasoningContent: "用户想要找到最相关的段落，我先逐个分析……",
		FinishReason:     "length",
		PromptTokens:     900,
		CompletionTokens: 32,
		ReasoningTokens:  32,
	})
}

// usage is the reply's usage object, as OpenAI-protocol vendors send it.
func (c Completion) usage() map[string]any {
	return map[string]any{
		"prompt_tokens":             c.PromptTokens,
		"completion_tokens":         c.CompletionTokens,
		"total_tokens":              c.PromptTokens + c.CompletionTokens,
		"prompt_tokens_details":     map[string]any{"cached_tokens": c.CachedTokens},
		"completion_tokens_details": map[string]any{"reasoning_tokens": c.ReasoningTokens},
	}
}

// Message is one chat message of a request, as Compute sees it.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Compute answers 200 with the content f computes from the request's
// messages: a model whose answer depends on the prompt (for generation, e.g.
// questions about the passage it was given). A body that is not a chat
// request answers 400.
func Compute(f func(msgs []Message) string) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []Message `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
			Error(http.StatusBadRequest, `{"error":{"message":"not a chat completion request","type":"invalid_request_error"}}`)(w, r)
			return
		}
		Reply(Completion{Content: f(req.Messages), PromptTokens: 300, CompletionTokens: 60})(w, r)
	}
}
