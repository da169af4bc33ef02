package eval

import (
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index/indextest"
)

// A query the searcher refuses (over the length limit) is a miss, counted,
// and the run goes on; cross-validation runs every query once, each scored
// in the round that did not learn it.
func TestRefusedQueriesAndFolds(t *testing.T) {
	set, err := LoadSet("../../testdata/eval", "../../testdata/courses")
	if err != nil {
		t.Fatal(err)
	}
	long := Query{ID: "too-long", Text: strings.Repeat("价格异议", 2001)} // 8004 characters
	set.Queries = append(set.Queries, long)
	set.Qrels[long.ID] = set.Qrels[set.Queries[0].ID]
	res, err := Run(t.Context(), Config{Set: set, Analyzer: indextest.Analyzer(t), Folds: 5})
	if err != nil {
		t.Fatalf("one refused query aborted the run: %v", err)
	}
	if res.zhisou.Refused != 1 || res.zhisou.Queries != len(set.Queries) {
		t.Errorf("refused %d of %d queries, want 1 of %d", res.zhisou.Refused, res.zhisou.Queries, len(set.Queries))
	}
	if got := res.zhisouRun[long.ID]; len(got) != 0 {
		t.Errorf("the refused query ranked %v, want nothing (a miss)", got)
	}
	for _, q := range set.Queries {
		if _, ok := res.zhisouRun[q.ID]; !ok {
			t.Errorf("query %s was never scored", q.ID)
		}
	}
	for _, c := range []Config{{Set: set, Analyzer: indextest.Analyzer(t), Folds: 1}, {Set: set, Analyzer: indextest.Analyzer(t), Folds: 5, Collection: "x"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("config %d folds, collection %q: want refused", c.Folds, c.Collection)
		}
	}
}
