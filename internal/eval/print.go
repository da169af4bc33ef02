package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteRuns writes each query's ranked list (qid, docid, rank, score, one
// per line) to path, and the baseline's, if it ran, to path.bleve.
func (r *Result) WriteRuns(path string) error {
	if err := writeRun(path, r.zhisouRun); err != nil {
		return err
	}
	if r.bleve != nil {
		return writeRun(path+".bleve", r.bleveRun)
	}
	return nil
}

func writeRun(path string, run map[string][]rankedDoc) error {
	var b strings.Builder
	for _, q := range slices.Sorted(maps.Keys(run)) {
		for i, d := range run[q] {
			fmt.Fprintf(&b, "%s\t%s\t%d\t%.6f\n", q, d.id, i+1, d.score)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// JSON returns the metrics as one JSON object: zhisou's alone, or
// {"zhisou": ..., "bleve": ...} with the baseline.
func (r *Result) JSON() ([]byte, error) {
	var v any = r.zhisou
	if r.bleve != nil {
		v = map[string]*metrics{"zhisou": r.zhisou, "bleve": r.bleve}
	}
	return json.Marshal(v)
}

// Print writes the report: a table of metrics (with the baseline and the
// ratio when it ran), the metrics by query kind, and the rerank summary.
func Print(w io.Writer, r *Result) {
	printTable(w, r)
	if len(r.zhisou.ByKind) > 0 {
		printKinds(w, r.zhisou)
	}
	if s := r.rerank; len(s.statuses) > 0 {
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(s.statuses)) {
			parts = append(parts, fmt.Sprintf("%s %d", st, s.statuses[st]))
		}
		fmt.Fprintf(w, "\nrerank: %s; top hit changed %d; tokens in %d, out %d, reasoning %d; estimated cost %.4f\n",
			strings.Join(parts, ", "), s.topChanged, s.usage.Prompt, s.usage.Completion, s.usage.Reasoning, s.cost)
	}
}

// printTable writes the metrics table, one row a metric.
func printTable(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "metric\tzhisou\t"
	if r.bleve != nil {
		header += "bleve\tratio\t"
	}
	fmt.Fprintln(tw, header)
	row := func(name string, z, b float64) {
		line := fmt.Sprintf("%s\t%.4f\t", name, z)
		if r.bleve != nil {
			ratio := "-"
			if b != 0 {
				ratio = fmt.Sprintf("%.2fx", z/b)
			}
			line += fmt.Sprintf("%.4f\t%s\t", b, ratio)
		}
		fmt.Fprintln(tw, line)
	}
	z, b := r.zhisou, r.bleve
	if b == nil {
		b = &metrics{Latency: map[string]float64{}, longLatency: map[string]float64{}}
	}
	for _, c := range []struct {
		name string
		z, b int
	}{{"queries", z.Queries, b.Queries}, {"refused (scored as misses)", z.Refused, b.Refused}, {"pairs not learned (folds)", z.RefusedPairs, b.RefusedPairs}, {"docs", z.Docs, b.Docs}} {
		fmt.Fprintf(tw, "%s\t%d\t", c.name, c.z)
		if r.bleve != nil {
			fmt.Fprintf(tw, "%d\t\t", c.b)
		}
		fmt.Fprintln(tw)
	}
	row("recall@1", z.Recall1, b.Recall1)
	row("recall@5", z.Recall5, b.Recall5)
	row("recall@10", z.Recall10, b.Recall10)
	row("recall@100", z.Recall100, b.Recall100)
	row("hit@10", z.Hit10, b.Hit10)
	row("mrr@10", z.MRR10, b.MRR10)
	row("ndcg@10", z.NDCG10, b.NDCG10)
	for _, p := range []string{"p50", "p95", "p99"} {
		row("latency "+p+" ms", z.Latency[p], b.Latency[p])
	}
	printLatencyRows(row, z, b)
	row("ingest s", z.IngestSeconds, b.IngestSeconds)
	tw.Flush()
}

// printLatencyRows writes the rows of the second pass, the long questions
// and the fusion's share, when they were measured.
func printLatencyRows(row func(name string, z, b float64), z, b *metrics) {
	if z.top10Latency != nil {
		for _, p := range []string{"p50", "p99"} {
			row("top 10 latency "+p+" ms", z.top10Latency[p], b.top10Latency[p])
		}
	}
	if z.longQueries > 0 {
		for _, p := range []string{"p50", "p99"} {
			row(fmt.Sprintf("%d queries ≥%d chars %s ms", z.longQueries, longQueryRunes, p), z.longLatency[p], b.longLatency[p])
		}
		if z.longTop10Latency != nil {
			for _, p := range []string{"p50", "p99"} {
				row(fmt.Sprintf("same, top 10 %s ms", p), z.longTop10Latency[p], b.longTop10Latency[p])
			}
		}
	}
	if z.extraLatency != nil {
		for _, p := range []string{"p50", "p99"} {
			row("outline+graph+fusion "+p+" ms", z.extraLatency[p], 0)
		}
	}
}

// printKinds writes recall, MRR and nDCG by query kind.
func printKinds(w io.Writer, z *metrics) {
	fmt.Fprintln(w, "\nby query kind (zhisou):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tqueries\trecall@10\tmrr@10\tndcg@10\t")
	for _, k := range slices.Sorted(maps.Keys(z.ByKind)) {
		m := z.ByKind[k]
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%.4f\t\n", k, m.Queries, m.Recall10, m.MRR10, m.NDCG10)
	}
	tw.Flush()
}
