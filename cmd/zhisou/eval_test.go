package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/rerank/fakellm"
)

// TestEvalCommand runs 'zhisou eval' end to end on a tiny set and checks the
// JSON line's keys and the run file.
func TestEvalCommand(t *testing.T) {
	dir := t.TempDir()
	corpus := `{"id":"p1","title":"价格异议","text":"客户说太贵时，先确认预算，再说明价值。"}
{"id":"p2","title":"安全规定","text":"有限空间作业必须先通风、再检测、后作业。"}
{"id":"p3","title":"领导力","text":"新任经理要和下属做一对一沟通。"}
`
	queries := `{"id":"q1","text":"客户嫌贵怎么办","kind":"paraphrase"}
{"id":"q2","text":"有限空间作业","kind":"keyword"}
`
	qrels := "q1\tp1\t1\nq2\tp2\t2\n"
	for name, content := range map[string]string{"corpus.jsonl": corpus, "queries.jsonl": queries, "qrels.tsv": qrels} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runFile := filepath.Join(dir, "run.tsv")
	var out, errOut bytes.Buffer
	err := runT(t, []string{"eval", "-data", dir, "-json", "-baseline", "bleve", "-run", runFile}, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line %q is not JSON: %v", lines[len(lines)-1], err)
	}
	// The keys of the metrics, and those the console's charts read (recall
	// curve, latency histogram, metrics by query kind).
	wantKeys := []string{"by_kind", "docs", "hit@10", "ingest_seconds", "latency_histogram", "latency_ms", "mrr@10", "ndcg@10", "queries",
		"recall@1", "recall@10", "recall@100", "recall@5", "recall_curve", "refused"}
	for _, side := range []string{"zhisou", "bleve"} {
		var keys []string
		for k := range got[side] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if diff := cmp.Diff(wantKeys, keys); diff != "" {
			t.Errorf("eval -json %s keys (-want +got):\n%s", side, diff)
		}
		lat, _ := got[side]["latency_ms"].(map[string]any)
		if _, ok := lat["p99"]; !ok {
			t.Errorf("eval -json %s latency_ms = %v, want p50/p95/p99", side, got[side]["latency_ms"])
		}
	}
	if got["zhisou"]["recall@10"] != 1.0 || got["zhisou"]["queries"] != 2.0 {
		t.Errorf("eval -json zhisou = %v, want recall@10 1 over 2 queries", got["zhisou"])
	}
	b, err := os.ReadFile(runFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "q1\tp1\t1\t") {
		t.Errorf("run file starts %q, want q1<TAB>p1<TAB>1<TAB>score", strings.SplitN(string(b), "\n", 2)[0])
	}
	if _, err := os.Stat(runFile + ".bleve"); err != nil {
		t.Errorf("baseline run file: %v", err)
	}

	// A judged document missing from the corpus is an error, not a silent zero.
	if err := os.WriteFile(filepath.Join(dir, "qrels.tsv"), []byte("q1\tp9\t1\nq2\tp2\t1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = runT(t, []string{"eval", "-data", dir}, func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `"p9"`) {
		t.Errorf("eval with a judged document missing from the corpus = %v, want an error naming p9", err)
	}
}

// TestEvalRerank: eval with a reranker prints the rerank status counts and
// token use; a reranker that swaps the first two hits shows in the metrics.
func TestEvalRerank(t *testing.T) {
	fake := fakellm.New(t, fakellm.Permutation(2, 1))
	var out, errOut bytes.Buffer
	err := runT(t, []string{"eval", "-data", "../../testdata/eval", "-corpus", "../../testdata/courses", "-rerank", "-rerank-url", fake.URL, "-rerank-model", "m", "-json"},
		envOf(map[string]string{"ZHISOU_RERANK_API_KEY": "x"}), &out, &errOut)
	if err != nil {
		t.Fatalf("eval -rerank-url: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "rerank: ok ") || !strings.Contains(out.String(), "tokens in ") {
		t.Errorf("eval output does not report rerank statuses and tokens:\n%s", out.String())
	}
	if fake.Count() == 0 {
		t.Error("the fake LLM got no request")
	}
}
