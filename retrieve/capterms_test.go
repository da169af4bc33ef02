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
