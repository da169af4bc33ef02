package eval

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// metrics are the numbers eval reports for one side; the JSON keys are fixed.
type metrics struct {
	Queries int `json:"queries"`
	// Refused is the number of queries the searcher refused (scored as
	// misses).
	Refused int `json:"refused"`
	// RefusedPairs is the number of (question, document) pairs that
	// cross-validation could not learn (the store refused them).
	RefusedPairs  int                `json:"refused_pairs,omitempty"`
	Docs          int                `json:"docs"`
	Recall1       float64            `json:"recall@1"`
	Recall5       float64            `json:"recall@5"`
	Recall10      float64            `json:"recall@10"`
	Recall100     float64            `json:"recall@100"`
	Hit10         float64            `json:"hit@10"`
	MRR10         float64            `json:"mrr@10"`
	NDCG10        float64            `json:"ndcg@10"`
	Latency       map[string]float64 `json:"latency_ms"`
	IngestSeconds float64            `json:"ingest_seconds"`
	// RecallCurve is recall@k for k in curveKs, keyed by k, for charts.
	RecallCurve map[string]float64 `json:"recall_curve,omitempty"`
	// LatencyHistogram counts the queries by latency, for charts.
	LatencyHistogram []HistBucket `json:"latency_histogram,omitempty"`
	// ByKind has the metrics of each kind of query (the queries' "kind").
	ByKind map[string]*metrics `json:"by_kind,omitempty"`
	// longQueries and longLatency are the latency of the queries of at
	// least longQueryRunes characters (not in the JSON, whose keys are fixed).
	longQueries int
	longLatency map[string]float64
	// top10Latency is the latency of a second pass asking for 10 hits (the
	// API's default) instead of 100.
	top10Latency map[string]float64
	// longTop10Latency is the same for the long questions.
	longTop10Latency map[string]float64
	// extraLatency is the time the outline and graph sources and the fusion
	// took per query (their debug stages), in fused mode.
	extraLatency map[string]float64
}

// HistBucket counts the queries whose latency is at most LeMS (and above the
// bucket before); the last bucket's LeMS is 0, for "more".
type HistBucket struct {
	LeMS  float64 `json:"le_ms"`
	Count int     `json:"count"`
}

// histBounds are the latency histogram's upper bounds, in ms.
var histBounds = []float64{0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000}

// curveKs are the ks of the recall curve.
var curveKs = []int{1, 2, 3, 5, 10, 20, 50, 100}

func histogram(lat []time.Duration) []HistBucket {
	out := make([]HistBucket, len(histBounds)+1)
	for i, b := range histBounds {
		out[i].LeMS = b
	}
	for _, d := range lat {
		ms := float64(d.Microseconds()) / 1000
		i, _ := slices.BinarySearch(histBounds, ms)
		out[i].Count++
	}
	return out
}

// rankedDoc is a document in a query's ranking.
type rankedDoc struct {
	id    string
	score float64
}

// longQueryRunes is where a "long question" starts: everyday questions of 20
// characters or more, the slow case for an inverted index.
const longQueryRunes = 20

// longOnly returns the latencies of the long questions (lat is in query order).
func longOnly(set *Set, lat []time.Duration) []time.Duration {
	var out []time.Duration
	for i, q := range set.Queries {
		if i < len(lat) && utf8.RuneCountInString(q.Text) >= longQueryRunes {
			out = append(out, lat[i])
		}
	}
	return out
}

// score computes the metrics of a run; lat is each query's latency, in
// query order.
func score(set *Set, run map[string][]rankedDoc, lat []time.Duration) *metrics {
	all := &metrics{ByKind: map[string]*metrics{}, RecallCurve: map[string]float64{}}
	add := func(m *metrics, q Query) {
		rels := set.Qrels[q.ID]
		ranked := run[q.ID]
		m.Queries++
		if m.RecallCurve != nil {
			for _, k := range curveKs {
				m.RecallCurve[strconv.Itoa(k)] += recallAt(ranked, rels, k)
			}
		}
		m.Recall1 += recallAt(ranked, rels, 1)
		m.Recall5 += recallAt(ranked, rels, 5)
		m.Recall10 += recallAt(ranked, rels, 10)
		m.Recall100 += recallAt(ranked, rels, 100)
		for i, d := range ranked[:min(10, len(ranked))] {
			if rels[d.id] > 0 {
				m.Hit10++
				m.MRR10 += 1 / float64(i+1)
				break
			}
		}
		m.NDCG10 += ndcgAt(ranked, rels, 10)
	}
	for _, q := range set.Queries {
		add(all, q)
		if q.Kind != "" {
			if all.ByKind[q.Kind] == nil {
				all.ByKind[q.Kind] = &metrics{}
			}
			add(all.ByKind[q.Kind], q)
		}
	}
	for _, m := range append([]*metrics{all}, slices.Collect(maps.Values(all.ByKind))...) {
		n := float64(max(m.Queries, 1))
		for _, p := range []*float64{&m.Recall1, &m.Recall5, &m.Recall10, &m.Recall100, &m.Hit10, &m.MRR10, &m.NDCG10} {
			*p = round4(*p / n)
		}
		for k, v := range m.RecallCurve {
			m.RecallCurve[k] = round4(v / n)
		}
	}
	if len(all.ByKind) == 0 {
		all.ByKind = nil
	}
	all.Latency = percentiles(lat)
	all.LatencyHistogram = histogram(lat)
	long := longOnly(set, lat)
	all.longQueries, all.longLatency = len(long), percentiles(long)
	return all
}

func recallAt(ranked []rankedDoc, rels map[string]int, k int) float64 {
	found := 0
	for _, d := range ranked[:min(k, len(ranked))] {
		if rels[d.id] > 0 {
			found++
		}
	}
	return float64(found) / float64(len(rels))
}

func ndcgAt(ranked []rankedDoc, rels map[string]int, k int) float64 {
	dcg := 0.0
	for i, d := range ranked[:min(k, len(ranked))] {
		dcg += float64(rels[d.id]) / math.Log2(float64(i+2))
	}
	ideal := make([]int, 0, len(rels))
	for _, r := range rels {
		ideal = append(ideal, r)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ideal)))
	idcg := 0.0
	for i, r := range ideal[:min(k, len(ideal))] {
		idcg += float64(r) / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// percentiles returns p50, p95 and p99 in milliseconds.
func percentiles(lat []time.Duration) map[string]float64 {
	if len(lat) == 0 {
		return map[string]float64{"p50": 0, "p95": 0, "p99": 0}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return math.Round(float64(s[max(i, 0)].Microseconds())) / 1000
	}
	return map[string]float64{"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }
