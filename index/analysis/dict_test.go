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

// stockSeg loads the embedded dictionary the stock way.
func stockSeg(t testing.TB) *gse.Segmenter {
	t.Helper()
	seg := &gse.Segmenter{SkipLog: true}
	if err := seg.LoadDictEmbed("zh_s"); err != nil {
		t.Fatal(err)
	}
	return seg
}

// TestBuildDictMatchesGse checks that buildDict builds the dictionary that
// gse's LoadDictEmbed("zh_s") builds: the same tokens with the same
// frequencies and parts of speech, the same sub-segments through the
// Analyzer's table, and so the same segmentation of every text in
// testdata/courses and the cmrc2018 set, in the Analyzer's terms with
// sub-words and in gse's own segmentation.
func TestBuildDictMatchesGse(t *testing.T) {
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
	stock := stockSeg(t)

	sd, md := stock.Dict, mine.Dict
	if sd.NumTokens() != md.NumTokens() || sd.TotalFreq() != md.TotalFreq() || sd.MaxTokenLen() != md.MaxTokenLen() {
		t.Fatalf("tokens, total frequency, max length: stock %d, %v, %d; buildDict %d, %v, %d",
			sd.NumTokens(), sd.TotalFreq(), sd.MaxTokenLen(), md.NumTokens(), md.TotalFreq(), md.MaxTokenLen())
	}
	if sd.NumTokens() < 300_000 {
		t.Fatalf("stock dictionary has %d tokens, want the full zh_s", sd.NumTokens())
	}
	bad := 0
	for i := range sd.Tokens {
		st := &sd.Tokens[i]
		key := st.Text()
		v, _, err := md.Value([]byte(key))
		if err != nil || v < 0 || v >= md.NumTokens() {
			t.Errorf("token %q: not in buildDict's dictionary (%v)", key, err)
			bad++
		} else if mt := &md.Tokens[v]; mt.Text() != key || mt.Freq() != st.Freq() || mt.Pos() != st.Pos() || subSegments(an.subs, mt) != subSegments(nil, st) {
			t.Errorf("token %q: stock %v %q %s, buildDict %q %v %q %s",
				key, st.Freq(), st.Pos(), subSegments(nil, st), mt.Text(), mt.Freq(), mt.Pos(), subSegments(an.subs, mt))
			bad++
		}
		if bad >= 10 {
			t.Fatal("too many differences")
		}
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
	t.Logf("%d tokens; %d texts, %d bytes segmented alike", sd.NumTokens(), len(texts), bytes)
}

func same(t *testing.T, failed *atomic.Int32, what, text, stock, mine string) {
	t.Helper()
	if stock != mine {
		t.Errorf("%s of %.60q:\nstock     %.300s\nbuildDict %.300s", what, text, stock, mine)
		failed.Add(1)
	}
}

// subSegments is a token's tree of dictionary sub-segments, as text, read
// through subs (nil: the tokens' own).
func subSegments(subs *gsedict.Table, tok *gse.Token) string {
	var b strings.Builder
	var walk func(*gse.Token)
	walk = func(tok *gse.Token) {
		for _, s := range subs.Of(tok) {
			b.WriteString("(" + s.Token().Text())
			walk(s.Token())
			b.WriteString(")")
		}
	}
	walk(tok)
	return b.String()
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
