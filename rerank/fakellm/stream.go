package fakellm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Streaming modes answer a request made with "stream": true the way the
// vendors do: server-sent events, one "data: {chunk}" event per content
// delta, a chunk with the finish reason, a usage chunk (choices: []) and
// "data: [DONE]". They ignore whether the request asked for a stream.
// Like the other waiting modes, they stop as soon as the client goes away.

// streamUsage is the usage sent in the last chunk of a finished stream.
var streamUsage = Completion{PromptTokens: 120, CompletionTokens: 6, CachedTokens: 96}

// sse writes one streamed reply.
type sse struct {
	w  http.ResponseWriter
	r  *http.Request
	rc *http.ResponseController
	ok bool // false once a write failed (the client went away)
}

// startSSE sends the 200 headers of an event stream, unless an earlier
// mode (StreamKeepAlive) already did.
func startSSE(w http.ResponseWriter, r *http.Request) *sse {
	s := &sse{w: w, r: r, rc: http.NewResponseController(w), ok: true}
	if hw, ok := w.(*headerSent); ok && hw.sent {
		return s
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s.flush()
	return s
}

func (s *sse) flush() {
	if s.ok && s.rc.Flush() != nil {
		s.ok = false
	}
}

// line writes raw text and flushes it.
func (s *sse) line(text string) bool {
	if s.ok {
		if _, err := io.WriteString(s.w, text); err != nil {
			s.ok = false
		}
		s.flush()
	}
	return s.ok
}

// data sends one event whose data is v as JSON.
func (s *sse) data(v any) bool {
	b, _ := json.Marshal(v) // plain maps and strings always marshal
	return s.line("data: " + string(b) + "\n\n")
}

// chunk sends a chat.completion.chunk with one choice.
func (s *sse) chunk(delta map[string]any, finish string) bool {
	var fr any // null until the last content chunk
	if finish != "" {
		fr = finish
	}
	return s.data(map[string]any{
		"id":      "chatcmpl-fake",
		"object":  "chat.completion.chunk",
		"created": 1767225600,
		"model":   "fake",
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": fr}},
	})
}

// usage sends the include_usage chunk: no choices, the usage of c.
func (s *sse) usage(c Completion) bool {
	return s.data(map[string]any{
		"id":      "chatcmpl-fake",
		"object":  "chat.completion.chunk",
		"created": 1767225600,
		"model":   "fake",
		"choices": []any{},
		"usage":   c.usage(),
	})
}

// contents sends the role chunk and then one content chunk per element of
// contents, waiting interval before each but the first. It reports whether
// all were sent.
func (s *sse) contents(interval time.Duration, contents ...string) bool {
	if !s.chunk(map[string]any{"role": "assistant", "content": ""}, "") {
		return false
	}
	for i, c := range contents {
		if i > 0 && interval > 0 && !wait(s.r, interval) {
			return false
		}
		if !s.chunk(map[string]any{"content": c}, "") {
			return false
		}
	}
	return true
}

// finish sends the finish-reason chunk, the usage chunk and [DONE].
func (s *sse) finish(reason string, u Completion) bool {
	return s.chunk(map[string]any{}, reason) && s.usage(u) && s.line("data: [DONE]\n\n")
}

// idChunks renders ids as content deltas, one id per chunk, each followed
// by a comma, except the last if last is false: "3," "1," "2".
func idChunks(ids []int, commaAfterLast bool) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.Itoa(id)
		if i < len(ids)-1 || commaAfterLast {
			out[i] += ","
		}
	}
	return out
}

// StreamChunks streams the content deltas as they are, interval apart,
// then the finish reason "stop", the usage chunk and [DONE]. A long
// interval makes a stream that stalls after its first chunk.
func StreamChunks(interval time.Duration, contents ...string) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		s := startSSE(w, r)
		if s.contents(interval, contents...) && (interval <= 0 || wait(r, interval)) {
			s.finish("stop", streamUsage)
		}
	}
}

// StreamPermutation streams the 1-based ids one per chunk with comma
// separators ("3," "1," "2"), interval between chunks (and before the
// finish chunk), then the usage chunk and [DONE].
func StreamPermutation(interval time.Duration, ids ...int) Mode {
	return StreamChunks(interval, idChunks(ids, false)...)
}

// headerSent records that the stream's headers went out, so that the next
// mode does not send them again.
type headerSent struct {
	http.ResponseWriter
	sent bool
}

func (h *headerSent) WriteHeader(code int) {
	h.sent = true
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerSent) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// StreamKeepAlive starts an event stream with n lines that carry nothing,
// alternately ": keep-alive" comments and blank lines as DeepSeek sends
// while the model is busy, then hands the same stream to next (a streaming
// mode). go-openai alone gives up after 300 such lines.
func StreamKeepAlive(n int, next Mode) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		hw := &headerSent{ResponseWriter: w}
		s := startSSE(hw, r)
		for i := range n {
			text := ": keep-alive\n"
			if i%2 == 1 {
				text = "\n"
			}
			if !s.line(text) {
				return
			}
		}
		next(hw, r)
	}
}

// StreamCut streams the 1-based ids, one per chunk and each followed by a
// comma ("3," "1,"), then breaks the connection: no finish reason, no
// [DONE], no end of the chunked body (the client reads an unexpected EOF).
func StreamCut(ids ...int) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		s := startSSE(w, r)
		s.contents(0, idChunks(ids, true)...)
		panic(http.ErrAbortHandler) // net/http closes the connection quietly
	}
}

// StreamRefusal streams a Kimi-style content-safety refusal: a chunk with
// an empty delta and finish_reason "content_filter", then usage and [DONE].
func StreamRefusal() Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		s := startSSE(w, r)
		if s.chunk(map[string]any{"role": "assistant", "content": ""}, "") {
			s.finish("content_filter", Completion{PromptTokens: 120})
		}
	}
}

// StreamError streams an error event in place of the reply, as vendors do
// when the model fails after the 200 headers went out:
// data: {"error": {"message": ..., "type": "server_error", ...}}.
func StreamError() Mode {
	return StreamErrorEvent(`{"error":{"message":"The server had an error while processing your request.","type":"server_error","code":"internal_error"}}`)
}

// StreamErrorEvent streams the 1-based ids (each followed by a comma), then
// an SSE event whose data is body (a JSON {"error": ...} object), then ends
// the stream without [DONE].
func StreamErrorEvent(body string, ids ...int) Mode {
	return func(w http.ResponseWriter, r *http.Request) {
		s := startSSE(w, r)
		if s.contents(0, idChunks(ids, true)...) {
			s.line(fmt.Sprintf("data: %s\n\n", body))
		}
	}
}
