package graph

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/indextest"
)

// sealed is indextest.Doc sealed (chunk hashes set), with keywords on its
// chunks as the store's analysis would give them.
func sealed(d index.Document, kws ...string) index.Document {
	d.Seal()
	for i := range d.Chunks {
		for _, k := range kws {
			d.Chunks[i].Keywords = append(d.Chunks[i].Keywords, index.Keyword{Term: k, Weight: 0.5})
		}
	}
	return d
}

func ids(hits []index.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ChunkID)
	}
	return out
}

// TestPutOutlineExpand checks the graph on its own: a section is found by
// its heading words, a chunk through a keyword it shares with the query
// and through a co-occurring one, a filter is honoured, and removing a
// document (Put nil) leaves the graph as if it had never been there.
func TestPutOutlineExpand(t *testing.T) {
	g := New(indextest.Analyzer(t), func() *analysis.Vocab { return nil })
	empty := g.Canonical()
	price := sealed(indextest.Doc("price", "价格异议处理", "客户说太贵时先确认预算。"), "预算", "折扣")
	safety := indextest.Doc("safety", "安全生产规定", "有限空间作业必须先通风。")
	safety.Chunks[0].HeadingPath = []string{"第三章 作业安全"}
	safety.Chunks[0].ID = index.ChunkID("safety", safety.Chunks[0].HeadingPath, 0)
	safety = sealed(safety, "通风", "检测")
	budget := sealed(indextest.Doc("budget", "年度计划", "编制下一年的预算。"), "预算")
	for _, d := range []index.Document{price, safety, budget} {
		g.Put(d.ID, &d)
	}

	hits := g.Outline([]index.QueryTerm{{Term: "作业", Weight: 1}, {Term: "安全", Weight: 1}}, &index.Filter{}, 10)
	if got := ids(hits); !slices.Equal(got, []string{safety.Chunks[0].ID}) {
		t.Errorf("Outline(作业 安全) = %v, want the safety chunk", got)
	}
	if len(hits) > 0 && (hits[0].ChunkVersion != index.ChunkVersion(&safety.Chunks[0]) || len(hits[0].Via) == 0) {
		t.Errorf("Outline hit = %+v, want its chunk version and the heading path as Via", hits[0])
	}

	// 折扣 is a keyword of the price chunk alone; 预算 links it to the
	// budget chunk.
	hits = g.Expand([]index.QueryTerm{{Term: "折扣", Weight: 1}}, &index.Filter{}, 10)
	if got := ids(hits); len(got) == 0 || got[0] != price.Chunks[0].ID {
		t.Errorf("Expand(折扣) = %v, want the price chunk first", got)
	}
	hits = g.Expand([]index.QueryTerm{{Term: "预算", Weight: 1}}, &index.Filter{DocIDs: []string{"budget"}}, 10)
	if got := ids(hits); !slices.Equal(got, []string{budget.Chunks[0].ID}) {
		t.Errorf("Expand(预算, only budget) = %v, want the budget chunk alone", got)
	}

	for _, d := range []string{"price", "safety", "budget"} {
		g.Put(d, nil)
	}
	if got := g.Canonical(); got != empty {
		t.Errorf("graph after removing every document:\n%s\nwant it empty:\n%s", got, empty)
	}
	if strings.Contains(g.Canonical(), "预算") {
		t.Error("a removed document's keyword is still in the graph")
	}
}

// TestRemovalsLeaveTheGraphOfTheRest checks that after documents are put,
// replaced and removed in random order, the graph equals one built from the
// documents left alone (edges are removed from keyword lists by position).
func TestRemovalsLeaveTheGraphOfTheRest(t *testing.T) {
	an := indextest.Analyzer(t)
	novocab := func() *analysis.Vocab { return nil }
	g := New(an, novocab)
	rng := rand.New(rand.NewPCG(5, 6))
	word := indextest.ZipfWords(rng)
	live := map[string]index.Document{}
	for i := range 2000 {
		id := fmt.Sprintf("d%d", rng.IntN(150))
		if rng.IntN(3) == 0 {
			g.Put(id, nil)
			delete(live, id)
			continue
		}
		var kws []string
		for range 1 + rng.IntN(8) {
			kws = append(kws, word())
		}
		d := sealed(indextest.RandomDoc(rng, word, id), kws...)
		g.Put(id, &d)
		live[id] = d
		if i%500 == 499 {
			fresh := New(an, novocab)
			for _, d := range live {
				fresh.Put(d.ID, &d)
			}
			if got, want := g.Canonical(), fresh.Canonical(); got != want {
				t.Fatalf("after %d writes the graph differs from one of the %d documents left", i+1, len(live))
			}
		}
	}
}

// TestSectionKeyOrder: sections compare as their keys (sectionKey) do,
// without building them: ids that are prefixes of others, empty paths, and
// bytes below the separator.
func TestSectionKeyOrder(t *testing.T) {
	ids := []string{"", "a", "ab", "a\x01", "a\x1f", "abc", "b"}
	paths := [][]string{nil, {""}, {"x"}, {"x", ""}, {"x", "y"}, {"\x01"}, {"xy"}, {"第1节"}}
	var secs []*gSection
	for _, id := range ids {
		for _, p := range paths {
			secs = append(secs, &gSection{doc: &gDoc{id: id}, path: p})
		}
	}
	for _, a := range secs {
		for _, b := range secs {
			want := strings.Compare(sectionKey(a.doc.id, a.path), sectionKey(b.doc.id, b.path))
			if got := a.compareKey(b); got != want {
				t.Errorf("compareKey(%q %q, %q %q) = %d, want %d", a.doc.id, a.path, b.doc.id, b.path, got, want)
			}
		}
	}
}
