package retrieve

import (
	"fmt"
	"testing"

	"github.com/zhisou/zhisou/index"
)

// Over the cap, the query's own terms go before learned expansions of the
// same weight, though expansions come last (and the later term wins other
// ties: a question ends with its ask).
func TestCapTermsOwnWordsFirst(t *testing.T) {
	var terms []index.QueryTerm
	for i := range index.MaxQueryTerms {
		terms = append(terms, index.QueryTerm{Term: fmt.Sprintf("词%d", i), Weight: 1})
	}
	terms = append(terms, index.QueryTerm{Term: "用人单位", Weight: 1, From: "老板"}, index.QueryTerm{Term: "劳动报酬", Weight: 1.5, From: "工资"})
	got := capTerms(terms)
	if len(got) != index.MaxQueryTerms {
		t.Fatalf("%d terms, want %d", len(got), index.MaxQueryTerms)
	}
	for _, qt := range got {
		if qt.Term == "用人单位" {
			t.Errorf("the expansion of weight 1 was kept over the query's own word of weight 1")
		}
	}
	if got[len(got)-1].Term != "劳动报酬" {
		t.Errorf("the heavier expansion was dropped: last term %+v", got[len(got)-1])
	}
	if got[0].Term != "词1" {
		t.Errorf("first term %+v: want 词1 (词0, the earliest of equal weight, makes room)", got[0])
	}
}

func TestOwnTerms(t *testing.T) {
	terms := []index.QueryTerm{{Term: "老板", Weight: 1}, {Term: "用人单位", Weight: 0.5, From: "老板"}, {Term: "工资", Weight: 1}}
	own := ownTerms(terms)
	if len(own) != 2 || own[0].Term != "老板" || own[1].Term != "工资" {
		t.Errorf("own terms %+v, want 老板 and 工资", own)
	}
	if len(terms) != 3 || terms[1].Term != "用人单位" {
		t.Errorf("ownTerms changed its argument: %+v", terms)
	}
}
