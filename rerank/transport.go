package rerank

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
)

// rewriter is the http.RoundTripper under each provider's go-openai client.
// go-openai cannot send vendor fields, drops temperature 0 and hides the
// headers of error responses; rewriter merges the quirks into the JSON body
// and records the response status and headers for the attempt that is
// waiting on them.
type rewriter struct {
	next        http.RoundTripper
	extra       map[string]json.RawMessage // pre-encoded Quirks.ExtraBody
	temperature *float64                   // set when temperature 0 must be sent
}

func newRewriter(next http.RoundTripper, p Provider) (*rewriter, error) {
	rw := &rewriter{next: next}
	if len(p.Quirks.ExtraBody) > 0 {
		rw.extra = make(map[string]json.RawMessage, len(p.Quirks.ExtraBody))
		for k, v := range p.Quirks.ExtraBody {
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("rerank: provider %q: encode extra body field %q: %w", p.Name, k, err)
			}
			rw.extra[k] = raw
		}
	}
	if p.Quirks.SendZeroTemperature && p.Temperature == 0 {
		zero := 0.0
		rw.temperature = &zero
	}
	return rw, nil
}

// RoundTrip implements http.RoundTripper.
func (rw *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && (len(rw.extra) > 0 || rw.temperature != nil) {
		body, err := rw.rewrite(req)
		if err != nil {
			return nil, err
		}
		// A RoundTripper must not modify its request: send a copy.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	resp, err := rw.next.RoundTrip(req)
	if resp != nil {
		if rec, ok := req.Context().Value(recorderKey{}).(*recorder); ok {
			rec.status = resp.StatusCode
			rec.header = resp.Header.Clone()
			if rec.stream && resp.StatusCode/100 == 2 && resp.Body != nil {
				resp.Body = &sseFilter{body: resp.Body, r: bufio.NewReader(resp.Body), rec: rec, blank: true}
			}
		}
	}
	return resp, err
}

func (rw *rewriter) rewrite(req *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(req.Body)
	closeErr := req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if closeErr != nil {
		return nil, fmt.Errorf("close request body: %w", closeErr)
	}
	fields := make(map[string]json.RawMessage)
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("decode request body: %w", err)
	}
	maps.Copy(fields, rw.extra)
	if rw.temperature != nil {
		fields["temperature"] = json.RawMessage("0")
	}
	return json.Marshal(fields)
}

// recorder receives the status and headers of an attempt's HTTP response.
// One attempt owns it; go-openai calls the transport on the attempt's own
// goroutine, so no locking is needed.
type recorder struct {
	status int
	header http.Header

	// stream is set by a streaming attempt before its request: the 2xx
	// response body is then read through an sseFilter.
	stream bool
	// done is set by the sseFilter when "data: [DONE]" went by.
	done bool
}

type recorderKey struct{}

// withRecorder returns a ctx whose requests report into a new recorder.
func withRecorder(ctx context.Context) (context.Context, *recorder) {
	rec := &recorder{}
	return context.WithValue(ctx, recorderKey{}, rec), rec
}

// sseFilter drops the SSE lines that carry nothing from a streamed reply:
// comments (": keep-alive", as DeepSeek sends while the model is busy) and
// the blank lines that do not end an event. go-openai counts every non-data
// line towards EmptyMessagesLimit (300 in a row end the stream with
// ErrTooManyEmptyStreamMessages) and appends comments to the buffer it later
// decodes an error event from, so a long keep-alive phase would end a
// healthy stream or hide a vendor's error event. Data lines, the one blank
// line ending each event, and any other line (e.g. a plain JSON error body)
// pass unchanged. The filter also notes the "data: [DONE]" line, which
// tells a finished stream from a cut one.
//
// Its Read runs on the goroutine of the attempt that reads the stream, like
// the recorder it writes to.
type sseFilter struct {
	body    io.ReadCloser
	r       *bufio.Reader
	rec     *recorder
	pending []byte // the rest of the current line
	err     error  // the read error after pending, sticky
	// blank: the last line delivered was blank (or none was): a blank
	// line now would only be another empty message.
	blank bool
}

func (f *sseFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.r.ReadBytes('\n')
		f.err = err // delivered once the line before it is
		trimmed := bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
			continue // at the error
		case len(trimmed) == 0:
			if f.blank {
				continue // a blank line after a blank line or a comment
			}
			f.blank = true
		case trimmed[0] == ':':
			continue // a keep-alive comment
		default:
			f.blank = false
			if bytes.Equal(trimmed, []byte("data: [DONE]")) || bytes.Equal(trimmed, []byte("data:[DONE]")) {
				f.rec.done = true
			}
		}
		f.pending = line
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

func (f *sseFilter) Close() error { return f.body.Close() }
