package retrieve_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/retrieve"
)

func TestQueryTerms(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	word := func(term string, w float64) index.QueryTerm { return index.QueryTerm{Term: term, Weight: w} }
	gram := func(term string, w float64) index.QueryTerm {
		return index.QueryTerm{Term: term, Weight: w, Gram: true}
	}
	tests := []struct {
		query string
		want  []index.QueryTerm
	}{
		{"", nil},
		{"   ", nil},
		{"，。！？", nil},
		{"价格", []index.QueryTerm{word("价格", 1), gram("价格", 1)}},
		// Repeated words and bigrams are listed once.
		{"价格 价格", []index.QueryTerm{word("价格", 1), gram("价格", 1)}},
		// Codes stay whole and lower-cased, in any width; no bigrams.
		{"PPR-9087", []index.QueryTerm{word("ppr-9087", 1)}},
		{"ＰＰＲ－９０８７", []index.QueryTerm{word("ppr-9087", 1)}},
		// Question words and particles count little next to content words...
		{"什么是有限空间作业", []index.QueryTerm{
			word("什么", 0.1), word("是", 0.1), word("有限", 1), word("空间", 1), word("作业", 1),
			gram("什么", 0.1), gram("么是", 1), gram("是有", 1), gram("有限", 1), gram("限空", 1), gram("空间", 1), gram("间作", 1), gram("作业", 1),
		}},
		// ...and fully when there is nothing else.
		{"什么", []index.QueryTerm{word("什么", 1), gram("什么", 1)}},
		// Query syntax is text: operators are words, signs are dropped.
		{"+价格 -客户", []index.QueryTerm{word("价格", 1), word("客户", 1), gram("价格", 1), gram("客户", 1)}},
		{"价格 OR 客户", []index.QueryTerm{word("价格", 1), word("or", 0.1), word("客户", 1), gram("价格", 1), gram("客户", 1)}},
		// Traditional characters are searched as simplified.
		{"價格", []index.QueryTerm{word("价格", 1), gram("价格", 1)}},
		// A long dictionary word adds its sub-words at a lower weight.
		{"中华人民共和国", []index.QueryTerm{
			word("中华人民共和国", 1), word("人民", 0.4), word("共和国", 0.4), word("共和", 0.4),
			gram("中华", 1), gram("华人", 1), gram("人民", 1), gram("民共", 1), gram("共和", 1), gram("和国", 1),
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, s.QueryTerms(tt.query)); diff != "" {
			t.Errorf("QueryTerms(%q) mismatch (-want +got):\n%s", tt.query, diff)
		}
	}
}

// TestQueryTermsProperties checks what holds for any query: weights are
// those of a word, sub-word or function word; function words weigh less than
// 1 when the query has content; sub-words come from a longer query word;
// bigrams are two Han characters (or one, alone); no (term, gram) pair twice.
func TestQueryTermsProperties(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	functionWords := []string{"什么", "如何", "怎么", "为什么", "哪些", "是", "的", "吗", "呢", "请问"}
	queries := []string{
		"客户嫌贵怎么办",
		"什么是有限空间作业",
		"如何处理客户的价格异议",
		"为什么要办理动火许可证",
		"请问区域经理审批折扣需要哪些材料呢",
		"新员工第一天入职的时候应该去哪里领取工牌和电脑呢",
		"中华人民共和国安全生产法第十二条",
		"PPR-9087 的价格是多少",
		"哪些",
		"a AND -b title:x",
		"開發軟體的時候怎麼寫測試",
		strings.Repeat("客户价格", 100),
	}
	for _, q := range queries {
		terms := s.QueryTerms(q)
		if len(terms) == 0 {
			t.Errorf("QueryTerms(%q) = nothing", q)
		}
		isFunction := func(term string) bool { return slices.Contains(functionWords, term) }
		seen := map[index.QueryTerm]bool{}
		hasContent := false
		var words []string
		for _, tm := range terms {
			key := index.QueryTerm{Term: tm.Term, Gram: tm.Gram}
			if seen[key] {
				t.Errorf("QueryTerms(%q) has %q (gram %v) twice", q, tm.Term, tm.Gram)
			}
			seen[key] = true
			if tm.Term == "" || tm.Term != strings.ToLower(tm.Term) {
				t.Errorf("QueryTerms(%q) has term %q, want non-empty and normalised", q, tm.Term)
			}
			switch tm.Weight {
			case 1, 0.4, 0.1:
			default:
				t.Errorf("QueryTerms(%q) term %+v has weight %v, want 1, 0.4 or 0.1", q, tm, tm.Weight)
			}
			if tm.Gram {
				if n := utf8.RuneCountInString(tm.Term); n != 2 && n != 1 {
					t.Errorf("QueryTerms(%q) bigram %q has %d characters", q, tm.Term, n)
				}
				continue
			}
			if tm.Weight == 1 {
				words = append(words, tm.Term)
			}
			hasContent = hasContent || (tm.Weight > 0.1 && !isFunction(tm.Term))
		}
		for _, tm := range terms {
			if tm.Gram {
				continue
			}
			if isFunction(tm.Term) && hasContent && tm.Weight >= 1 {
				t.Errorf("QueryTerms(%q) function word %q has weight %v, want < 1", q, tm.Term, tm.Weight)
			}
			if tm.Weight == 0.4 {
				from := false
				for _, w := range words {
					from = from || (utf8.RuneCountInString(w) >= 3 && strings.Contains(w, tm.Term) && w != tm.Term)
				}
				if !from {
					t.Errorf("QueryTerms(%q) sub-word %q is part of no longer query word %q", q, tm.Term, words)
				}
			}
		}
	}
}

// TestLongQueryKeepsTheAsk: a long message (a story, then the question) has
// more terms than a search scores; the cap keeps the later ones at equal
// weight, so the question at the end is searched, not the story before it.
// (On STARD's questions behind about 200 characters of narrative, keeping the
// first terms instead left recall@10 at 0.083; docs/benchmarks.md.)
func TestLongQueryKeepsTheAsk(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	story := "我今年三十五岁，在老家县城生活，平时工作很忙，家里有两个孩子要照顾。这件事困扰我很久了，晚上经常睡不着觉，也不知道该找谁商量。" +
		"我问过身边的朋友，每个人说的都不一样，越听越糊涂。前段时间我还专门请了假跑了好几趟，来回花了不少路费和时间。" +
		"说实话我文化水平不高，很多东西看不太懂。对方一直拖着不给说法，打电话也不接，微信也不回。我在网上查了很多资料，但是说法五花八门。" +
		"事情是去年夏天开始的，到现在已经快一年了。本来大家关系还不错，逢年过节也会走动，没想到会闹成这样。我现在手头也比较紧，老人身体也不好。"
	terms := s.QueryTerms(story + "劳动合同到期不续签有没有经济补偿？")
	if len(terms) != index.MaxQueryTerms {
		t.Fatalf("%d terms, want the cap of %d", len(terms), index.MaxQueryTerms)
	}
	var kept []string
	for _, tm := range terms {
		if !tm.Gram {
			kept = append(kept, tm.Term)
		}
	}
	for _, want := range []string{"劳动合同", "续签", "补偿"} {
		if !slices.Contains(kept, want) {
			t.Errorf("the ask's word %q was capped away; words kept: %v", want, kept)
		}
	}
}

// TestCapDropsTermsNoChunkHolds: over the cap, the terms of a collection's
// query that no chunk holds go first (they can score nothing), so an ask
// followed by a long story keeps its words; without a collection the cap
// cannot know and keeps the later terms, the story's.
func TestCapDropsTermsNoChunkHolds(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	story := "我今年三十五岁，在老家县城生活，平时工作很忙，家里有两个孩子要照顾。这件事困扰我很久了，晚上经常睡不着觉，也不知道该找谁商量。" +
		"我问过身边的朋友，每个人说的都不一样，越听越糊涂。前段时间我还专门请了假跑了好几趟，来回花了不少路费和时间。" +
		"说实话我文化水平不高，很多东西看不太懂。事情是去年夏天开始的，到现在已经快一年了。我现在手头也比较紧，老人身体也不好。"
	q := "客户嫌贵时怎么确认预算？" + story
	words := func(terms []index.QueryTerm) []string {
		var out []string
		for _, tm := range terms {
			if !tm.Gram {
				out = append(out, tm.Term)
			}
		}
		return out
	}
	in := words(s.QueryTermsIn("c", q))
	if !slices.Contains(in, "预算") || !slices.Contains(in, "客户") {
		t.Errorf("QueryTermsIn kept %v; want the ask's words 预算 and 客户", in)
	}
	if plain := words(s.QueryTerms(q)); slices.Contains(plain, "预算") {
		t.Errorf("QueryTerms (no collection) kept 预算 among %v: the test's story is too short to show the cap", plain)
	}
}

// TestQueryTermsLastClause: in a long message, the words and bigrams of its
// last sentence (the ask, after the story) weigh more; a short question, or
// a long one of a single sentence, is weighed as before.
func TestQueryTermsLastClause(t *testing.T) {
	s := testSearcher(t, retrieve.Options{})
	weights := func(q string) (words, grams map[string]float64) {
		words, grams = map[string]float64{}, map[string]float64{}
		for _, tm := range s.QueryTerms(q) {
			if tm.Gram {
				grams[tm.Term] = tm.Weight
			} else {
				words[tm.Term] = tm.Weight
			}
		}
		return words, grams
	}
	long := "我在一家公司上了三年班，平时加班很多，老板最近一直拖着不发工资，同事们也都很着急。我想问一下，拖欠工资可以去哪里投诉？"
	if n := utf8.RuneCountInString(long); n < 40 {
		t.Fatalf("the long message has %d characters", n)
	}
	words, grams := weights(long)
	for term, want := range map[string]float64{"拖欠工资": 1.5, "投诉": 1.5, "老板": 1, "加班": 1} {
		if words[term] != want {
			t.Errorf("word %q weighs %v, want %v", term, words[term], want)
		}
	}
	// 工资 is also in the story (发工资): the ask's weight wins.
	for term, want := range map[string]float64{"拖欠": 1.5, "工资": 1.5, "投诉": 1.5, "老板": 1, "加班": 1} {
		if grams[term] != want {
			t.Errorf("bigram %q weighs %v, want %v", term, grams[term], want)
		}
	}
	for _, q := range []string{
		"老板不发工资。拖欠工资去哪里投诉？",                            // short: all ask
		strings.Repeat("老板一直拖着不发工资，", 5) + "拖欠工资去哪里投诉", // long, one sentence
	} {
		for _, tm := range s.QueryTerms(q) {
			if tm.Weight > 1 {
				t.Errorf("QueryTerms(%q): %+v weighs more than a word", q, tm)
			}
		}
	}
}
