package analysis

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	an := testAnalyzer(t)
	tests := []struct{ in, want string }{
		{"ＰＰＲ－９０８７", "ppr-9087"},
		{"開發軟體與頭髮乾燥", "开发软体与头发干燥"},
		{"Hello 世界", "hello 世界"},
		{"简体不变。", "简体不变。"},
		{"bad\xffbyte", "bad\ufffdbyte"},
	}
	for _, tt := range tests {
		if got := an.Normalize(tt.in).Text; got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTokenOffsets checks that every token's offsets cut, from the original
// text, a string that normalises to the token's term.
func TestTokenOffsets(t *testing.T) {
	an := testAnalyzer(t)
	for _, s := range []string{
		"客户说价格太贵时，先确认预算。",
		"型號ＰＰＲ－９０８７的價格比上一代高",
		"第十二条 有限空间作业：先通风、再检测、后作业。",
		"SBI模型 (Situation-Behavior-Impact) 用于反馈",
	} {
		for _, fine := range []bool{true, false} {
			toks := an.tokens(s, fine)
			if len(toks) == 0 {
				t.Errorf("tokens(%q) is empty", s)
			}
			for _, tk := range toks {
				if tk.Start < 0 || tk.End > len(s) || tk.Start >= tk.End {
					t.Fatalf("tokens(%q): %+v out of range", s, tk)
				}
				if got := an.Normalize(s[tk.Start:tk.End]).Text; got != tk.Term {
					t.Errorf("tokens(%q): term %q at [%d:%d] cuts %q (normalised %q)", s, tk.Term, tk.Start, tk.End, s[tk.Start:tk.End], got)
				}
			}
		}
	}
}

func TestTokens(t *testing.T) {
	an := testAnalyzer(t)
	terms := func(toks []Token) []string {
		var out []string
		for _, tk := range toks {
			out = append(out, tk.Term)
		}
		return out
	}
	tests := []struct {
		name  string
		in    string
		query []string
		// index terms must include these
		index []string
	}{
		{"product code kept whole", "PPR-9087 型号", []string{"ppr-9087", "型号"}, []string{"ppr-9087", "ppr", "9087"}},
		{"form code", "填写HR-COMP-07表", nil, []string{"hr-comp-07", "hr", "comp", "07"}},
		{"punctuation dropped", "你好，世界！", []string{"你好", "世界"}, []string{"你好", "世界"}},
		{"query syntax is text", "a AND -b title:x", []string{"a", "and", "b", "title", "x"}, nil},
		{"fine-grained sub-words", "中华人民共和国", []string{"中华人民共和国"}, []string{"中华人民共和国", "中华", "人民", "共和国"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.query != nil {
				if diff := cmp.Diff(tt.query, terms(an.QueryTokens(tt.in))); diff != "" {
					t.Errorf("QueryTokens(%q) (-want +got):\n%s", tt.in, diff)
				}
			}
			got := map[string]bool{}
			for _, tk := range an.Tokens(tt.in) {
				got[tk.Term] = true
			}
			for _, w := range tt.index {
				if !got[w] {
					t.Errorf("Tokens(%q) = %v, missing %q", tt.in, terms(an.Tokens(tt.in)), w)
				}
			}
		})
	}
}

func TestGrams(t *testing.T) {
	an := testAnalyzer(t)
	got := an.Grams("价格太贵，A客户。")
	want := []string{"价格", "格太", "太贵", "客户"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Grams (-want +got):\n%s", diff)
	}
}

// FuzzAnalyze: analysis never panics, offsets stay inside the text and on
// rune boundaries, and normalisation is idempotent.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"", "客户说价格太贵", "ＰＰＲ－９０８７", "開發軟體", "a-b.c_d/e", "\xff\xfe", "㈠㍿ﬁ", strings.Repeat("长", 300)} {
		f.Add(s)
	}
	an := testAnalyzer(f)
	f.Fuzz(func(t *testing.T, s string) {
		n := an.Normalize(s)
		if again := an.Normalize(n.Text).Text; again != n.Text && utf8.ValidString(s) {
			t.Errorf("Normalize not idempotent: %q -> %q -> %q", s, n.Text, again)
		}
		for _, fine := range []bool{true, false} {
			for _, tk := range an.tokens(s, fine) {
				if tk.Start < 0 || tk.End > len(s) || tk.Start > tk.End {
					t.Fatalf("tokens(%q): %+v out of range", s, tk)
				}
				if utf8.ValidString(s) && (!utf8.RuneStart(s[tk.Start]) || (tk.End < len(s) && !utf8.RuneStart(s[tk.End]))) {
					t.Fatalf("tokens(%q): %+v not on rune boundaries", s, tk)
				}
			}
		}
		_ = an.Grams(s)
	})
}

// TestNormalizeFastPath checks that the already-normal fast path gives what
// the rune-by-rune path gives, text and byte map, and that it is taken for
// ordinary simplified text.
func TestNormalizeFastPath(t *testing.T) {
	a := testAnalyzer(t)
	cases := []string{
		"", "客户说价格太贵时，先确认预算。", "PPR-9087 节能", "ppr-9087 节能", "價格", "ＰＰＲ－９０８７",
		"㍿", "ﬁ", "e\u0301", "Ⅻ章", "①②", "「引号」《书名》…—", "\xff\xfe", "ǅ", "İstanbul", "😀表情", "ａｂｃ",
		"第十二条 有限空间作业必须先通风、再检测、后作业。", "温度 25℃ ～ 30℃", "µs ΩΣ", "한국어",
	}
	for r := rune(0x80); r < 0x3400; r += 7 {
		cases = append(cases, "价"+string(r)+"格")
	}
	for _, s := range cases {
		fast, slow := a.Normalize(s), a.normalizeSlow(s)
		if fast.Text != slow.Text {
			t.Errorf("Normalize(%q) = %q, rune by rune %q", s, fast.Text, slow.Text)
			continue
		}
		for i := 0; i <= len(fast.Text)+1; i++ {
			if fast.Orig(i) != slow.Orig(i) {
				t.Errorf("Normalize(%q).Orig(%d) = %d, rune by rune %d", s, i, fast.Orig(i), slow.Orig(i))
				break
			}
		}
	}
	if !a.isNormal("客户说价格太贵时先确认预算。ppr-9087 「引号」") {
		t.Error("ordinary simplified text does not take the fast path")
	}
}

// TestNormalizedShiftsMatchByteMap checks Orig, kept as shifts, against the
// byte-by-byte map normalisation builds, at every offset (and before and
// past the ends): on every text of testdata and cmrc2018, and on random
// texts of full-width characters, traditional characters, characters that
// normalise to several, capitals, emoji and invalid bytes.
func TestNormalizedShiftsMatchByteMap(t *testing.T) {
	an := testAnalyzer(t)
	texts := segTexts(t)
	alphabet := []string{"价", "格", "，", "。", "Ａ", "ｂ", "１", "A", "z", "9", " ", "價", "錢", "說", "㍿", "①", "ｶ", "😀", "\xff", "\xe4\xbd", "-", "\n"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		texts = append(texts, b.String())
	}
	changed := 0
	for _, s := range texts {
		text, orig := an.normalizeMap(s)
		n := an.Normalize(s)
		if n.Text != text {
			t.Fatalf("Normalize(%q).Text = %q, the map's text %q", s, n.Text, text)
		}
		if n.shifts != nil {
			changed++
		}
		for i := -2; i <= len(text)+2; i++ {
			want := 0
			if i >= 0 {
				want = orig[min(i, len(orig)-1)]
			}
			if got := n.Orig(i); got != want {
				t.Fatalf("Normalize(%q).Orig(%d) = %d, want %d (text %q)", s, i, got, want, text)
			}
		}
	}
	if changed < len(texts)/2 {
		t.Fatalf("only %d of %d texts changed in normalisation: the shifts were hardly tested", changed, len(texts))
	}
	t.Logf("%d texts, %d changed by normalisation", len(texts), changed)
}
