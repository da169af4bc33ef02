package eval

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/retrieve"
)

var update = flag.Bool("update", false, "rewrite golden files")

// qualityKeys are the metrics compared with the baseline (latency is not a
// quality metric and is noisy).
func qualityRows(m *metrics) [][2]any {
	return [][2]any{
		{"recall@1", m.Recall1}, {"recall@5", m.Recall5}, {"recall@10", m.Recall10}, {"recall@100", m.Recall100},
		{"hit@10", m.Hit10}, {"mrr@10", m.MRR10}, {"ndcg@10", m.NDCG10},
	}
}

// TestEvalTestdataGolden runs the eval harness on our own training-domain set
// and compares a summary (metrics, per-kind metrics, each query's top 3) with
// testdata/eval/golden.txt, so that any ranking change is a reviewable diff.
// Refresh with: go test ./internal/eval -run TestEvalTestdataGolden -update
func TestEvalTestdataGolden(t *testing.T) {
	set, err := LoadSet("../../testdata/eval", "../../testdata/courses")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), Config{Set: set, Analyzer: indextest.Analyzer(t), Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# zhisou eval -data testdata/eval -corpus testdata/courses -baseline bleve\n")
	fmt.Fprintf(&b, "# metric\tzhisou\tbleve\n")
	for i, row := range qualityRows(res.zhisou) {
		fmt.Fprintf(&b, "%s\t%.4f\t%.4f\n", row[0], row[1], qualityRows(res.bleve)[i][1])
	}
	kinds := make([]string, 0, len(res.zhisou.ByKind))
	for k := range res.zhisou.ByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Fprintf(&b, "\n# kind\tqueries\trecall@10\tmrr@10\tndcg@10\n")
	for _, k := range kinds {
		m := res.zhisou.ByKind[k]
		fmt.Fprintf(&b, "%s\t%d\t%.4f\t%.4f\t%.4f\n", k, m.Queries, m.Recall10, m.MRR10, m.NDCG10)
	}
	fmt.Fprintf(&b, "\n# query\tkind\ttop 3 documents (* = relevant)\n")
	for _, q := range set.Queries {
		var top []string
		for _, d := range res.zhisouRun[q.ID][:min(3, len(res.zhisouRun[q.ID]))] {
			mark := ""
			if set.Qrels[q.ID][d.id] > 0 {
				mark = "*"
			}
			top = append(top, d.id+mark)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", q.ID, q.Kind, strings.Join(top, " "))
	}
	golden := "../../testdata/eval/golden.txt"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("eval summary differs from %s (-golden +now); if the change is intended, run with -update and review the diff:\n%s", golden, diff)
	}
	checkAgainstBaseline(t, "testdata", res, map[string]bool{"recall@1": true, "recall@5": true, "mrr@10": true})

	// The fused default against BM25 alone (the target).
	bm25, err := Run(t.Context(), Config{Set: set, Analyzer: indextest.Analyzer(t), Mode: retrieve.ModeBM25})
	if err != nil {
		t.Fatal(err)
	}
	checkFusedNotWorse(t, "testdata", res.zhisou, bm25.zhisou)
}

// checkFusedNotWorse fails when the fused ranking is below BM25 alone on
// recall@10, mrr@10 or ndcg@10.
func checkFusedNotWorse(t *testing.T, set string, fused, bm25 *metrics) {
	t.Helper()
	t.Logf("%s fused vs bm25: recall@10 %.4f/%.4f mrr@10 %.4f/%.4f ndcg@10 %.4f/%.4f", set, fused.Recall10, bm25.Recall10, fused.MRR10, bm25.MRR10, fused.NDCG10, bm25.NDCG10)
	for _, m := range []struct {
		name     string
		got, ref float64
	}{{"recall@10", fused.Recall10, bm25.Recall10}, {"mrr@10", fused.MRR10, bm25.MRR10}, {"ndcg@10", fused.NDCG10, bm25.NDCG10}} {
		if m.got < m.ref {
			t.Errorf("%s %s: fused %.4f < bm25 %.4f", set, m.name, m.got, m.ref)
		}
	}
}

// checkAgainstBaseline fails when zhisou is below stock bleve on a quality
// metric. Known gaps (listed in the README) may be below, but by no more than
// 0.01, so that they cannot grow unnoticed.
func checkAgainstBaseline(t *testing.T, set string, res *Result, knownGaps map[string]bool) {
	t.Helper()
	for i, row := range qualityRows(res.zhisou) {
		name, z, bl := row[0].(string), row[1].(float64), qualityRows(res.bleve)[i][1].(float64)
		switch {
		case knownGaps[name] && z < bl-0.01:
			t.Errorf("%s %s: zhisou %.4f is more than 0.01 below stock bleve %.4f (a known gap that grew)", set, name, z, bl)
		case !knownGaps[name] && z < bl:
			t.Errorf("%s %s: zhisou %.4f < stock bleve %.4f", set, name, z, bl)
		}
	}
}

// TestEvalCMRC2018 checks the quality targets on the shared public
// set (skipped when ../shared is not beside the checkout, and under -short).
func TestEvalCMRC2018(t *testing.T) {
	dir := "../../../shared/eval/cmrc2018"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no %s: %v", dir, err)
	}
	if testing.Short() || raceEnabled {
		t.Skip("cmrc2018 eval takes minutes under the race detector; 'make test' runs it without (skipped under -short too)")
	}
	set, err := LoadSet(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), Config{Set: set, Analyzer: indextest.Analyzer(t), Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	z := res.zhisou
	t.Logf("cmrc2018 zhisou: recall@10 %.4f mrr@10 %.4f ndcg@10 %.4f recall@100 %.4f", z.Recall10, z.MRR10, z.NDCG10, z.Recall100)
	for _, tgt := range []struct {
		name      string
		got, want float64
	}{{"recall@10", z.Recall10, 0.98}, {"mrr@10", z.MRR10, 0.89}, {"ndcg@10", z.NDCG10, 0.91}} {
		if tgt.got < tgt.want {
			t.Errorf("cmrc2018 %s = %.4f, target %.2f", tgt.name, tgt.got, tgt.want)
		}
	}
	checkAgainstBaseline(t, "cmrc2018", res, map[string]bool{"recall@100": true})
	bm25, err := Run(t.Context(), Config{Set: set, Analyzer: indextest.Analyzer(t), Mode: retrieve.ModeBM25})
	if err != nil {
		t.Fatal(err)
	}
	checkFusedNotWorse(t, "cmrc2018", z, bm25.zhisou)
}
