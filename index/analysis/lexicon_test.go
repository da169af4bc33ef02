package analysis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zhisou/zhisou/index"
)

func TestNormalizeLexicon(t *testing.T) {
	an := testAnalyzer(t)
	long := strings.Repeat("长", 10_000)
	many := make([]string, index.MaxLexiconEntries+1)
	for i := range many {
		many[i] = "词"
	}
	tests := []struct {
		name    string
		in      index.Lexicon
		want    index.Lexicon
		wantErr string // substring of the error; "" for success
	}{
		{name: "empty lexicon", in: index.Lexicon{}, want: index.Lexicon{Terms: []string{}, StopWords: []string{}}},
		{
			name: "normalised like text",
			in: index.Lexicon{
				Terms:     []string{" ＸＱ－７７００ ", "三明治反饋法", "C++"},
				Synonyms:  []index.Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}},
				StopWords: []string{"請問"},
			},
			want: index.Lexicon{
				Terms:     []string{"xq-7700", "三明治反馈法", "c++"},
				Synonyms:  []index.Synonym{{Term: "汉堡包反馈法", Alternatives: []string{"三明治反馈法"}}},
				StopWords: []string{"请问"},
			},
		},
		{
			// Expansion is one hop, so a cycle cannot loop: accepted.
			name: "synonym cycle",
			in:   index.Lexicon{Synonyms: []index.Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "b", Alternatives: []string{"a"}}}},
			want: index.Lexicon{Terms: []string{}, StopWords: []string{}, Synonyms: []index.Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "b", Alternatives: []string{"a"}}}},
		},
		{name: "empty term", in: index.Lexicon{Terms: []string{"价格", ""}}, wantErr: "terms[1] is empty"},
		{name: "blank term", in: index.Lexicon{Terms: []string{" \t"}}, wantErr: "terms[0] is empty"},
		{name: "empty stop word", in: index.Lexicon{StopWords: []string{""}}, wantErr: "stop_words[0] is empty"},
		{name: "empty synonym key", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "", Alternatives: []string{"x"}}}}, wantErr: "synonyms[0].term is empty"},
		{name: "empty alternative", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "x", Alternatives: []string{"y", ""}}}}, wantErr: "synonyms[0].alternatives[1] is empty"},
		{name: "no alternatives", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "x"}}}, wantErr: `synonyms[0] ("x") has no alternatives`},
		{name: "10000-character term", in: index.Lexicon{Terms: []string{"价格", long}}, wantErr: "terms[1] \"长长长长长长长长长长长长长长长长长长长长长长长长\"… (10000 characters) is over the limit of 64 characters"},
		{name: "10000-character alternative", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "x", Alternatives: []string{long}}}}, wantErr: "synonyms[0].alternatives[0]"},
		{name: "65 characters", in: index.Lexicon{StopWords: []string{strings.Repeat("a", 65)}}, wantErr: "stop_words[0]"},
		{name: "64 characters", in: index.Lexicon{Terms: []string{strings.Repeat("a", 64)}}, want: index.Lexicon{Terms: []string{strings.Repeat("a", 64)}, StopWords: []string{}}},
		{name: "space inside", in: index.Lexicon{Terms: []string{"sales force"}}, wantErr: `terms[0] "sales force" contains a space`},
		{name: "punctuation only", in: index.Lexicon{Terms: []string{"——"}}, wantErr: `terms[0] "——" has no letter or digit`},
		{name: "invalid UTF-8", in: index.Lexicon{Terms: []string{"a\xffb"}}, wantErr: "terms[0] is not valid UTF-8"},
		{name: "duplicate term", in: index.Lexicon{Terms: []string{"xq-7700", "价格", "ＸＱ-7700"}}, wantErr: `terms[2] "ＸＱ-7700" duplicates terms[0] (both are "xq-7700" once normalised)`},
		{name: "duplicate term, traditional", in: index.Lexicon{Terms: []string{"反馈", "反饋"}}, wantErr: "terms[1]"},
		{name: "duplicate stop word", in: index.Lexicon{StopWords: []string{"的", "的"}}, wantErr: "stop_words[1] \"的\" duplicates stop_words[0]"},
		{name: "duplicate synonym key", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "a", Alternatives: []string{"b"}}, {Term: "A", Alternatives: []string{"c"}}}}, wantErr: "synonyms[1].term \"A\" duplicates synonyms[0].term"},
		{name: "duplicate alternative", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "a", Alternatives: []string{"b", "B"}}}}, wantErr: "synonyms[0].alternatives[1] \"B\" duplicates synonyms[0].alternatives[0]"},
		{name: "own synonym", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "a", Alternatives: []string{"b", "A"}}}}, wantErr: `synonyms[0].alternatives[1] "a" is the synonym's own term`},
		{name: "stop word and term", in: index.Lexicon{Terms: []string{"公司"}, StopWords: []string{"公司"}}, wantErr: `stop_words[0] "公司" is also terms[0]`},
		{name: "stop word with synonyms", in: index.Lexicon{StopWords: []string{"公司"}, Synonyms: []index.Synonym{{Term: "公司", Alternatives: []string{"企业"}}}}, wantErr: `synonyms[0].term "公司" is also stop_words[0]`},
		{name: "stop word as alternative", in: index.Lexicon{StopWords: []string{"公司"}, Synonyms: []index.Synonym{{Term: "企业", Alternatives: []string{"公司"}}}}, wantErr: `synonyms[0].alternatives[0] "公司" is also stop_words[0]`},
		{name: "too many alternatives", in: index.Lexicon{Synonyms: []index.Synonym{{Term: "a", Alternatives: strings.Fields("b c d e f g h i j k l m n o p q r")}}}, wantErr: "17 alternatives, over the limit of 16"},
		{name: "too many entries", in: index.Lexicon{Terms: many}, wantErr: "50001 entries, over the limit of 50000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := an.NormalizeLexicon(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
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

func testVocab(t *testing.T, l index.Lexicon) *Vocab {
	t.Helper()
	n, err := testAnalyzer(t).NormalizeLexicon(l)
	if err != nil {
		t.Fatal(err)
	}
	return NewVocab(n)
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
	v := testVocab(t, index.Lexicon{Terms: []string{"三明治反馈法", "天枢X9", "C++", "黄金三问", "xq-7700"}})
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
		for _, v := range []*Vocab{nil, NewVocab(index.Lexicon{})} {
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
	m := NewMatcher([]string{"反馈", "反馈法", "三明治反馈法", "法"})
	var got []string
	text := "三明治反馈法和反馈法及反馈"
	m.scan(text, func(s, e int) bool { got = append(got, text[s:e]); return true })
	if want := []string{"三明治反馈法", "反馈法", "反馈"}; !slices.Equal(got, want) {
		t.Errorf("scan(%q) = %q, want %q", text, got, want)
	}
}

func FuzzTokensWithLexicon(f *testing.F) {
	f.Add("用三明治反馈法和天枢X9", "三明治反馈法", "天枢x9")
	f.Add("xq-7700-b xq-7700", "xq-7700", "b")
	f.Add("C++和c#", "c++", "c#")
	f.Add("天樞Ｘ９", "天枢x9", "樞")
	f.Add("\xff\xfe反馈", "反馈", "\xff")
	an := testAnalyzer(f)
	f.Fuzz(func(t *testing.T, text, t1, t2 string) {
		lex, err := an.NormalizeLexicon(index.Lexicon{Terms: []string{t1, t2}})
		if err != nil {
			return // rejected entries are tested elsewhere
		}
		v := NewVocab(lex)
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
		n, err := an.NormalizeLexicon(index.Lexicon{Terms: terms})
		if err != nil {
			b.Fatal(err)
		}
		lexicons[name] = NewVocab(n)
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
