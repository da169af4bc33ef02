package index

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNormalizeLexicon(t *testing.T) {
	an := testAnalyzer(t)
	long := strings.Repeat("长", 10_000)
	many := make([]string, MaxLexiconEntries+1)
	for i := range many {
		many[i] = "词"
	}
	tests := []struct {
		name    string
		in      Lexicon
		want    Lexicon
		wantErr string // substring of the error; "" for success
	}{
		{name: "empty lexicon", in: Lexicon{}, want: Lexicon{Terms: []string{}, StopWords: []string{}}},
		{
			name: "normalised like text",
			in: Lexicon{
				Terms:     []string{" ＸＱ－７７００ ", "三明治反饋法", "C++"},
				Synonyms:  []Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}},
				StopWords: []string{"請問"},
			},
			want: Lexicon{
				Terms:     []string{"xq-7700", "三明治反馈法", "c++"},
				Synonyms:  []Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}},
				StopWords: []string{"请问"},
			},
		},
		{
			// Expansion is one hop, so a cycle cannot loop: accepted.
			name: "synonym cycle",
			in:   Lexicon{Synonyms: []Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "b", Alternatives: []string{"a"}}}},
			want: Lexicon{Terms: []string{}, StopWords: []string{}, Synonyms: []Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "b", Alternatives: []string{"a"}}}},
		},
		{name: "empty term", in: Lexicon{Terms: []string{"价格", ""}}, wantErr: "terms[1] is empty"},
		{name: "blank term", in: Lexicon{Terms: []string{" \t"}}, wantErr: "terms[0] is empty"},
		{name: "empty stop word", in: Lexicon{StopWords: []string{""}}, wantErr: "stop_words[0] is empty"},
		{name: "empty synonym key", in: Lexicon{Synonyms: []Synonym{{Term: "", Alternatives: []string{"x"}}}}, wantErr: "synonyms[0].term is empty"},
		{name: "empty alternative", in: Lexicon{Synonyms: []Synonym{{Term: "x", Alternatives: []string{"y", ""}}}}, wantErr: "synonyms[0].alternatives[1] is empty"},
		{name: "no alternatives", in: Lexicon{Synonyms: []Synonym{{Term: "x"}}}, wantErr: `synonyms[0] ("x") has no alternatives`},
		{name: "10000-character term", in: Lexicon{Terms: []string{"价格", long}}, wantErr: "terms[1] \"长长长长长长长长长长长长长长长长长长长长长长长长\"… (10000 characters) is over the limit of 64 characters"},
		{name: "10000-character alternative", in: Lexicon{Synonyms: []Synonym{{Term: "x", Alternatives: []string{long}}}}, wantErr: "synonyms[0].alternatives[0]"},
		{name: "65 characters", in: Lexicon{StopWords: []string{strings.Repeat("a", 65)}}, wantErr: "stop_words[0]"},
		{name: "64 characters", in: Lexicon{Terms: []string{strings.Repeat("a", 64)}}, want: Lexicon{Terms: []string{strings.Repeat("a", 64)}, StopWords: []string{}}},
		{name: "space inside", in: Lexicon{Terms: []string{"sales force"}}, wantErr: `terms[0] "sales force" contains a space`},
		{name: "punctuation only", in: Lexicon{Terms: []string{"——"}}, wantErr: `terms[0] "——" has no letter or digit`},
		{name: "invalid UTF-8", in: Lexicon{Terms: []string{"a\xffb"}}, wantErr: "terms[0] is not valid UTF-8"},
		{name: "duplicate term", in: Lexicon{Terms: []string{"xq-7700", "价格", "ＸＱ-7700"}}, wantErr: `terms[2] "ＸＱ-7700" duplicates terms[0] (both are "xq-7700" once normalised)`},
		{name: "duplicate term, traditional", in: Lexicon{Terms: []string{"反馈", "反饋"}}, wantErr: "terms[1]"},
		{name: "duplicate stop word", in: Lexicon{StopWords: []string{"的", "的"}}, wantErr: "stop_words[1] \"的\" duplicates stop_words[0]"},
		{name: "duplicate synonym key", in: Lexicon{Synonyms: []Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "A", Alternatives: []string{"c"}}}}, wantErr: "synonyms[1].term \"A\" duplicates synonyms[0].term"},
		{name: "duplicate alternative", in: Lexicon{Synonyms: []Synonym{{Term: "a", Alternatives: []string{"b", "B"}}}}, wantErr: "synonyms[0].alternatives[1] \"B\" duplicates synonyms[0].alternatives[0]"},
		{name: "own synonym", in: Lexicon{Synonyms: []Synonym{{Term: "a", Alternatives: []string{"b", "A"}}}}, wantErr: `synonyms[0].alternatives[1] "a" is the synonym's own term`},
		{name: "stop word and term", in: Lexicon{Terms: []string{"公司"}, StopWords: []string{"公司"}}, wantErr: `stop_words[0] "公司" is also terms[0]`},
		{name: "stop word with synonyms", in: Lexicon{StopWords: []string{"公司"}, Synonyms: []Synonym{{Term: "公司", Alternatives: []string{"企业"}}}}, wantErr: `synonyms[0].term "公司" is also stop_words[0]`},
		{name: "stop word as alternative", in: Lexicon{StopWords: []string{"公司"}, Synonyms: []Synonym{{Term: "企业", Alternatives: []string{"公司"}}}}, wantErr: `synonyms[0].alternatives[0] "公司" is also stop_words[0]`},
		{name: "too many alternatives", in: Lexicon{Synonyms: []Synonym{{Term: "a", Alternatives: strings.Fields("b c d e f g h i j k l m n o p q r")}}}, wantErr: "17 alternatives, over the limit of 16"},
		{name: "too many entries", in: Lexicon{Terms: many}, wantErr: "50001 entries, over the limit of 50000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := an.NormalizeLexicon(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeLexicon() error = %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("NormalizeLexicon() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testVocab(t *testing.T, l Lexicon) *Vocab {
	t.Helper()
	n, err := testAnalyzer(t).NormalizeLexicon(l)
	if err != nil {
		t.Fatal(err)
	}
	return newVocab(n)
}

func terms(toks []Token) []string {
	var out []string
	for _, tk := range toks {
		out = append(out, tk.Term)
	}
	return out
}

func TestTokensWithLexicon(t *testing.T) {
	an := testAnalyzer(t)
	v := testVocab(t, Lexicon{Terms: []string{"三明治反馈法", "天枢X9", "C++", "黄金三问", "xq-7700"}})
	tests := []struct {
		text        string
		query, fine []string
	}{
		// A term gse splits stays whole; at index time its pieces follow.
		{"用三明治反馈法", []string{"用", "三明治反馈法"}, []string{"用", "三明治反馈法", "三明治", "三", "明治", "明", "治", "反馈", "反", "馈", "法"}},
		{"黄金三问", []string{"黄金三问"}, []string{"黄金三问", "黄金", "黄", "金", "三", "问"}},
		// Han + code: a product name that gse and the code rule cut in two.
		{"新款天枢X9上市", []string{"新款", "天枢x9", "上市"}, []string{"新款", "新", "款", "天枢x9", "天枢", "天", "枢", "x9", "上市", "上", "市"}},
		// Normalised like text: full width, traditional, upper case.
		{"三明治反饋法", []string{"三明治反馈法"}, nil},
		{"天樞Ｘ９", []string{"天枢x9"}, nil},
		// Punctuation that segmentation drops is kept inside a term.
		{"学C++编程", []string{"学", "c++", "编程"}, nil},
		// A code term matches only a whole code run.
		{"天枢X90", []string{"天枢", "x90"}, nil},
		{"xq-77001", []string{"xq-77001"}, nil},
		{"axq-7700", []string{"axq-7700"}, nil},
		{"xq-7700-b", []string{"xq-7700-b"}, nil},
		{"型号xq-7700。", []string{"型号", "xq-7700"}, []string{"型号", "型", "号", "xq-7700", "xq", "7700"}},
		// No term: the same as without a lexicon.
		{"客户嫌价格太贵", terms(an.QueryTokens("客户嫌价格太贵")), terms(an.Tokens("客户嫌价格太贵"))},
	}
	for _, tt := range tests {
		if got := terms(an.QueryTokensIn(v, tt.text)); !slices.Equal(got, tt.query) {
			t.Errorf("QueryTokensIn(%q) = %q, want %q", tt.text, got, tt.query)
		}
		if tt.fine == nil {
			continue
		}
		if got := terms(an.TokensIn(v, tt.text)); !slices.Equal(got, tt.fine) {
			t.Errorf("TokensIn(%q) = %q, want %q", tt.text, got, tt.fine)
		}
	}
	// Offsets point into the original text, even when normalisation changed
	// byte lengths.
	for _, s := range []string{"新款天樞Ｘ９上市", "用三明治反饋法，再用三明治反馈法", "学C++编程"} {
		n := an.Normalize(s)
		for _, fine := range []bool{false, true} {
			for _, tk := range an.tokensFine(n, fine, v) {
				if tk.Start < 0 || tk.End > len(s) || tk.Start >= tk.End {
					t.Fatalf("tokens(%q): %+v out of range", s, tk)
				}
				if got := an.Normalize(s[tk.Start:tk.End]).Text; got != tk.Term {
					t.Errorf("tokens(%q): term %q at [%d:%d] covers %q", s, tk.Term, tk.Start, tk.End, got)
				}
			}
		}
	}
	// Nil and empty lexicons change nothing.
	for _, s := range []string{"用三明治反馈法", "PPR-9087 的价格", "中华人民共和国"} {
		for _, v := range []*Vocab{nil, newVocab(Lexicon{})} {
			if got, want := terms(an.TokensIn(v, s)), terms(an.Tokens(s)); !slices.Equal(got, want) {
				t.Errorf("TokensIn(empty, %q) = %q, want %q", s, got, want)
			}
			if got, want := terms(an.QueryTokensIn(v, s)), terms(an.QueryTokens(s)); !slices.Equal(got, want) {
				t.Errorf("QueryTokensIn(empty, %q) = %q, want %q", s, got, want)
			}
		}
	}
}

func TestMatcherLongestFirst(t *testing.T) {
	m := newMatcher([]string{"反馈", "反馈法", "三明治反馈法", "法"})
	var got []string
	text := "三明治反馈法和反馈法及反馈"
	m.scan(text, func(s, e int) bool { got = append(got, text[s:e]); return true })
	if want := []string{"三明治反馈法", "反馈法", "反馈"}; !slices.Equal(got, want) {
		t.Errorf("scan(%q) = %q, want %q", text, got, want)
	}
}

// lexDocs has a chunk with the whole jargon term, chunks with only its
// pieces, and one with the product code.
var lexDocs = []Document{
	doc("feedback", "反馈技巧", "三明治反馈法：先肯定，再指出问题，最后鼓励。", "及时反馈比年终反馈更有效。"),
	doc("lunch", "午餐安排", "三明治和反馈表放在前台，三明治每人一份。"),
	doc("tianshu", "产品目录", "天枢X9 是新一代节能控制器。", "天枢系列还有X7。"),
}

func lexStore(t *testing.T, docs []Document) (*Store, context.Context) {
	t.Helper()
	ctx := t.Context()
	s := openTestStore(t, t.TempDir())
	if err := s.CreateCollection(ctx, DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if len(docs) > 0 {
		if _, err := s.Upsert(ctx, "c", slices.Clone(docs)); err != nil {
			t.Fatal(err)
		}
	}
	return s, ctx
}

func replaceAndWait(t *testing.T, s *Store, l Lexicon) LexiconInfo {
	t.Helper()
	info, err := s.ReplaceLexicon(t.Context(), "c", l)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReindex(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Fatalf("Verify after lexicon change: %v", err)
	}
	return info
}

func searchIDs(t *testing.T, s *Store, q ...QueryTerm) []string {
	t.Helper()
	hits, _, err := s.Search(t.Context(), "c", q, Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ChunkID)
	}
	return ids
}

func TestReplaceLexicon(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	whole := QueryTerm{Term: "三明治反馈法", Weight: 1}
	code := QueryTerm{Term: "天枢x9", Weight: 1}
	if ids := searchIDs(t, s, whole, code); len(ids) != 0 {
		t.Fatalf("before the lexicon, whole terms match %v, want nothing", ids)
	}
	statsBefore, _ := s.Collection("c")

	info := replaceAndWait(t, s, Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}, Synonyms: []Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}}})
	// Exactly the chunks whose text holds a new term: feedback's first and
	// product's first.
	if info.PendingReindex != 2 || info.Version == 0 {
		t.Errorf("ReplaceLexicon = %+v, want 2 chunks to re-index and a version", info)
	}
	if got, want := searchIDs(t, s, whole), []string{lexDocs[0].Chunks[0].ID}; !slices.Equal(got, want) {
		t.Errorf("after the lexicon, %q matches %v, want %v", whole.Term, got, want)
	}
	if got, want := searchIDs(t, s, code), []string{lexDocs[2].Chunks[0].ID}; !slices.Equal(got, want) {
		t.Errorf("after the lexicon, %q matches %v, want %v", code.Term, got, want)
	}
	// The pieces are still indexed.
	if got := searchIDs(t, s, QueryTerm{Term: "三明治", Weight: 1}); len(got) != 2 {
		t.Errorf("piece 三明治 matches %v, want 2 chunks", got)
	}
	// One more body term per occurrence: the statistics followed.
	statsAfter, _ := s.Collection("c")
	if d := statsAfter.Stats.SumLen[2] - statsBefore.Stats.SumLen[2]; d != 2 {
		t.Errorf("body length sum grew by %d, want 2", d)
	}
	got, err := s.Lexicon("c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Terms[1] != "天枢x9" || got.Version != info.Version || got.PendingReindex != 0 {
		t.Errorf("Lexicon() = %+v, want the normalised lexicon at version %d, nothing pending", got, info.Version)
	}

	// The same lexicon again writes nothing.
	again, err := s.ReplaceLexicon(ctx, "c", Lexicon{Terms: []string{"三明治反馈法", "天枢x9"}, Synonyms: []Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}}})
	if err != nil || again.Version != info.Version || again.PendingReindex != 0 {
		t.Errorf("ReplaceLexicon(same) = %+v, %v; want version %d, nothing to re-index", again, err, info.Version)
	}
	// Synonyms and stop words do not change indexing.
	if info := replaceAndWait(t, s, Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}, StopWords: []string{"的"}}); info.PendingReindex != 0 {
		t.Errorf("changing only stop words and synonyms re-indexes %d chunks, want 0", info.PendingReindex)
	}
	// A new document is indexed with the lexicon in force.
	if _, err := s.Upsert(ctx, "c", []Document{doc("new", "新课", "复习三明治反馈法。")}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, whole); len(got) != 2 {
		t.Errorf("after a new upsert, %q matches %v, want 2 chunks", whole.Term, got)
	}
	// Removing a term re-indexes the chunks that hold it.
	if info := replaceAndWait(t, s, Lexicon{Terms: []string{"天枢X9"}}); info.PendingReindex != 2 {
		t.Errorf("removing a term re-indexes %d chunks, want 2", info.PendingReindex)
	}
	if got := searchIDs(t, s, whole); len(got) != 0 {
		t.Errorf("after removing the term, %q matches %v, want nothing", whole.Term, got)
	}
	if info := replaceAndWait(t, s, Lexicon{}); info.PendingReindex != 1 || len(info.Terms) != 0 {
		t.Errorf("clearing the lexicon = %+v, want 1 chunk re-indexed and no terms", info)
	}
	final, _ := s.Collection("c")
	fresh, _ := lexStore(t, append(slices.Clone(lexDocs), doc("new", "新课", "复习三明治反馈法。")))
	want, _ := fresh.Collection("c")
	if final.Stats != want.Stats {
		t.Errorf("statistics after adding and removing terms %+v, want those of a fresh store %+v", final.Stats, want.Stats)
	}
}

// TestReindexMatchesFreshIngest: a lexicon set after ingest and re-indexed in
// the background scores exactly like the same lexicon set before ingest.
func TestReindexMatchesFreshIngest(t *testing.T) {
	lex := Lexicon{Terms: []string{"三明治反馈法", "天枢X9", "第十二条", "价格异议"}}
	docs := append(slices.Clone(fixture), lexDocs...)
	late, _ := lexStore(t, docs)
	info := replaceAndWait(t, late, lex)
	if info.PendingReindex == 0 {
		t.Fatal("nothing to re-index")
	}
	early, _ := lexStore(t, nil)
	replaceAndWait(t, early, lex)
	if _, err := early.Upsert(t.Context(), "c", slices.Clone(docs)); err != nil {
		t.Fatal(err)
	}
	// The keyword graph follows too: the term is a keyword of its chunks.
	lateGraph := dumpGraph(t, late, "c")
	if !strings.Contains(lateGraph, "kw 三明治反馈法 ") {
		t.Errorf("after re-indexing, 三明治反馈法 is no keyword of the graph:\n%s", lateGraph)
	}
	if diff := cmp.Diff(dumpGraph(t, early, "c"), lateGraph); diff != "" {
		t.Errorf("graph after re-index differs from a fresh store's (-fresh +re-indexed):\n%s", diff)
	}
	queries := [][]QueryTerm{
		{{Term: "三明治反馈法", Weight: 1}, {Term: "反馈", Weight: 0.4}},
		{{Term: "天枢x9", Weight: 1}, {Term: "节能", Weight: 1}},
		{{Term: "价格", Weight: 1}, {Term: "客户", Weight: 1}, {Term: "价格", Weight: 1, Gram: true}},
		{{Term: "第十二条", Weight: 1}, {Term: "有限", Weight: 1}},
	}
	for _, q := range queries {
		a, _, err := late.Search(t.Context(), "c", q, Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := early.Search(t.Context(), "c", q, Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Fatalf("Search(%v): %d hits after re-index, %d in a fresh store", q, len(a), len(b))
		}
		for i := range a {
			if a[i].ChunkID != b[i].ChunkID || math.Abs(a[i].Score-b[i].Score) > 1e-9 {
				t.Errorf("Search(%v) hit %d: %s %.9f after re-index, %s %.9f in a fresh store", q, i, a[i].ChunkID, a[i].Score, b[i].ChunkID, b[i].Score)
			}
		}
	}
}

func TestLexiconSingleChunk(t *testing.T) {
	s, _ := lexStore(t, []Document{doc("one", "唯一", "黄金三问：问目标、问现状、问下一步。")})
	if info := replaceAndWait(t, s, Lexicon{Terms: []string{"黄金三问"}}); info.PendingReindex != 1 {
		t.Errorf("ReplaceLexicon on a one-chunk collection re-indexes %d chunks, want 1", info.PendingReindex)
	}
	if got := searchIDs(t, s, QueryTerm{Term: "黄金三问", Weight: 1}); len(got) != 1 {
		t.Errorf("one-chunk collection: 黄金三问 matches %v, want the chunk", got)
	}
	// An empty collection takes a lexicon too.
	e, _ := lexStore(t, nil)
	if info := replaceAndWait(t, e, Lexicon{Terms: []string{"黄金三问"}}); info.PendingReindex != 0 {
		t.Errorf("ReplaceLexicon on an empty collection re-indexes %d chunks, want 0", info.PendingReindex)
	}
}

func TestReplaceLexiconBadInput(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	if _, err := s.ReplaceLexicon(ctx, "missing", Lexicon{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReplaceLexicon(missing collection) = %v, want ErrNotFound", err)
	}
	if _, err := s.ReplaceLexicon(ctx, "c", Lexicon{Terms: []string{"a", ""}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReplaceLexicon(empty term) = %v, want ErrInvalid", err)
	}
	// A rejected lexicon changes nothing.
	if info, _ := s.Lexicon("c"); info.Version != 0 {
		t.Errorf("after rejected lexicons, version %d, want 0", info.Version)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}

// TestReindexResumesAfterCrash stops the re-indexer, changes the lexicon,
// closes the store with the work pending, and reopens it: the work resumes
// from the stored list and ends in the same state.
func TestReindexResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(ctx, "c", slices.Clone(lexDocs)); err != nil {
		t.Fatal(err)
	}
	s.stopReindex()
	<-s.reindexDone
	info, err := s.ReplaceLexicon(ctx, "c", Lexicon{Terms: []string{"三明治反馈法"}})
	if err != nil || info.PendingReindex != 1 {
		t.Fatalf("ReplaceLexicon = %+v, %v; want 1 chunk pending", info, err)
	}
	// Queries use the new lexicon at once, before the re-index.
	if v, _ := s.Vocab("c"); !v.IsTerm("三明治反馈法") {
		t.Error("the new lexicon is not in force before re-indexing")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitReindex(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s2, QueryTerm{Term: "三明治反馈法", Weight: 1}); len(got) != 1 {
		t.Errorf("after resuming, 三明治反馈法 matches %v, want 1 chunk", got)
	}
	// A lexicon record and its re-index record in the log but applied
	// nowhere (a crash right after the append): Badger and bleve both catch
	// up from the log at the next open.
	lex, err := s2.an.NormalizeLexicon(Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Op: OpLexicon, Collection: "c", Lexicon: &lex},
		{Op: OpReindex, Collection: "c", ChunkIDs: []string{lexDocs[2].Chunks[0].ID}},
	}
	if _, err := s2.log.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, dir, testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if info, _ := s3.Lexicon("c"); info.PendingReindex != 0 || info.Version != recs[0].Seq {
		t.Errorf("after catch-up, lexicon %+v; want version %d, nothing pending", info, recs[0].Seq)
	}
	if err := s3.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s3, QueryTerm{Term: "天枢x9", Weight: 1}); len(got) != 1 {
		t.Errorf("after catch-up, 天枢x9 matches %v, want 1 chunk", got)
	}
	bp, tp, err := s3.Positions()
	if err != nil || tp["c"] != bp {
		t.Errorf("positions: badger %d, bleve %v, %v; want equal", bp, tp, err)
	}
}

// TestLexiconWhileWriting changes the lexicon while documents are written and
// searched, many times: searches never fail, every write lands, and at the end
// each chunk is analysed with the lexicon in force (Verify checks it).
func TestLexiconWhileWriting(t *testing.T) {
	var docs []Document
	for i := range 60 {
		docs = append(docs, doc(fmt.Sprintf("d%02d", i), "课程", fmt.Sprintf("第%d课：三明治反馈法和黄金三问，天枢X9。", i), "反馈要及时。"))
	}
	s, ctx := lexStore(t, docs[:30])
	lexicons := []Lexicon{
		{Terms: []string{"三明治反馈法"}},
		{Terms: []string{"三明治反馈法", "黄金三问", "天枢X9"}},
		{Terms: []string{"天枢X9"}},
		{},
	}
	done := make(chan struct{})
	errs := make(chan error, 2)
	go func() { // searcher
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				errs <- nil
				return
			default:
			}
			if _, _, err := s.Search(ctx, "c", []QueryTerm{{Term: "三明治反馈法", Weight: 1}, {Term: "反馈", Weight: 0.4}}, Filter{}, 10); err != nil {
				errs <- err
				return
			}
			if i == 200 {
				errs <- nil
				return
			}
		}
	}()
	go func() { // writer
		for i := 30; i < 60; i++ {
			if _, err := s.Upsert(ctx, "c", []Document{docs[i]}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for round := range 3 {
		for _, l := range lexicons {
			if _, err := s.ReplaceLexicon(ctx, "c", l); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	final := Lexicon{Terms: []string{"三明治反馈法", "天枢X9"}}
	replaceAndWait(t, s, final) // Verify: lengths match the final lexicon
	hits, _, err := s.Search(ctx, "c", []QueryTerm{{Term: "天枢x9", Weight: 1}}, Filter{}, 100)
	if err != nil || len(hits) != 60 {
		t.Errorf("天枢x9 matches %d chunks (%v), want all 60 lessons", len(hits), err)
	}
	info, _ := s.Collection("c")
	if info.Stats.Docs != 60 {
		t.Errorf("%d documents, want 60", info.Stats.Docs)
	}
}

// FuzzTokensWithLexicon: for any text and any lexicon, segmentation does not
// panic, tokens cover their normalised text in the original, and every
// lexicon term found in a query comes out whole.
func FuzzTokensWithLexicon(f *testing.F) {
	f.Add("用三明治反馈法和天枢X9", "三明治反馈法", "天枢x9")
	f.Add("xq-7700-b xq-7700", "xq-7700", "b")
	f.Add("C++和c#", "c++", "c#")
	f.Add("天樞Ｘ９", "天枢x9", "樞")
	f.Add("\xff\xfe反馈", "反馈", "\xff")
	an := testAnalyzer(f)
	f.Fuzz(func(t *testing.T, text, t1, t2 string) {
		lex, err := an.NormalizeLexicon(Lexicon{Terms: []string{t1, t2}})
		if err != nil {
			return // rejected entries are tested elsewhere
		}
		v := newVocab(lex)
		for _, fine := range []bool{false, true} {
			for _, tk := range an.tokensFine(an.Normalize(text), fine, v) {
				if tk.Start < 0 || tk.End > len(text) || tk.Start >= tk.End {
					t.Fatalf("tokens(%q): %+v out of range", text, tk)
				}
				if tk.Term == "" || strings.ContainsFunc(tk.Term, unicode.IsSpace) {
					t.Fatalf("tokens(%q): term %q empty or with a space", text, tk.Term)
				}
			}
		}
		// A text that is exactly a term is one query token.
		for _, term := range lex.Terms {
			if toks := an.QueryTokensIn(v, term); len(toks) != 1 || toks[0].Term != term {
				t.Errorf("QueryTokensIn(%q) = %v, want the term whole", term, toks)
			}
		}
	})
}

// BenchmarkTokensLexicon compares segmentation without a lexicon, with a
// small one and with 10 000 terms, on a question (query mode) and a chunk
// (index mode). Compare the sub-benchmarks' ratios within one run.
func BenchmarkTokensLexicon(b *testing.B) {
	an := testAnalyzer(b)
	big := []string{"三明治反馈法", "天枢X9", "黄金三问"}
	seen := map[string]bool{}
	firsts := []rune("客价经安反三天黄")
	for i := 0; len(big) < 10_000; i++ {
		// Made-up terms, many starting with characters of the text.
		t := string([]rune{firsts[i%len(firsts)], rune(0x4e00 + i%2000), rune(0x4e00 + (i/7)%3000)})
		if i%3 == 0 {
			t = fmt.Sprintf("code-%d", i)
		}
		if !seen[t] {
			seen[t] = true
			big = append(big, t)
		}
	}
	lexicons := map[string]*Vocab{"none": nil}
	for name, terms := range map[string][]string{"3terms": big[:3], "10000terms": big[:10_000]} {
		n, err := an.NormalizeLexicon(Lexicon{Terms: terms})
		if err != nil {
			b.Fatal(err)
		}
		lexicons[name] = newVocab(n)
	}
	question := "新任经理如何用三明治反馈法和下属谈绩效，天枢X9怎么记录面谈要点？"
	chunk := strings.Repeat("客户说价格太贵时，先确认客户的预算，再说明产品的价值。新任经理可以使用三明治反馈法。", 6)
	for _, name := range []string{"none", "3terms", "10000terms"} {
		v := lexicons[name]
		b.Run("query/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				an.QueryTokensIn(v, question)
			}
		})
		b.Run("chunk/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				an.TokensIn(v, chunk)
			}
		})
	}
}

// TestLexiconDeleteCollection: deleting a collection with re-indexing pending
// drops its lexicon and its queue; a new collection of the same name starts
// without either.
func TestLexiconDeleteCollection(t *testing.T) {
	s, ctx := lexStore(t, lexDocs)
	s.stopReindex() // keep the queue full
	<-s.reindexDone
	if info, err := s.ReplaceLexicon(ctx, "c", Lexicon{Terms: []string{"三明治反馈法"}}); err != nil || info.PendingReindex != 1 {
		t.Fatalf("ReplaceLexicon = %+v, %v; want 1 chunk pending", info, err)
	}
	if err := s.DeleteCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lexicon("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lexicon(deleted collection) = %v, want ErrNotFound", err)
	}
	if err := s.CreateCollection(ctx, DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Lexicon("c")
	if err != nil || info.Version != 0 || len(info.Terms) != 0 || info.PendingReindex != 0 {
		t.Errorf("Lexicon(new collection of the same name) = %+v, %v; want empty", info, err)
	}
	if _, err := s.Upsert(ctx, "c", slices.Clone(lexDocs)); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, QueryTerm{Term: "三明治反馈法", Weight: 1}); len(got) != 0 {
		t.Errorf("the deleted collection's lexicon still applies: 三明治反馈法 matches %v", got)
	}
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}
