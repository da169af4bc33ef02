package analysis

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-ego/gse"
	"github.com/zhisou/zhisou/index/analysis/internal/gsedict"
)

// TestSegmentsLikeGse checks that an Analyzer on the dictionary gsedict.Load
// builds segments as one on gse's LoadDictEmbed("zh_s") does: every text in
// testdata/courses and the cmrc2018 set, in the Analyzer's terms with
// sub-words and in gse's own segmentation. (gsedict's
// TestLoadMatchesGse compares the dictionaries token by token.)
func TestSegmentsLikeGse(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary twice (3 s)")
	}
	if gsedict.Embedded() == "" {
		t.Fatal("gsedict.Embedded() is empty: gse's embedded dictionary text not found (renamed in this gse version?), so New loads the slow way")
	}
	// One after the other: gse's Init loads its HMM model into package
	// maps, unguarded.
	an := testAnalyzer(t) // New, so gsedict.Load
	mine := &an.seg
	stock := &gse.Segmenter{SkipLog: true}
	if err := stock.LoadDictEmbed("zh_s"); err != nil {
		t.Fatal(err)
	}

	if an.subs == nil {
		t.Fatal("New made no sub-segment table: gseToken no longer mirrors gse.Token")
	}
	stockAn := *an
	stockAn.seg = *stock
	stockAn.subs = nil // the stock tokens' own sub-segments
	texts := segTexts(t)
	// Both segmenters and analyzers are safe for concurrent use: compare
	// on all cores.
	var wg sync.WaitGroup
	var failed atomic.Int32
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(texts) && failed.Load() < 5; i += workers {
				s, b := texts[i], []byte(texts[i])
				// gse's segmentation (the sub-words are compared through
				// the Analyzer's Tokens and SubTerms).
				same(t, &failed, "Segment", s, gse.ToString(stock.Segment(b)), gse.ToString(mine.Segment(b)))
				same(t, &failed, "Cut(hmm)", s, strings.Join(stock.Cut(s, true), "|"), strings.Join(mine.Cut(s, true), "|"))
				same(t, &failed, "Tokens", s, tokenString(stockAn.Tokens(s)), tokenString(an.Tokens(s)))
				qt := an.QueryTokens(s)
				same(t, &failed, "QueryTokens", s, tokenString(stockAn.QueryTokens(s)), tokenString(qt))
				for _, tk := range qt {
					same(t, &failed, "SubTerms", tk.Term, strings.Join(stockAn.SubTerms(tk.Term), "|"), strings.Join(an.SubTerms(tk.Term), "|"))
				}
			}
		})
	}
	wg.Wait()
	bytes := 0
	for _, s := range texts {
		bytes += len(s)
	}
	t.Logf("%d texts, %d bytes segmented alike", len(texts), bytes)
}

func same(t *testing.T, failed *atomic.Int32, what, text, stock, mine string) {
	t.Helper()
	if stock != mine {
		t.Errorf("%s of %.60q:\nstock     %.300s\nbuildDict %.300s", what, text, stock, mine)
		failed.Add(1)
	}
}

func tokenString(toks []Token) string {
	var b strings.Builder
	for _, tk := range toks {
		fmt.Fprintf(&b, "%s@%d-%d ", tk.Term, tk.Start, tk.End)
	}
	return b.String()
}

// segTexts returns the texts of testdata/courses and, when it is there, of
// the cmrc2018 set (passages, titles and questions).
func segTexts(t *testing.T) []string {
	t.Helper()
	var texts []string
	err := filepath.WalkDir("../../testdata/courses", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		texts = append(texts, strings.Split(string(b), "\n\n")...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) < 100 {
		t.Fatalf("testdata/courses: %d paragraphs", len(texts))
	}
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		dir := filepath.Join(d, "shared", "eval", "cmrc2018")
		if _, err := os.Stat(filepath.Join(dir, "corpus.jsonl")); err != nil {
			continue
		}
		for _, name := range []string{"corpus.jsonl", "queries.jsonl"} {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var rec struct{ Title, Text string }
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				texts = append(texts, rec.Title, rec.Text)
			}
			f.Close()
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
		}
		break
	}
	return slices.DeleteFunc(texts, func(s string) bool { return s == "" })
}

// BenchmarkNewAnalyzer builds a whole Analyzer (see gsedict's BenchmarkLoad
// for the dictionary alone).
func BenchmarkNewAnalyzer(b *testing.B) {
	b.Run("New", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
