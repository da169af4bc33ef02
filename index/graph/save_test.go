package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/indextest"
)

// savedFixture is a graph of random documents with metadata, several
// sections and keywords, some documents replaced and some removed (so that
// slots were freed), and its saved form.
func savedFixture(t *testing.T) (*Graph, []byte) {
	t.Helper()
	an := indextest.Analyzer(t)
	g := New(an, func() *analysis.Vocab { return nil })
	rng := rand.New(rand.NewPCG(1, 2))
	word := indextest.ZipfWords(rng)
	for i := range 300 {
		d := indextest.RandomDoc(rng, word, fmt.Sprintf("doc%d", i%240))
		if i%3 == 0 {
			d.Metadata = map[string]string{"course": word(), "level": fmt.Sprint(i % 4)}
		}
		if i%5 == 0 && len(d.Chunks) > 1 {
			d.Chunks[1].HeadingPath = []string{"第一章 " + word(), "第二节 " + word()}
		}
		var kws []string
		for range 1 + rng.IntN(6) {
			kws = append(kws, word())
		}
		d = sealed(d, kws...)
		g.Put(d.ID, &d)
	}
	for i := range 20 {
		g.Put(fmt.Sprintf("doc%d", i*7), nil)
	}
	return g, g.AppendBinary(nil)
}

// TestSavedGraphLoads checks that a graph loaded from its saved form is the
// graph that was saved, and answers as it did.
func TestSavedGraphLoads(t *testing.T) {
	g, b := savedFixture(t)
	loaded := New(g.an, g.vocab)
	if err := loaded.Load(b); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := loaded.Canonical(), g.Canonical(); got != want {
		t.Fatalf("loaded graph differs from the saved one:\n%.2000s\nwant:\n%.2000s", got, want)
	}
	queries := [][]index.QueryTerm{
		{{Term: "客户", Weight: 1}, {Term: "价格", Weight: 0.5}},
		{{Term: "预算", Weight: 1}, {Term: "第一章", Weight: 1}},
		{{Term: "通风", Weight: 1}, {Term: "检测", Weight: 1}, {Term: "作业", Weight: 0.7}},
	}
	for _, q := range queries {
		f := &index.Filter{}
		if got, want := loaded.Expand(q, f, 20), g.Expand(q, f, 20); !slices.EqualFunc(got, want, sameHit) || len(want) == 0 {
			t.Errorf("Expand(%v) after load = %v, want %v (not empty)", q, got, want)
		}
		if got, want := loaded.Outline(q, f, 20), g.Outline(q, f, 20); !slices.EqualFunc(got, want, sameHit) {
			t.Errorf("Outline(%v) after load = %v, want %v", q, got, want)
		}
	}
	// It goes on changing like any graph.
	d := sealed(indextest.Doc("doc1", "新标题", "客户预算。"), "预算")
	loaded.Put(d.ID, &d)
	g.Put(d.ID, &d)
	loaded.Put("doc2", nil)
	g.Put("doc2", nil)
	if loaded.Canonical() != g.Canonical() {
		t.Error("after the same writes, the loaded graph differs from the saved one")
	}
	if err := loaded.Load(b); err == nil {
		t.Error("Load into a graph that has documents: no error")
	}
}

func sameHit(a, b index.Hit) bool {
	return a.ChunkID == b.ChunkID && a.Score == b.Score && a.ChunkVersion == b.ChunkVersion && slices.Equal(a.Via, b.Via)
}

// TestSavedGraphDamage checks that a saved form cut short anywhere is refused
// (and leaves the graph empty), and that damage anywhere never panics.
func TestSavedGraphDamage(t *testing.T) {
	g, b := savedFixture(t)
	empty := New(g.an, g.vocab).Canonical()
	for n := 0; n < len(b); n += 1 + n/50 {
		h := New(g.an, g.vocab)
		if err := h.Load(b[:n]); !errors.Is(err, errSaved) {
			t.Fatalf("Load of the first %d of %d bytes: %v, want errSaved", n, len(b), err)
		}
		if h.Canonical() != empty {
			t.Fatalf("after a refused load of %d bytes, the graph is not empty", n)
		}
	}
	if err := New(g.an, g.vocab).Load(append(slices.Clone(b), 0)); !errors.Is(err, errSaved) {
		t.Errorf("Load with a byte after the end: %v, want errSaved", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		c := slices.Clone(b)
		for range 1 + rng.IntN(3) {
			c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
		}
		_ = New(g.an, g.vocab).Load(c) // may load other content; must not panic
	}
}

// BenchmarkLoad loads the saved form of a graph of 20 000 random documents
// (about 50 000 chunks): go test -run '^$' -bench Load -benchmem ./index/graph/
func BenchmarkLoad(b *testing.B) {
	an := indextest.Analyzer(b)
	g := New(an, func() *analysis.Vocab { return nil })
	rng := rand.New(rand.NewPCG(7, 8))
	word := indextest.ZipfWords(rng)
	for i := range 20000 {
		var kws []string
		for range 1 + rng.IntN(8) {
			kws = append(kws, word()+word())
		}
		d := sealed(indextest.RandomDoc(rng, word, fmt.Sprintf("doc%d", i)), kws...)
		g.Put(d.ID, &d)
	}
	saved := g.AppendBinary(nil)
	b.SetBytes(int64(len(saved)))
	for b.Loop() {
		if err := New(an, g.vocab).Load(saved); err != nil {
			b.Fatal(err)
		}
	}
}
