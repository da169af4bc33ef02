package bm25

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/indextest"
)

// testColl is one collection's Index with the bookkeeping that the store
// does around it (sealing and analysing documents, corpus statistics, the
// chunk versions each document has), so that scoring is tested without a
// store. Each Upsert or Delete is one batch, as one store write is.
type testColl struct {
	an    *analysis.Analyzer
	cfg   index.Collection
	stats index.Stats
	text  *Index
	docs  map[string]index.Document
}

func newTestColl(t testing.TB, cfg index.Collection) *testColl {
	t.Helper()
	ix, err := Open(filepath.Join(t.TempDir(), "bleve"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return &testColl{an: indextest.Analyzer(t), cfg: cfg, text: ix, docs: map[string]index.Document{}}
}

// addLens adds (sign 1) or removes (sign -1) a chunk from the statistics.
func (c *testColl) addLens(ch *index.Chunk, sign int64) {
	c.stats.Chunks += sign
	for f := range index.NumFields {
		c.stats.SumLen[f] += sign * int64(ch.Lens[f])
	}
}

// remove deletes a stored document's chunk versions from b and its lengths
// from the statistics.
func (c *testColl) remove(b *Batch, id string) {
	old, ok := c.docs[id]
	if !ok {
		return
	}
	for i := range old.Chunks {
		b.Delete(index.ChunkVersion(&old.Chunks[i]))
		c.addLens(&old.Chunks[i], -1)
	}
	c.stats.Docs--
	delete(c.docs, id)
}

// Upsert writes documents (each at most once) in one batch.
func (c *testColl) Upsert(ctx context.Context, docs []index.Document) error {
	b := c.text.NewBatch()
	for _, d := range docs {
		d.Seal()
		c.remove(b, d.ID)
		for i := range d.Chunks {
			ch := &d.Chunks[i]
			terms := Analyse(c.an, nil, d.Title, ch)
			ch.Lens = terms.Lens()
			if err := b.Index(&d, ch, terms); err != nil {
				return err
			}
			c.addLens(ch, 1)
		}
		c.stats.Docs++
		c.docs[d.ID] = d
	}
	return c.text.Apply(b)
}

// Delete removes documents in one batch.
func (c *testColl) Delete(ctx context.Context, ids []string) error {
	b := c.text.NewBatch()
	for _, id := range ids {
		c.remove(b, id)
	}
	return c.text.Apply(b)
}

func (c *testColl) params() Params { return NewParams(c.cfg, c.stats) }

// search is Search (pruned) or SearchExhaustive with the collection's
// parameters.
func (c *testColl) search(ctx context.Context, terms []index.QueryTerm, f index.Filter, k int, exhaustive bool) ([]index.Hit, index.SearchStats, error) {
	if exhaustive {
		return c.text.SearchExhaustive(ctx, c.params(), terms, f, k)
	}
	return c.text.Search(ctx, c.params(), terms, f, k)
}
