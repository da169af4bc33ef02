package retrieve_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/retrieve"
)

// A collection that learned labelled questions answers a question in the
// learner's own words, none of which the passage holds, and says why: the
// learned question it resembles, and the expansion that matched.
func TestLearnedQuestionsAndExpansions(t *testing.T) {
	ctx := t.Context()
	st := storetest.WithCollections(t, "law")
	docs := []index.Document{
		indextest.Doc("labour", "劳动合同法", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"),
		indextest.Doc("injury", "工伤保险条例", "职工因工作原因受到事故伤害的，应当认定为工伤。"),
		indextest.Doc("lease", "民法典", "租赁期限届满，出租人应当返还承租人交付的押金。"),
	}
	if _, err := st.Upsert(ctx, "law", docs); err != nil {
		t.Fatal(err)
	}
	s := retrieve.New(st, retrieve.Options{})
	query := "老板不给钱咋整"
	before, err := s.Search(ctx, retrieve.Request{Collection: "law", Query: query})
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Hits) > 0 && before.Hits[0].DocID == "labour" {
		t.Fatalf("the passage shares no word with %q, yet ranks first before learning: %+v", query, before.Hits[0])
	}
	pairs := []index.Pair{
		{Question: "老板不给钱怎么办", ChunkID: "labour"},
		{Question: "老板拖欠工资不发", ChunkID: "labour"},
		{Question: "干活受伤了老板不管", ChunkID: "injury"},
		{Question: "房东不退押金", ChunkID: "lease"},
	}
	if _, err := st.Learn(ctx, "law", pairs, false, false); err != nil {
		t.Fatal(err)
	}
	res, err := s.Search(ctx, retrieve.Request{Collection: "law", Query: query})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || res.Hits[0].DocID != "labour" {
		t.Fatalf("after learning: %+v, want labour first", res.Hits)
	}
	ev := res.Hits[0].Evidence
	if !slices.Contains(ev.Sources, retrieve.SourceLearned) || ev.LearnedRank != 1 || ev.Learned <= 0 {
		t.Errorf("evidence %+v: want the learned source at rank 1", ev)
	}
	if !strings.HasPrefix(ev.LearnedQuestion, "老板") {
		t.Errorf("learned question %q: want one of the labour questions", ev.LearnedQuestion)
	}
	terms := s.QueryTermsIn("law", query)
	var expansions []index.QueryTerm
	for _, qt := range terms {
		if qt.From != "" {
			expansions = append(expansions, qt)
		}
	}
	if len(expansions) == 0 {
		t.Fatalf("terms %+v: want learned expansions", terms)
	}
	for _, x := range ev.Expanded {
		if !strings.Contains(x, " ← ") {
			t.Errorf("expanded %q: want \"passage word ← query word\"", x)
		}
	}
	if len(ev.Expanded) == 0 {
		t.Errorf("evidence %+v: want the expansions that matched (terms %+v)", ev, expansions)
	}
	// A weight of 0 turns the learned source off; a filter applies to it.
	zero := index.DefaultFusion
	zero.Learned = 0
	off, err := s.Search(ctx, retrieve.Request{Collection: "law", Query: query, Weights: &zero})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range off.Hits {
		if slices.Contains(h.Evidence.Sources, retrieve.SourceLearned) {
			t.Errorf("learned weight 0, yet %s came from it", h.ChunkID)
		}
	}
	filtered, err := s.Search(ctx, retrieve.Request{Collection: "law", Query: query, Filter: index.Filter{DocIDs: []string{"lease"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range filtered.Hits {
		if h.DocID != "lease" {
			t.Errorf("filter on lease, yet %s", h.ChunkID)
		}
	}
}

// A pasted message of up to 8000 characters is searched: its 64 most telling
// terms, the question at its end among them. One character more is refused,
// naming the limit.
func TestLongMessages(t *testing.T) {
	st := testStore(t)
	s := retrieve.New(st, retrieve.Options{})
	ask := "。请问价格异议怎么处理？"
	story := strings.Repeat("上周我们部门开会讨论了很多事情，大家说法不一，会议开了很久。", 400)
	q := []rune(story)[:retrieve.DefaultMaxQueryRunes-len([]rune(ask))]
	query := string(q) + ask
	res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: query})
	if err != nil {
		t.Fatalf("a message of %d characters: %v", len([]rune(query)), err)
	}
	terms := s.QueryTermsIn("c", query)
	if len(terms) > index.MaxQueryTerms {
		t.Errorf("%d terms, over the cap of %d", len(terms), index.MaxQueryTerms)
	}
	if !slices.ContainsFunc(terms, func(qt index.QueryTerm) bool { return qt.Term == "异议" && !qt.Gram }) {
		t.Errorf("the ask's word 异议 was dropped from the terms %v", terms)
	}
	if len(res.Hits) == 0 || !strings.Contains(res.Hits[0].Text+strings.Join(res.Hits[0].HeadingPath, ""), "异议") {
		t.Errorf("top hit %+v: want a passage on 价格异议", res.Hits)
	}
	_, err = s.Search(t.Context(), retrieve.Request{Collection: "c", Query: query + "吗"})
	if !errors.Is(err, retrieve.ErrInvalid) || !strings.Contains(err.Error(), "over the limit of 8000") {
		t.Errorf("8001 characters: %v, want invalid naming the limit", err)
	}
}
