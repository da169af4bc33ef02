package rerank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/text/unicode/norm"
)

// attemptStream makes one streamed request (Options.Stream) and classifies
// its result. The content deltas of choice 0 are accumulated; usage is
// taken from the chunk that carries it (the last one, with
// stream_options.include_usage).
//
// The reply is complete when "data: [DONE]" arrived or a chunk carried a
// finish reason; it is then parsed like a plain reply. When the stream ends
// before that (deadline, caller, broken connection, vendor error event),
// the complete ids received so far are salvaged (outcome.partial); an id is
// complete only once a non-digit follows it, since "1" may be the start of
// "12".
func (p *provider) attemptStream(ctx context.Context, req openai.ChatCompletionRequest, n int) outcome {
	o := outcome{provider: p.cfg.Name, priority: p.priority}
	actx, rec := withRecorder(ctx)
	rec.stream = true
	stream, err := p.client.CreateChatCompletionStream(actx, req)
	if err != nil {
		if ctx.Err() != nil {
			o.status = ctxStatus(ctx)
			o.tripsBreak = o.status == StatusTimeout
			return o
		}
		classify(&o, err, rec)
		return o
	}
	defer stream.Close()

	var content strings.Builder
	var finish openai.FinishReason
	for {
		chunk, err := stream.Recv()
		if err != nil {
			return endStream(ctx, o, err, rec.done || finish != "", content.String(), finish, n)
		}
		if chunk.Usage != nil {
			o.usage = usageOf(*chunk.Usage)
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			content.WriteString(ch.Delta.Content)
			if ch.FinishReason == openai.FinishReasonContentFilter {
				o.status, o.detail = StatusRefused, "finish_reason=content_filter (stream)"
				return o
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
}

// endStream classifies a stream that Recv ended with err. finished reports
// that the reply is complete ([DONE] or a finish reason arrived).
func endStream(ctx context.Context, o outcome, err error, finished bool, content string, finish openai.FinishReason, n int) outcome {
	var apiErr *openai.APIError
	isEvent := errors.As(err, &apiErr)
	if finished && !isEvent {
		// The whole reply is here ([DONE] or a finish reason came); at
		// most the usage chunk is missing, cut off by the deadline or a
		// broken connection.
		ids, none, ok := parseIDs(content, n)
		if !ok {
			o.status = StatusMalformed
			o.detail = fmt.Sprintf("no ids in streamed reply (finish_reason=%s, %d chars, reasoning_tokens=%d)",
				finish, len([]rune(content)), o.usage.Reasoning)
			return o
		}
		o.status, o.ids, o.none = StatusOK, ids, none
		return o
	}

	// The stream ended early: salvage the complete ids, if any.
	ids := completeIDs(content, n)
	salvage := func(why string) outcome {
		o.status, o.ids, o.partial = StatusOK, ids, true
		o.detail = fmt.Sprintf("partial: %s after %d ids", why, len(ids))
		return o
	}
	switch {
	case ctx.Err() != nil:
		// The deadline, the caller or a lost hedge race; err is whatever
		// the aborted read returned.
		if len(ids) > 0 {
			return salvage(string(ctxStatus(ctx)))
		}
		o.status = ctxStatus(ctx)
		o.tripsBreak = o.status == StatusTimeout
		return o
	case isEvent:
		// A {"error": ...} event inside a 200 stream.
		code := ""
		if apiErr.Code != nil {
			code = fmt.Sprint(apiErr.Code)
		}
		if apiErr.Type != "" {
			code = strings.TrimPrefix(code+" "+apiErr.Type, " ")
		}
		detail := "stream error event"
		if code != "" {
			detail += " code=" + code
		}
		if apiErr.Message != "" {
			detail += ": " + snippet(apiErr.Message)
		}
		switch {
		case containsAny(code, refusalCodes):
			o.status, o.detail = StatusRefused, detail
			return o
		case containsAny(code, quotaCodes):
			o.status, o.detail = StatusQuotaExhausted, detail
			return o
		case len(ids) > 0:
			return salvage(detail)
		}
		o.status, o.detail = StatusServerError, detail
		o.retryable, o.tripsBreak = true, true
		return o
	case errors.Is(err, openai.ErrTooManyEmptyStreamMessages):
		// Only lines other than keep-alives and blank lines (the transport
		// filters those) count here: the body is not a usable stream.
		if len(ids) > 0 {
			return salvage("too many empty stream messages")
		}
		o.status, o.detail = StatusMalformed, err.Error()
		return o
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Closed without [DONE] or a finish reason, cleanly or not.
		if len(ids) > 0 {
			return salvage("stream cut: " + err.Error())
		}
		o.status, o.detail = StatusStreamCut, "stream cut: "+err.Error()
		o.retryable, o.tripsBreak = true, true
		return o
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		// A data line that is not a chunk.
		if len(ids) > 0 {
			return salvage("undecodable chunk")
		}
		o.status, o.detail = StatusMalformed, "undecodable stream chunk: "+err.Error()
		return o
	}
	// A broken connection (reset) or another read error.
	if len(ids) > 0 {
		return salvage("stream cut: " + err.Error())
	}
	o.status, o.detail = StatusStreamCut, "stream cut: "+err.Error()
	o.retryable, o.tripsBreak = true, true
	return o
}

// completeIDs returns the valid ids of the complete part of a reply that is
// still arriving (or was cut): a trailing digit run may be the start of a
// longer number and is left out, an unfinished <think> block holds no ids,
// and a reply that has started a bracketed id ("[3") counts only bracketed
// ids, as parseIDs would once it is complete. "0" (none relevant) is not an
// id.
func completeIDs(content string, n int) []int {
	if i := strings.LastIndex(content, "</think>"); i >= 0 {
		content = content[i+len("</think>"):]
	} else if strings.Contains(content, "<think>") {
		return nil
	}
	content = strings.TrimRight(norm.NFKC.String(content), "0123456789")
	if strings.Contains(content, "[") && !bracketedID.MatchString(content) {
		return nil
	}
	ids, _, _ := parseIDs(content, n)
	return ids
}
