package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// The benchmarks run on the cmrc2018 set (../shared/eval/cmrc2018 from the
// repository), skipped when it is absent: 4 932 passages and 1 500
// questions, of which the 355 of 20+ characters are the long ones.
// $ZHISOU_BENCH_SET names another set in the same format (the 50 000-passage
// set of testdata/tools/mkcorpus-debian.py).

var (
	benchOnce    sync.Once
	benchSearch  *retrieve.Searcher
	benchStore   *store.Store
	benchShort   []string
	benchLong    []string
	benchErr     error
	benchDirRoot string
)

func cmrcDir() string {
	if d := os.Getenv("ZHISOU_BENCH_SET"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "corpus.jsonl")); err != nil {
			return "" // skipped, as when cmrc2018 is absent
		}
		return d
	}
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "eval", "cmrc2018")
		if _, err := os.Stat(filepath.Join(p, "corpus.jsonl")); err == nil {
			return p
		}
	}
	return ""
}

func benchSetup(b *testing.B) (*retrieve.Searcher, *store.Store) {
	b.Helper()
	dir := cmrcDir()
	if dir == "" {
		b.Skip("no eval set: cmrc2018 not found, or $ZHISOU_BENCH_SET has no corpus.jsonl")
	}
	benchOnce.Do(func() {
		ctx := context.Background()
		an, err := analysis.New(analysis.Options{})
		if err != nil {
			benchErr = err
			return
		}
		benchDirRoot, err = os.MkdirTemp("", "zhisou-bench-")
		if err != nil {
			benchErr = err
			return
		}
		st, err := store.Open(ctx, benchDirRoot, an, store.Options{})
		if err != nil {
			benchErr = err
			return
		}
		if err := st.CreateCollection(ctx, index.DefaultCollection("c")); err != nil {
			benchErr = err
			return
		}
		if benchErr = loadBenchCorpus(ctx, st, "c", dir); benchErr != nil {
			return
		}
		f, err := os.Open(filepath.Join(dir, "queries.jsonl"))
		if err != nil {
			benchErr = err
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var q struct{ Text string }
			if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
				benchErr = err
				return
			}
			if utf8.RuneCountInString(q.Text) >= 20 {
				benchLong = append(benchLong, q.Text)
			} else {
				benchShort = append(benchShort, q.Text)
			}
		}
		benchStore = st
		benchSearch = retrieve.New(st, retrieve.Options{MaxTopK: 100})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchSearch, benchStore
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
		os.RemoveAll(benchDirRoot)
	}
	os.Exit(code)
}

// BenchmarkSegment is the query analysis alone: normalisation, gse, sub-words
// and bigrams of one cmrc2018 question per iteration.
func BenchmarkSegment(b *testing.B) {
	s, _ := benchSetup(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.QueryTerms(benchShort[i%len(benchShort)])
		i++
	}
}

// BenchmarkBM25 is the index's BM25F top-100 (pool 200) on analysed cmrc2018
// questions, pruned (what Search does) and exhaustive (every posting scored).
func BenchmarkBM25(b *testing.B) {
	s, st := benchSetup(b)
	for _, set := range []struct {
		name string
		qs   []string
	}{{"short", benchShort}, {"long", benchLong}} {
		terms := make([][]index.QueryTerm, len(set.qs))
		for i, q := range set.qs {
			terms[i] = s.QueryTerms(q)
		}
		for _, mode := range []string{"pruned", "exhaustive"} {
			b.Run(set.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				i, postings, cands := 0, 0, 0
				for b.Loop() {
					var err error
					var ss index.SearchStats
					if mode == "pruned" {
						_, ss, err = st.Search(b.Context(), "c", terms[i%len(terms)], index.Filter{}, 100)
					} else {
						_, ss, err = st.SearchExhaustive(b.Context(), "c", terms[i%len(terms)], index.Filter{}, 100)
					}
					if err != nil {
						b.Fatal(err)
					}
					postings += ss.Postings
					cands += ss.Candidates
					i++
				}
				b.ReportMetric(float64(postings)/float64(i), "postings/op")
				b.ReportMetric(float64(cands)/float64(i), "chunks/op")
			})
		}
	}
}

// loadBenchCorpus ingests the set's corpus into collection, which must exist,
// and merges its bleve index into one segment.
func loadBenchCorpus(ctx context.Context, st *store.Store, collection, dir string) error {
	ins, failed, err := ingest.ReadAll([]string{filepath.Join(dir, "corpus.jsonl")}, 0)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return failed[0]
	}
	sink := ingest.Local{Store: st}
	for i := 0; i < len(ins); i += 256 {
		if _, err := sink.Upsert(ctx, collection, ins[i:min(i+256, len(ins))]); err != nil {
			return err
		}
	}
	return st.ForceMerge(ctx, collection)
}

var (
	writeOnce sync.Once
	writeErr  error
)

// BenchmarkSearchAfterWrite is a long question's search (top 10) right after
// a one-chunk write to the same collection, against the same search without
// the write: what a write costs the searches that follow it (a new bleve
// snapshot, so new postings caches; a new graph version). The writes go to a
// copy of the corpus in collection "w", so the other benchmarks' store does
// not change. The write is not timed; the background work it starts is.
func BenchmarkSearchAfterWrite(b *testing.B) {
	s, st := benchSetup(b)
	writeOnce.Do(func() {
		ctx := context.Background()
		if writeErr = st.CreateCollection(ctx, index.DefaultCollection("w")); writeErr == nil {
			writeErr = loadBenchCorpus(ctx, st, "w", cmrcDir())
		}
		for range 2 { // warm, as the eval's -warm
			for _, q := range benchLong {
				if _, err := s.Search(ctx, retrieve.Request{Collection: "w", Query: q, TopK: 10}); err != nil && writeErr == nil {
					writeErr = err
				}
			}
		}
	})
	if writeErr != nil {
		b.Fatal(writeErr)
	}
	for _, write := range []bool{false, true} {
		name := "no-write"
		if write {
			name = "after-write"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if write {
					b.StopTimer()
					id := fmt.Sprint("write-", i%50)
					d := index.Document{ID: id, Title: "写入", Chunks: []index.Chunk{{ID: id + "#0", DocID: id,
						Text: fmt.Sprintf("第%d次写入的内容：客户关心价格和服务。", i)}}}
					if _, err := st.Upsert(b.Context(), "w", []index.Document{d}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := s.Search(b.Context(), retrieve.Request{Collection: "w", Query: benchLong[i%len(benchLong)], TopK: 10}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRetrieve is the whole in-process search the eval times: analysis,
// BM25, top 100 hits loaded and highlighted.
func BenchmarkRetrieve(b *testing.B) {
	s, _ := benchSetup(b)
	for _, set := range []struct {
		name string
		qs   []string
	}{{"short", benchShort}, {"long", benchLong}} {
		b.Run(set.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Search(b.Context(), retrieve.Request{Collection: "c", Query: set.qs[i%len(set.qs)], TopK: 100}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
