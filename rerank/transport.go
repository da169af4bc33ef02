package rerank

import (
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
}

type recorderKey struct{}

// withRecorder returns a ctx whose requests report into a new recorder.
func withRecorder(ctx context.Context) (context.Context, *recorder) {
	rec := &recorder{}
	return context.WithValue(ctx, recorderKey{}, rec), rec
}
