package bm25

import (
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// TestHasTerms: a word or a bigram is found in whichever segment holds it;
// a term no chunk holds is not.
func TestHasTerms(t *testing.T) {
	c := newTestColl(t, index.DefaultCollection("c"))
	docs := indextest.Fixture()
	for _, batch := range [][]index.Document{docs[:2], docs[2:]} { // two segments
		if err := c.Upsert(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	terms := []index.QueryTerm{
		{Term: "价格", Weight: 1},             // body
		{Term: "通风", Weight: 1},             // body, second segment
		{Term: "量子色动力学", Weight: 1},         // nowhere
		{Term: "价格", Weight: 1, Gram: true}, // a bigram
		{Term: "量子", Weight: 1, Gram: true}, // nowhere
	}
	has, err := c.text.HasTerms(terms)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false, true, false}
	for i := range terms {
		if has[i] != want[i] {
			t.Errorf("HasTerms %+v = %v, want %v", terms[i], has[i], want[i])
		}
	}
}
