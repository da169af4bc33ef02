package httpapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/service"
	"github.com/zhisou/zhisou/retrieve"
)

// The Dify External Knowledge API (docs.dify.ai, "External Knowledge API"):
// POST /retrieval with a knowledge_id (a zhisou collection), a query, top_k
// and score_threshold, and optional metadata conditions; it answers
// {"records": [{content, score, title, metadata}]}, best first, and
// {"records": []} when nothing matches.
//
// Scores on this door are in 0..1, as Dify's threshold expects: the fused
// score divided by the sum of the collection's fusion weights, which is the
// most a chunk can score (each source's scores are divided by its best, so
// the best hit of a query scores at least the BM25 weight's share, 0.83 by
// default). A record whose score is below score_threshold is left out.
//
// Metadata conditions map onto zhisou's filters, which are exact: "is" (and
// "in" with one value) on a metadata key, "is" and "in" on document_id; "or"
// only across document_id conditions. Any other operator is a 400 naming it,
// never a silent match-all.

// Dify's error codes, and this door's own for a bad request.
const (
	difyBadAuthHeader = 1001
	difyAuthFailed    = 1002
	difyNoKnowledge   = 2001
	difyBadRequest    = 4000
)

type difyRequest struct {
	KnowledgeID      string `json:"knowledge_id"`
	Query            string `json:"query"`
	RetrievalSetting *struct {
		TopK           int     `json:"top_k"`
		ScoreThreshold float64 `json:"score_threshold"`
	} `json:"retrieval_setting"`
	MetadataCondition *difyCondition `json:"metadata_condition"`
}

type difyCondition struct {
	LogicalOperator string `json:"logical_operator"`
	Conditions      []struct {
		Name               json.RawMessage `json:"name"`
		ComparisonOperator string          `json:"comparison_operator"`
		Value              json.RawMessage `json:"value"`
	} `json:"conditions"`
}

type difyRecord struct {
	Content  string         `json:"content"`
	Score    float64        `json:"score"`
	Title    string         `json:"title"`
	Metadata map[string]any `json:"metadata"`
}

// difyError writes Dify's error shape.
func difyError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error_code": code, "error_msg": msg}) // a failed write to the client changes nothing
}

// Dify returns the handler of POST /retrieval.
func Dify(svc *service.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			difyError(w, http.StatusRequestEntityTooLarge, difyBadRequest, "request body over the limit of "+mib(MaxBodyBytes))
			return
		}
		tok, bad := TokenFrom(r)
		if bad != "" || r.Header.Get("Authorization") == "" {
			difyError(w, http.StatusForbidden, difyBadAuthHeader, "Invalid Authorization header format. Expected 'Bearer <api-key>' format.")
			return
		}
		ctx := r.Context()
		k, err := svc.Authenticate(ctx, tok)
		if err != nil && svc.AuthRequired() {
			difyError(w, http.StatusForbidden, difyAuthFailed, "Authorization failed: "+err.Error())
			return
		}
		if err == nil {
			ctx = service.WithKey(ctx, k)
		}
		var req difyRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err := dec.Decode(&req); err != nil {
			difyError(w, http.StatusBadRequest, difyBadRequest, "request body is not the JSON of a Dify retrieval request: "+err.Error())
			return
		}
		sreq, none, err := req.searchRequest()
		if err != nil {
			difyError(w, http.StatusBadRequest, difyBadRequest, err.Error())
			return
		}
		info, err := svc.GetCollection(ctx, req.KnowledgeID)
		if err == nil {
			var res retrieve.Result
			if none { // conditions no chunk can meet
				writeRecords(w, res, info.FusionWeights(), 0)
				return
			}
			if res, err = svc.Search(ctx, sreq); err == nil {
				writeRecords(w, res, info.FusionWeights(), req.RetrievalSetting.ScoreThreshold)
				return
			}
		}
		switch {
		case errors.Is(err, service.ErrNotFound):
			difyError(w, http.StatusNotFound, difyNoKnowledge, "The knowledge does not exist: "+req.KnowledgeID)
		case errors.Is(err, service.ErrUnauthenticated), errors.Is(err, service.ErrPermissionDenied):
			difyError(w, http.StatusForbidden, difyAuthFailed, "Authorization failed: "+err.Error())
		case errors.Is(err, service.ErrInvalid):
			difyError(w, http.StatusBadRequest, difyBadRequest, err.Error())
		case errors.Is(err, service.ErrResourceExhausted):
			difyError(w, http.StatusTooManyRequests, difyBadRequest, err.Error())
		default:
			difyError(w, http.StatusInternalServerError, 5000, "internal error")
		}
	})
}

// searchRequest checks the request and maps it onto a search; none is
// true when its conditions can match no chunk.
func (req *difyRequest) searchRequest() (sreq retrieve.Request, none bool, err error) {
	switch {
	case req.KnowledgeID == "":
		return sreq, false, errors.New("knowledge_id is required")
	case strings.TrimSpace(req.Query) == "":
		return sreq, false, errors.New("query is required")
	case req.RetrievalSetting == nil:
		return sreq, false, errors.New("retrieval_setting is required")
	case req.RetrievalSetting.TopK < 1:
		return sreq, false, fmt.Errorf("retrieval_setting.top_k %d: want at least 1", req.RetrievalSetting.TopK)
	case req.RetrievalSetting.ScoreThreshold < 0 || req.RetrievalSetting.ScoreThreshold > 1:
		return sreq, false, fmt.Errorf("retrieval_setting.score_threshold %v: want 0 to 1", req.RetrievalSetting.ScoreThreshold)
	}
	f, none, err := req.MetadataCondition.filter()
	if err != nil {
		return sreq, false, err
	}
	return retrieve.Request{Collection: req.KnowledgeID, Query: req.Query, TopK: min(req.RetrievalSetting.TopK, retrieve.DefaultMaxTopK), Filter: f}, none, nil
}

// filter maps metadata conditions onto zhisou's exact filters; none is true
// when they can match nothing (and of two different values).
func (mc *difyCondition) filter() (f index.Filter, none bool, err error) {
	if mc == nil || len(mc.Conditions) == 0 {
		return f, false, nil
	}
	op := strings.ToLower(cmp.Or(mc.LogicalOperator, "and"))
	if op != "and" && op != "or" {
		return f, false, fmt.Errorf("metadata_condition.logical_operator %q: want and or or", mc.LogicalOperator)
	}
	docIDsSet := false
	for i, c := range mc.Conditions {
		at := fmt.Sprintf("metadata_condition.conditions[%d]", i)
		name, err := conditionName(c.Name)
		if err != nil {
			return f, false, fmt.Errorf("%s.name: %w", at, err)
		}
		values, err := conditionValues(c.Value)
		if err != nil {
			return f, false, fmt.Errorf("%s.value: %w", at, err)
		}
		cmp := strings.ToLower(c.ComparisonOperator)
		if cmp != "is" && cmp != "in" {
			return f, false, fmt.Errorf("%s: comparison_operator %q cannot be honoured: zhisou's filters are exact, so only \"is\" and \"in\" are supported", at, c.ComparisonOperator)
		}
		if len(values) == 0 {
			return f, false, fmt.Errorf("%s: %q needs a value", at, cmp)
		}
		if name == "document_id" {
			if op == "and" && docIDsSet {
				f.DocIDs = slices.DeleteFunc(f.DocIDs, func(id string) bool { return !slices.Contains(values, id) })
				none = none || len(f.DocIDs) == 0
			} else {
				f.DocIDs = append(f.DocIDs, values...)
			}
			docIDsSet = true
			continue
		}
		if op == "or" && len(mc.Conditions) > 1 {
			return f, false, fmt.Errorf("%s: \"or\" across metadata conditions cannot be honoured (zhisou's metadata filters all hold at once); \"or\" works across document_id conditions", at)
		}
		if len(values) > 1 {
			return f, false, fmt.Errorf("%s: \"in\" with %d values on metadata %q cannot be honoured: a metadata filter holds one value", at, len(values), name)
		}
		if f.Metadata == nil {
			f.Metadata = map[string]string{}
		}
		if old, ok := f.Metadata[name]; ok && old != values[0] {
			none = true // name cannot be two values at once
		}
		f.Metadata[name] = values[0]
	}
	return f, none, nil
}

// conditionName reads a condition's name: a string, or (as some Dify
// versions send) a list of one string.
func conditionName(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 && list[0] != "" {
		return list[0], nil
	}
	return "", errors.New("want a metadata name (a string, or a list of one)")
}

// conditionValues reads a condition's value: a string, a number, or a list
// of strings.
func conditionValues(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return []string{n.String()}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	return nil, errors.New("want a string, a number or a list of strings")
}

// writeRecords answers the hits as Dify records, scores in 0..1, those
// below threshold left out.
func writeRecords(w http.ResponseWriter, res retrieve.Result, fw index.FusionWeights, threshold float64) {
	best := fw.BM25 + fw.Outline + fw.Graph
	records := make([]difyRecord, 0, len(res.Hits))
	for _, h := range res.Hits {
		score := h.Score
		if best > 0 {
			score /= best
		}
		score = math.Max(0, math.Min(1, score))
		if score < threshold {
			continue
		}
		meta := map[string]any{"document_id": h.DocID, "chunk_id": h.ChunkID, "heading_path": h.HeadingPath, "zhisou_score": h.Score}
		if h.HeadingPath == nil {
			meta["heading_path"] = []string{}
		}
		records = append(records, difyRecord{Content: h.Text, Score: score, Title: h.Title, Metadata: meta})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"records": records}) // a failed write to the client changes nothing
}
