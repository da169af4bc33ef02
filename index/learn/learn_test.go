package learn

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// wageSamples: layperson questions about unpaid wages and two other topics,
// each answered by the statute passage in the law's own words.
var wageSamples = []Sample{
	{"老板不给钱怎么办", "wage", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{"老板拖欠工资不发怎么办", "wage", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{"公司老板一直欠我工资", "wage", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{"干活受伤了谁来赔", "injury", "职工因工作原因受到事故伤害的，应当认定为工伤，由用人单位依法承担工伤保险责任。"},
	{"上班时候摔伤了算不算工伤", "injury", "职工因工作原因受到事故伤害的，应当认定为工伤，由用人单位依法承担工伤保险责任。"},
	{"房东不退押金怎么办", "deposit", "租赁期限届满，出租人应当返还承租人交付的押金。"},
	{"租房到期房东扣押金", "deposit", "租赁期限届满，出租人应当返还承租人交付的押金。"},
}

func TestSimilarFindsTheChunkOfALikeQuestion(t *testing.T) {
	an := indextest.Analyzer(t)
	m := Build(an, nil, wageSamples)
	if st := m.Stats(); st.Pairs != 7 || st.Questions != 7 || st.Words == 0 {
		t.Fatalf("stats %+v: want 7 pairs, 7 questions, some words", st)
	}
	got := m.Similar(Keys(an, nil, "老板欠工资不给怎么办"))
	if len(got) == 0 || got[0].ChunkID != "wage" {
		t.Fatalf("similar: %+v, want the wage chunk first", got)
	}
	if got[0].Question == "" || !slices.ContainsFunc(wageSamples, func(s Sample) bool { return s.Question == got[0].Question && s.ChunkID == "wage" }) {
		t.Errorf("evidence question %q is not a labelled question of the chunk", got[0].Question)
	}
	// A query like nothing learned: nothing, or weak scores.
	for _, mt := range m.Similar(Keys(an, nil, "量子计算机的原理")) {
		if mt.Score > 0.3 {
			t.Errorf("unrelated query scored %+v", mt)
		}
	}
	// The query equal to a labelled question scores about 1 for its chunk.
	exact := m.Similar(Keys(an, nil, "房东不退押金怎么办"))
	if len(exact) == 0 || exact[0].ChunkID != "deposit" || exact[0].Score < 0.8 {
		t.Errorf("a labelled question itself: %+v, want deposit with a score near 1", exact)
	}
}

func TestExpandTranslatesQuestionWords(t *testing.T) {
	an := indextest.Analyzer(t)
	m := Build(an, nil, wageSamples)
	es := m.Expansions("老板")
	if len(es) == 0 {
		t.Fatal("no expansions learned for 老板")
	}
	if !slices.ContainsFunc(es, func(e Expansion) bool { return e.Term == "用人单位" || e.Term == "劳动报酬" }) {
		t.Errorf("老板 expands to %+v, want 用人单位 or 劳动报酬 among them", es)
	}
	terms := []index.QueryTerm{{Term: "老板", Weight: 1}, {Term: "老板", Weight: 1, Gram: true}, {Term: "用人", Weight: 1, Gram: true}}
	out := m.Expand(terms)
	if len(out) <= len(terms) || !slices.Equal(out[:len(terms)], terms) {
		t.Fatalf("expand %+v: want the terms kept in front and expansions after", out)
	}
	for _, x := range out[len(terms):] {
		if x.From != "老板" || x.Gram || x.Weight <= 0 || x.Weight > 1 {
			t.Errorf("expansion %+v: want a word from 老板 weighing in (0, 1]", x)
		}
	}
	// Expansions are not expanded again, and nothing the query has is added.
	again := m.Expand(out)
	if len(again) != len(out) {
		t.Errorf("expanding twice added %d terms", len(again)-len(out))
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	an := indextest.Analyzer(t)
	a := Build(an, nil, wageSamples)
	shuffled := slices.Clone(wageSamples)
	shuffled = append(shuffled, wageSamples[0]) // a duplicate pair counts once
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b := Build(an, nil, shuffled)
	if a.Stats() != b.Stats() {
		t.Fatalf("stats %+v vs %+v", a.Stats(), b.Stats())
	}
	for w := range a.trans {
		if !slices.Equal(a.Expansions(w), b.Expansions(w)) {
			t.Errorf("%s: %v vs %v", w, a.Expansions(w), b.Expansions(w))
		}
	}
	q := Keys(an, nil, "老板不发工资")
	if !slices.Equal(a.Similar(q), b.Similar(q)) {
		t.Errorf("similar differs: %v vs %v", a.Similar(q), b.Similar(q))
	}
}

func TestQuestionsWithoutPassages(t *testing.T) {
	an := indextest.Analyzer(t)
	// A pair whose chunk is gone still remembers the question; no passage,
	// no translation.
	m := Build(an, nil, []Sample{{Question: "老板不给钱怎么办", ChunkID: "gone"}})
	if st := m.Stats(); st.Questions != 1 || st.Words != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := m.Similar(Keys(an, nil, "老板不给钱")); len(got) != 1 || got[0].ChunkID != "gone" {
		t.Errorf("similar %+v", got)
	}
	var none *Model
	if none.Similar(q(an)) != nil || len(none.Expand([]index.QueryTerm{{Term: "x", Weight: 1}})) != 1 || none.Stats() != (Stats{}) {
		t.Error("a nil model must find nothing and expand nothing")
	}
}

func q(an interface{ Grams(string) []string }) []string { return []string{"g:" + an.Grams("老板")[0]} }
