package learn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// wageSamples: layperson questions about unpaid wages and two other topics,
// each answered by the statute passage in the law's own words.
var wageSamples = []Sample{
	{Question: "老板不给钱怎么办", ChunkID: "wage", Passage: "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{Question: "老板拖欠工资不发怎么办", ChunkID: "wage", Passage: "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{Question: "公司老板一直欠我工资", ChunkID: "wage", Passage: "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
	{Question: "干活受伤了谁来赔", ChunkID: "injury", Passage: "职工因工作原因受到事故伤害的，应当认定为工伤，由用人单位依法承担工伤保险责任。"},
	{Question: "上班时候摔伤了算不算工伤", ChunkID: "injury", Passage: "职工因工作原因受到事故伤害的，应当认定为工伤，由用人单位依法承担工伤保险责任。"},
	{Question: "房东不退押金怎么办", ChunkID: "deposit", Passage: "租赁期限届满，出租人应当返还承租人交付的押金。"},
	{Question: "租房到期房东扣押金", ChunkID: "deposit", Passage: "租赁期限届满，出租人应当返还承租人交付的押金。"},
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

func q(an interface{ Grams(string) []string }) []string {
	return []string{"g:" + an.Grams("老板")[0]}
}

// Trust: a FAQ list (one question per answer) cannot be judged and is
// trusted; questions that share answers but do not predict them (alike only
// in their form) are trusted little, and their expansions are not added.
func TestTrust(t *testing.T) {
	an := indextest.Analyzer(t)
	var faq, formOnly []Sample
	topics := []string{"色林错", "纳木错", "青海湖", "洞庭湖", "鄱阳湖", "太湖", "洪泽湖", "巢湖", "滇池", "洱海", "抚仙湖", "泸沽湖",
		"博斯腾湖", "呼伦湖", "兴凯湖", "微山湖", "骆马湖", "千岛湖", "西湖", "玄武湖", "东湖", "南湖", "月牙泉", "天池"}
	for i, lake := range topics {
		id := fmt.Sprintf("c%02d", i)
		faq = append(faq, Sample{Question: lake + "的面积有多大", ChunkID: id, Passage: lake + "的面积约为若干平方公里。"})
		// Two questions per passage of the same form, each about its own
		// lake: asked with itself left out, a question finds the other
		// lakes' questions of its form as readily as its own passage's.
		formOnly = append(formOnly,
			Sample{Question: lake + "的湖水面积是多少平方公里", ChunkID: id, Passage: lake + "湖水面积若干平方公里，海拔若干米。"},
			Sample{Question: "海拔多少米的是" + topics[(i+1)%len(topics)], ChunkID: id, Passage: lake + "湖水面积若干平方公里，海拔若干米。"})
	}
	if m := Build(an, nil, faq); m.Trust() != 1 {
		t.Errorf("a FAQ list: trust %v (reliability %v), want 1", m.Trust(), m.Stats().Reliability)
	}
	m := Build(an, nil, formOnly)
	st := m.Stats()
	if st.Reliability >= fullTrust || st.Trust >= 1 {
		t.Fatalf("questions alike only in form: %+v, want reliability under %v and trust under 1", st, fullTrust)
	}
	if want := math.Pow(st.Reliability/fullTrust, 3); math.Abs(st.Trust-want) > 1e-9 {
		t.Errorf("trust %v, want (reliability/%v)³ = %v", st.Trust, fullTrust, want)
	}
	terms := []index.QueryTerm{{Term: "面积", Weight: 1}}
	if got := m.Expand(terms); st.Trust < minTrust && len(got) != 1 {
		t.Errorf("trust %v under %v, yet expansions %+v", st.Trust, minTrust, got[1:])
	}
}

// One question with two answers (contradictory, or both right) votes for
// both chunks, equally.
func TestQuestionWithTwoAnswers(t *testing.T) {
	an := indextest.Analyzer(t)
	m := Build(an, nil, []Sample{
		{Question: "老板不给钱怎么办", ChunkID: "wage", Passage: "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"},
		{Question: "老板不给钱怎么办", ChunkID: "arbitration", Passage: "发生劳动争议，当事人可以向劳动争议仲裁委员会申请仲裁。"},
	})
	if st := m.Stats(); st.Pairs != 2 || st.Questions != 1 {
		t.Fatalf("stats %+v: want 2 pairs of 1 question", st)
	}
	got := m.Similar(Keys(an, nil, "老板不给钱"))
	if len(got) != 2 || got[0].Score != got[1].Score {
		t.Fatalf("similar %+v: want both chunks, scored alike", got)
	}
}

// TestGeneratedQuestions: questions a model wrote about chunks vote at
// GeneratedWeight, whatever the labelled questions' trust; they teach no
// expansions, and leave the labelled questions' self-check as it was.
func TestGeneratedQuestions(t *testing.T) {
	an := indextest.Analyzer(t)
	gen := func(q, chunk string) Sample {
		return Sample{Question: q, ChunkID: chunk, Passage: "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。", Weight: GeneratedWeight}
	}
	only := Build(an, nil, []Sample{gen("老板不给钱怎么办", "wage"), gen("工资拖欠了找谁", "wage")})
	if st := only.Stats(); st.Pairs != 0 || st.Generated != 2 || st.Words != 0 {
		t.Errorf("stats %+v: want 0 labelled pairs, 2 generated, no expansions", st)
	}
	got := only.Similar(Keys(an, nil, "老板不给钱怎么办"))
	if len(got) != 1 || got[0].ChunkID != "wage" || math.Abs(got[0].Score-GeneratedWeight) > 0.05 {
		t.Errorf("a generated question itself: %+v, want wage scored about %v", got, GeneratedWeight)
	}

	// Next to labelled questions that are not trusted (alike in form, not
	// in answer), generated ones still vote; the labelled reliability is
	// what it was without them.
	var formOnly []Sample
	for i := range 30 {
		id := fmt.Sprintf("c%02d", i)
		formOnly = append(formOnly,
			Sample{Question: fmt.Sprintf("第%d个湖的面积是多少平方公里", i), ChunkID: id, Passage: "湖水面积若干平方公里。"},
			Sample{Question: fmt.Sprintf("海拔多少米的是第%d个湖", (i+1)%30), ChunkID: id, Passage: "湖水面积若干平方公里。"})
	}
	untrusted := Build(an, nil, formOnly)
	mixed := Build(an, nil, append(slices.Clone(formOnly), gen("老板不给钱怎么办", "wage")))
	if untrusted.Trust() >= minTrust {
		t.Fatalf("fixture: the form-alike questions are trusted (%v)", untrusted.Trust())
	}
	if r0, r1 := untrusted.Stats().Reliability, mixed.Stats().Reliability; r0 != r1 {
		t.Errorf("reliability %v with a generated question, %v without", r1, r0)
	}
	if got := mixed.Similar(Keys(an, nil, "老板不给钱")); len(got) == 0 || got[0].ChunkID != "wage" {
		t.Errorf("untrusted labels silenced the generated question: %+v", got)
	}
	if got := mixed.Similar(Keys(an, nil, "第3个湖的面积是多少平方公里")); len(got) != 0 {
		t.Errorf("untrusted labelled questions voted: %+v", got)
	}
}

// TestCommonKeys: a key most questions hold (怎么办) adds to the questions
// the query's rarer keys found without walking its list, and a query of
// common keys alone still finds its questions.
func TestCommonKeys(t *testing.T) {
	an := indextest.Analyzer(t)
	var samples []Sample
	for i := range 1200 {
		samples = append(samples, Sample{Question: fmt.Sprintf("工号%d的工资怎么办", i), ChunkID: fmt.Sprintf("c%d", i)})
	}
	m := Build(an, nil, samples)
	got := m.Similar(Keys(an, nil, "工号737的工资怎么办"))
	if len(got) == 0 || got[0].ChunkID != "c737" || got[0].Score < 0.8 {
		t.Fatalf("similar: %+v, want c737 first, scored near 1", got[:min(3, len(got))])
	}
	if len(got) > similarQuestions {
		t.Errorf("%d chunks voted for, want at most %d", len(got), similarQuestions)
	}
	if got := m.Similar(Keys(an, nil, "工资怎么办")); len(got) == 0 {
		t.Error("a query of common keys only found nothing")
	}
}
