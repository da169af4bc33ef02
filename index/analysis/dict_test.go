package analysis

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-ego/gse"
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

// TestBuildDictSmall compares buildDict with gse's LoadDictStr on a small
// text with the awkward lines: keys that differ only in case (the first line
// wins), a word repeated with another frequency or after a tab, lines without
// a frequency or below the minimum, extra fields, carriage returns, blank
// lines; dealt into one range of keys and into many.
func TestBuildDictSmall(t *testing.T) {
	const text = "价格 100 n\n" +
		"4S店 3 n\n" +
		"客户 50 n\r\n" +
		"\n" +
		"价格战 20 n\n" +
		"无频率\n" +
		"低频 1 n\n" +
		"坏频 x n\n" +
		"单 500 n\n" +
		"多字段 7 v extra more\n" +
		"无词性 9\n" +
		" 前空格 8 a\n" +
		"\t客户 60 v\n" +
		"4s店 30 v\n" +
		"价格 999 v\n" +
		"客户经理 40 n\n" +
		"abc 12 eng\n" +
		"ABC 13 nz\n"
	stock := &gse.Segmenter{SkipLog: true}
	if err := stock.LoadDictStr(text); err != nil {
		t.Fatal(err)
	}
	want := dictString(stock.Dict, nil)
	for _, ranges := range []int{1, 2, 3, 5, 40} {
		mine := &gse.Segmenter{SkipLog: true}
		subs := buildDictRanges(mine, text, ranges, 2)
		if subs == nil {
			t.Fatal("no sub-segment table: gseToken no longer mirrors gse.Token")
		}
		if got := dictString(mine.Dict, subs); got != want {
			t.Errorf("%d ranges:\n got %s\nwant %s", ranges, got, want)
		}
	}
}

// dictString is a dictionary's tokens in key order, with their frequencies,
// parts of speech and sub-segments (from subs; nil: the tokens' own), and
// its totals.
func dictString(d *gse.Dictionary, subs *subTable) string {
	var lines []string
	for i := range d.Tokens {
		tk := &d.Tokens[i]
		v, _, err := d.Value([]byte(tk.Text()))
		lines = append(lines, fmt.Sprintf("%s/%v/%s/%s/%v", tk.Text(), tk.Freq(), tk.Pos(), subSegments(subs, tk), err == nil && &d.Tokens[v] == tk))
	}
	slices.Sort(lines)
	return fmt.Sprintf("%d tokens, total %v, max %d: %s", d.NumTokens(), d.TotalFreq(), d.MaxTokenLen(), strings.Join(lines, " "))
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
	if gseZhS == "" {
		t.Fatal("gseZhS is empty: gse's embedded dictionary text not found (renamed in this gse version?), so New loads the slow way")
	}
	// One after the other: gse's Init loads its HMM model into package
	// maps, unguarded.
	an := testAnalyzer(t) // New, so buildDict
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
func subSegments(subs *subTable, tok *gse.Token) string {
	var b strings.Builder
	var walk func(*gse.Token)
	walk = func(tok *gse.Token) {
		for _, s := range subs.of(tok) {
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

// BenchmarkNewAnalyzer loads the embedded dictionary gse's way and
// buildDict's way, and builds a whole Analyzer.
func BenchmarkNewAnalyzer(b *testing.B) {
	b.Run("gse-LoadDictEmbed", func(b *testing.B) {
		for b.Loop() {
			stockSeg(b)
		}
	})
	b.Run("buildDict", func(b *testing.B) {
		for b.Loop() {
			buildDict(&gse.Segmenter{SkipLog: true}, gseZhS)
		}
	})
	b.Run("New", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSubTableMatchesCalcToken checks buildDict's distances and its table of
// sub-segments against gse's CalcToken on the same dictionary, field by
// field: every token's distance, and its sub-segments (the same dictionary
// tokens, by pointer, at the same byte offsets), the table read from two
// goroutines at once. On a small text with kana, Latin and one-character
// words, and (without -short) on the whole zh_s.
func TestSubTableMatchesCalcToken(t *testing.T) {
	if !tokenLayoutOK() {
		t.Fatal("gseToken no longer mirrors gse.Token (another gse version?): buildDict falls back to gse's one-core CalcToken")
	}
	texts := map[string]string{"small": "价格 100 n\n价格战 20 n\n战 30 n\n客户经理 40 n\n客户 50 n\n经理 60 n\n" +
		"カタカナ 5 n\nカ 7 n\nタ 7 n\nカタ 3 n\nabc 12 eng\nab 4 eng\n一 900 m\n一一 9 m\n一一一 2 m\n"}
	if !testing.Short() {
		texts["zh_s"] = gseZhS
	}
	type calc struct {
		distance float32
		segments []gse.Segment // copies: gse's CalcToken allocates anew
	}
	record := func(seg *gse.Segmenter, subs *subTable, workers int) []calc {
		toks := seg.Dict.Tokens
		out := make([]calc, len(toks))
		var wg sync.WaitGroup
		for w := range workers { // each token read by every worker
			wg.Go(func() {
				for j := range toks {
					i := (j + w*len(toks)/workers) % len(toks) // starting apart
					var segs []gse.Segment
					for _, s := range subs.of(&toks[i]) {
						segs = append(segs, *s)
					}
					if w == 0 {
						out[i] = calc{distance: mirrorTokens(seg.Dict)[i].distance, segments: segs}
					}
				}
			})
		}
		wg.Wait()
		return out
	}
	for name, text := range texts {
		t.Run(name, func(t *testing.T) {
			seg := &gse.Segmenter{SkipLog: true}
			subs := buildDictRanges(seg, text, 4, 1)
			if subs == nil {
				t.Fatal("no sub-segment table")
			}
			for i := range seg.Dict.Tokens {
				if n := len(seg.Dict.Tokens[i].Segments()); n > 0 {
					t.Fatalf("token %q has %d sub-segments of its own: buildDict computed them at load", seg.Dict.Tokens[i].Text(), n)
				}
			}
			mine := record(seg, subs, 2)
			for i := range seg.Dict.Tokens { // computed once, then kept
				tok := &seg.Dict.Tokens[i]
				if a, b := subs.of(tok), subs.of(tok); len(a) > 0 && &a[0] != &b[0] {
					t.Fatalf("token %q: its sub-segments were computed again", tok.Text())
				}
			}
			seg.CalcToken()
			stock := record(seg, nil, 1)
			subsegs := 0
			for i := range stock {
				if !reflect.DeepEqual(mine[i], stock[i]) {
					t.Fatalf("token %q: buildDict %+v, gse's CalcToken %+v", seg.Dict.Tokens[i].Text(), mine[i], stock[i])
				}
				subsegs += len(stock[i].segments)
			}
			if subsegs == 0 {
				t.Fatal("no token has sub-segments: the comparison tested nothing")
			}
			t.Logf("%d tokens, %d sub-segments alike", len(stock), subsegs)
		})
	}
}
