package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	"github.com/zhisou/zhisou/internal/service"
)

type difyAnswer struct {
	Records []struct {
		Content  string         `json:"content"`
		Score    float64        `json:"score"`
		Title    string         `json:"title"`
		Metadata map[string]any `json:"metadata"`
	} `json:"records"`
	ErrorCode int    `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

func (d *door) dify(t *testing.T, body, auth string) (int, difyAnswer, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", d.url+"/retrieval", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	var a difyAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a, string(raw)
}

// TestDify sends the requests Dify sends (its documentation's example, with
// and without metadata conditions) and checks the contract: records best
// first with scores in 0..1 and the threshold honoured, metadata always an
// object, {"records": []} with 200 when nothing matches, Dify's error codes
// for a bad Authorization header (1001), a bad key (1002) and an unknown
// knowledge base (2001), and a 400 naming an operator zhisou cannot honour.
func TestDify(t *testing.T) {
	d := newDoor(t, service.Options{RequireAuth: true})
	admin, _, err := d.Store.CreateKey("root", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	difyKey, _, err := d.Store.CreateKey("dify", index.RoleRead, []string{"kb"})
	if err != nil {
		t.Fatal(err)
	}
	grpcapitest.SeedAs(t, d.Client, admin)
	bearer := "Bearer " + difyKey
	const exact = `{
    "knowledge_id": "kb",
    "query": "客户说太贵怎么办",
    "retrieval_setting": {
        "top_k": 3,
        "score_threshold": 0.0
    }
}`
	code, a, raw := d.dify(t, exact, bearer)
	if code != 200 || len(a.Records) == 0 {
		t.Fatalf("Dify's request: %d %s", code, raw)
	}
	for i, r := range a.Records {
		if r.Score < 0 || r.Score > 1 || (i > 0 && r.Score > a.Records[i-1].Score) {
			t.Errorf("record %d score %v: want 0..1, best first", i, r.Score)
		}
		if r.Metadata == nil || r.Content == "" || r.Title == "" {
			t.Errorf("record %d: %+v; want content, title and a metadata object", i, r)
		}
	}
	if a.Records[0].Metadata["document_id"] != "sales/price" {
		t.Errorf("best record from %v, want sales/price", a.Records[0].Metadata["document_id"])
	}
	// The threshold is honoured: above the last record's score, fewer come.
	last := a.Records[len(a.Records)-1].Score
	if len(a.Records) > 1 && last < a.Records[0].Score {
		body := strings.Replace(exact, `"score_threshold": 0.0`, `"score_threshold": `+jsonFloat(last+1e-6), 1)
		_, b, _ := d.dify(t, body, bearer)
		if len(b.Records) >= len(a.Records) || len(b.Records) == 0 {
			t.Errorf("threshold %v: %d records, before %d", last, len(b.Records), len(a.Records))
		}
		for _, r := range b.Records {
			if r.Score < last {
				t.Errorf("record with score %v under the threshold %v", r.Score, last)
			}
		}
	}
	withCond := func(cond string) string {
		q := strings.Replace(exact, "客户说太贵怎么办", "有限空间作业和事故上报", 1)
		return strings.Replace(q, `"retrieval_setting"`, `"metadata_condition": `+cond+`, "retrieval_setting"`, 1)
	}
	for _, tc := range []struct {
		name, body, auth string
		code, errCode    int
		records          int // -1: any number above 0
		says             string
	}{
		{"metadata is (name as a list, as Dify sends it)", withCond(`{"logical_operator":"and","conditions":[{"name":["course"],"comparison_operator":"is","value":"safety"}]}`), bearer, 200, 0, -1, "safety/rules"},
		{"document_id in, or", withCond(`{"logical_operator":"or","conditions":[{"name":"document_id","comparison_operator":"in","value":["safety/rules"]},{"name":"document_id","comparison_operator":"is","value":"nope"}]}`), bearer, 200, 0, -1, "safety/rules"},
		{"and of two values", withCond(`{"conditions":[{"name":"course","comparison_operator":"is","value":"sales"},{"name":"course","comparison_operator":"is","value":"safety"}]}`), bearer, 200, 0, 0, `"records":[]`},
		{"no match", strings.Replace(exact, "客户说太贵怎么办", "量子色动力学", 1), bearer, 200, 0, 0, `"records":[]`},
		{"contains", withCond(`{"conditions":[{"name":"course","comparison_operator":"contains","value":"sa"}]}`), bearer, 400, 4000, 0, `contains`},
		{"or across metadata", withCond(`{"logical_operator":"or","conditions":[{"name":"course","comparison_operator":"is","value":"sales"},{"name":"course","comparison_operator":"is","value":"safety"}]}`), bearer, 400, 4000, 0, `or`},
		{"no Authorization", exact, "", 403, 1001, 0, "Bearer"},
		{"Basic", exact, "Basic eDp5", 403, 1001, 0, "Bearer"},
		{"unknown key", exact, "Bearer zsk_000000000000_nope", 403, 1002, 0, "Authorization failed"},
		{"key of another collection", strings.Replace(exact, `"kb"`, `"other"`, 1), bearer, 403, 1002, 0, "may not reach"},
		{"unknown knowledge", strings.Replace(exact, `"kb"`, `"nope"`, 1), "Bearer " + admin, 404, 2001, 0, "does not exist"},
		{"malformed JSON", `{"knowledge_id": "kb", "query": `, bearer, 400, 4000, 0, "JSON"},
		{"no retrieval_setting", `{"knowledge_id":"kb","query":"价格"}`, bearer, 400, 4000, 0, "retrieval_setting"},
		{"threshold over 1", strings.Replace(exact, `"score_threshold": 0.0`, `"score_threshold": 5`, 1), bearer, 400, 4000, 0, "score_threshold"},
	} {
		code, a, raw := d.dify(t, tc.body, tc.auth)
		ok := code == tc.code && a.ErrorCode == tc.errCode && strings.Contains(raw, tc.says)
		if tc.records >= 0 {
			ok = ok && len(a.Records) == tc.records
		} else {
			ok = ok && len(a.Records) > 0
		}
		if !ok {
			t.Errorf("%s: %d %s; want %d, error_code %d, %d records, saying %s", tc.name, code, raw, tc.code, tc.errCode, tc.records, tc.says)
		}
	}
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
