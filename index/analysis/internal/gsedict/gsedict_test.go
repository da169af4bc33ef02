package gsedict

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
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
func dictString(d *gse.Dictionary, subs *Table) string {
	var lines []string
	for i := range d.Tokens {
		tk := &d.Tokens[i]
		v, _, err := d.Value([]byte(tk.Text()))
		lines = append(lines, fmt.Sprintf("%s/%v/%s/%s/%v", tk.Text(), tk.Freq(), tk.Pos(), subSegments(subs, tk), err == nil && &d.Tokens[v] == tk))
	}
	slices.Sort(lines)
	return fmt.Sprintf("%d tokens, total %v, max %d: %s", d.NumTokens(), d.TotalFreq(), d.MaxTokenLen(), strings.Join(lines, " "))
}

// subSegments is a token's tree of dictionary sub-segments, as text, read
// through subs (nil: the tokens' own).
func subSegments(subs *Table, tok *gse.Token) string {
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

// BenchmarkLoad loads the embedded dictionary gse's way and this package's.
func BenchmarkLoad(b *testing.B) {
	b.Run("gse-LoadDictEmbed", func(b *testing.B) {
		for b.Loop() {
			stockSeg(b)
		}
	})
	b.Run("gsedict.Load", func(b *testing.B) {
		for b.Loop() {
			Load(&gse.Segmenter{SkipLog: true}, gseZhS)
		}
	})
}

// TestSubTableMatchesCalcToken checks Load's distances and its table of
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
	record := func(seg *gse.Segmenter, subs *Table, workers int) []calc {
		toks := seg.Dict.Tokens
		out := make([]calc, len(toks))
		var wg sync.WaitGroup
		for w := range workers { // each token read by every worker
			wg.Go(func() {
				for j := range toks {
					i := (j + w*len(toks)/workers) % len(toks) // starting apart
					var segs []gse.Segment
					for _, s := range subs.Of(&toks[i]) {
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
				if a, b := subs.Of(tok), subs.Of(tok); len(a) > 0 && &a[0] != &b[0] {
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

// TestSupportedGse fails when the build's gse is not the version this
// package mirrors: on a gse upgrade, check gseToken, the linknamed names and
// CalcToken's steps against the new code, then update SupportedGse. (The
// other tests here compare with gse's own loader and would catch most
// changes, but a change they miss would be silent.)
func TestSupportedGse(t *testing.T) {
	// The module's go.mod names the gse version every build uses (test
	// binaries carry no dependency list in their build information).
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for line := range strings.Lines(string(b)) {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/go-ego/gse" {
					if f[1] != SupportedGse {
						t.Fatalf("go.mod requires gse %s; gsedict mirrors gse's internals at %s only (see SupportedGse)", f[1], SupportedGse)
					}
					return
				}
			}
			t.Fatal("go.mod does not require github.com/go-ego/gse")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestEmbeddedFound fails when the linknamed dictionary text is empty: gse
// renamed it, or the build left out gse's embedded dictionaries, and New
// would load the three times slower way without a word.
func TestEmbeddedFound(t *testing.T) {
	if len(Embedded()) < 1<<20 {
		t.Fatalf("Embedded() is %d bytes; want gse's zh_s dictionary (several MB)", len(Embedded()))
	}
	if !Mirrored() {
		t.Fatal("gseToken no longer mirrors gse.Token: Load falls back to gse's one-core CalcToken")
	}
}

// TestLoadMatchesGse checks that Load builds the dictionary that gse's
// LoadDictEmbed("zh_s") builds: the same tokens with the same frequencies and
// parts of speech, and the same sub-segments through the Table.
func TestLoadMatchesGse(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary twice (3 s)")
	}
	mine := &gse.Segmenter{SkipLog: true}
	subs := Load(mine, Embedded())
	if subs == nil {
		t.Fatal("Load made no sub-segment table: gseToken no longer mirrors gse.Token")
	}
	stock := stockSeg(t)
	sd, md := stock.Dict, mine.Dict
	if sd.NumTokens() != md.NumTokens() || sd.TotalFreq() != md.TotalFreq() || sd.MaxTokenLen() != md.MaxTokenLen() {
		t.Fatalf("tokens, total frequency, max length: stock %d, %v, %d; Load %d, %v, %d",
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
			t.Errorf("token %q: not in Load's dictionary (%v)", key, err)
			bad++
		} else if mt := &md.Tokens[v]; mt.Text() != key || mt.Freq() != st.Freq() || mt.Pos() != st.Pos() || subSegments(subs, mt) != subSegments(nil, st) {
			t.Errorf("token %q: stock %v %q %s, Load %q %v %q %s",
				key, st.Freq(), st.Pos(), subSegments(nil, st), mt.Text(), mt.Freq(), mt.Pos(), subSegments(subs, mt))
			bad++
		}
		if bad >= 10 {
			t.Fatal("too many differences")
		}
	}

}
