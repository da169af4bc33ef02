package bm25

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/zhisou/zhisou/index"
)

// A bleve snapshot never changes, so what a search reads from it can be kept
// for the next search on the same snapshot: a term's postings decoded into
// doc numbers and BM25F pseudo term frequencies (bleve spends ~100 ns a
// posting decoding; an array costs a few), with their largest value per
// window of doc numbers, and the term's document frequency. A write or a
// merge makes a new snapshot, and the first search on it starts a new cache,
// assembled term by term from the raw postings the collection keeps per
// segment (segcache.go), with the external ids of doc numbers: only the
// segments new to the snapshot are read from bleve.

// DefaultCacheBytes bounds a collection's two postings caches together
// (Options.CacheBytes): half for the snapshot's assembled terms, half for the
// segments' raw postings. Past its half, a cache evicts at random.
const DefaultCacheBytes = 256 << 20

// fieldPostings are one term's postings in one field.
type fieldPostings struct {
	f    int
	docs []uint32
	// ptf[i] is pseudoTF(f, freq, length) of docs[i], computed exactly as
	// scoreAll computes it.
	ptf []float64
	// winMax[w] is the largest ptf of the postings in window w (doc
	// numbers w·window to (w+1)·window-1).
	winMax []float64
}

// termData is what a search needs of one term.
type termData struct {
	df     int // chunks with the term in any of its fields
	size   int // bytes, for the cache's budget
	fields []fieldPostings
}

type termKey struct {
	term string
	gram bool
}

// snapCache is the cache of one snapshot under one set of BM25 parameters.
type snapCache struct {
	snap   *scorch.IndexSnapshot
	p      Params
	layout segLayout
	raw    *rawCache // the collection's, shared by its snapshots
	budget int       // bytes of terms kept

	mu    sync.RWMutex
	terms map[termKey]*termData
	bytes int
}

// cacheFor returns the cache of the reader's snapshot and p, starting a new
// one when the snapshot or the parameters changed.
func (t *Index) cacheFor(r bindex.IndexReader, p Params) (*snapCache, error) {
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return nil, errNotScorch(r)
	}
	if c := t.cache.Load(); c != nil && c.snap == snap && c.p == p {
		return c, nil
	}
	c := t.newSnapCache(snap, p)
	t.cache.Store(c)
	select {
	case t.warm <- warmRequest{p: p}:
	default:
	}
	return c, nil
}

// newSnapCache starts the cache of snap under p, and has the raw cache keep
// the snapshot's segments only.
func (t *Index) newSnapCache(snap *scorch.IndexSnapshot, p Params) *snapCache {
	c := &snapCache{snap: snap, p: p, layout: newSegLayout(snap), raw: t.raw, budget: t.raw.budget, terms: map[termKey]*termData{}}
	t.raw.retain(c.layout.segs)
	return c
}

// term returns a term's postings, assembling them on a miss when the
// postings to decode from bleve (in the segments the raw cache misses) are at
// most limit (anyPostings: any number); nil when they are more.
func (c *snapCache) term(ctx context.Context, qt index.QueryTerm, limit int, st *index.SearchStats) (*termData, error) {
	key := termKey{qt.Term, qt.Gram}
	c.mu.RLock()
	td := c.terms[key]
	c.mu.RUnlock()
	if td != nil {
		return td, nil
	}
	td, size, err := c.readTerm(ctx, qt, limit, st)
	if err != nil || td == nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have := c.terms[key]; have != nil {
		return have, nil // read meanwhile by another search or the warmer
	}
	if c.bytes+size > c.budget {
		// Evict terms at random (map order) down to 7/8 of the budget:
		// the terms in use come back at their next miss.
		for k, old := range c.terms {
			if c.bytes+size <= c.budget*7/8 {
				break
			}
			c.bytes -= old.size
			delete(c.terms, k)
		}
	}
	if size <= c.budget {
		td.size = size
		c.terms[key] = td
		c.bytes += size
	}
	return td, nil
}

// inlinePostings is the most postings a search decodes from bleve itself
// (rare terms, or common terms in the segments new since the raw cache saw
// them: a few µs); terms beyond it go to the warmer, and the search scores
// bleve's postings meanwhile. Assembling a term from raw postings already
// decoded costs a few ns a posting and is not counted.
const inlinePostings = 4096

// anyPostings is term's limit for decoding however many postings.
const anyPostings = math.MaxInt

// load makes sure the terms are cached: it assembles the missing ones while
// the postings it decodes stay within inlinePostings, and asks the warmer for
// the rest (without waiting: when the warmer is busy, a later search asks
// again). It reports whether every term is cached. r is c's snapshot.
func (c *snapCache) load(ctx context.Context, r bindex.IndexReader, terms []index.QueryTerm, warm chan<- warmRequest, st *index.SearchStats) (bool, error) {
	budget := inlinePostings
	var big []index.QueryTerm
	for _, qt := range terms {
		c.mu.RLock()
		td := c.terms[termKey{qt.Term, qt.Gram}]
		c.mu.RUnlock()
		if td != nil {
			continue
		}
		decoded := st.Decoded
		td, err := c.term(ctx, qt, max(budget, 0), st)
		if err != nil {
			return false, err
		}
		budget -= st.Decoded - decoded
		if td == nil {
			big = append(big, qt)
		}
	}
	if len(big) == 0 {
		return true, nil
	}
	select {
	case warm <- warmRequest{p: c.p, terms: big}:
	default:
	}
	return false, nil
}

// docFreq counts the chunks that have the term in any of its fields and
// that keep accepts (nil: all): BM25's df as scoreAll counts it.
func (td *termData) docFreq(keep func(uint32) bool) int {
	fs := td.fields
	if len(fs) == 1 && keep == nil {
		return len(fs[0].docs)
	}
	// Merge the fields' sorted doc lists (at most three).
	var at [index.NumFields]int
	n := 0
	for {
		next, ok := uint32(0), false
		for i := range fs {
			if at[i] < len(fs[i].docs) && (!ok || fs[i].docs[at[i]] < next) {
				next, ok = fs[i].docs[at[i]], true
			}
		}
		if !ok {
			return n
		}
		for i := range fs {
			if at[i] < len(fs[i].docs) && fs[i].docs[at[i]] == next {
				at[i]++
			}
		}
		if keep == nil || keep(next) {
			n++
		}
	}
}

// warmRequest asks the warmer to decode terms into the cache of the current
// snapshot under p; with no terms, the snapshot's common terms (prewarm).
type warmRequest struct {
	p     Params
	terms []index.QueryTerm
}

// warmer decodes requested terms into the current snapshot's cache until
// ctx is done.
func (t *Index) warmer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-t.warm:
			// On an error the next search that misses asks again.
			if req.terms == nil {
				_ = t.prewarm(ctx, req.p)
			} else {
				_ = t.prime(ctx, req.p, req.terms)
			}
		}
	}
}

// StartPrewarm starts the cache of the current snapshot, which asks the
// warmer to prewarm it in the background: the first searches after a store
// opens then find the common terms decoded.
func (t *Index) StartPrewarm(p Params) {
	r, err := t.reader()
	if err != nil {
		return // the first search tries again
	}
	defer r.Close()
	_, _ = t.cacheFor(r, p) // the error is the search's to report
}

// prewarm decodes the terms too common to be decoded by a search itself
// (more than inlinePostings/2 postings in a field) into the current
// snapshot's cache, up to three quarters of its budget, and stops when a
// newer snapshot's cache replaces it: after it, a search finds every term
// cached or decodes it cheaply.
func (t *Index) prewarm(ctx context.Context, p Params) error {
	r, err := t.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := t.cacheFor(r, p)
	if err != nil {
		return err
	}
	common, err := t.commonTerms(ctx, r, c)
	if err != nil || common == nil {
		return err
	}
	var st index.SearchStats
	for _, qt := range common {
		c.mu.RLock()
		full := c.bytes > c.budget*3/4
		c.mu.RUnlock()
		if full || t.cache.Load() != c {
			break // a newer snapshot's cache is the one to fill
		}
		if _, err := c.term(ctx, qt, anyPostings, &st); err != nil {
			return err
		}
	}
	return nil
}

// commonList is the warmer's list of the terms that prewarm decodes, and
// the number of documents of the snapshot it was read from.
type commonList struct {
	terms []index.QueryTerm
	docs  uint64
	ok    bool
}

// commonTerms returns the terms with more than inlinePostings/2 postings in
// a field: those read from r's field dictionaries, or the list read from an
// earlier snapshot while the documents have changed in number by at most an
// eighth since. Scanning the dictionaries at every write, when the postings
// themselves are mostly cached, took most of the warmer's time (the terms a
// write makes common meanwhile are read as searches meet them). It returns
// nil when a newer snapshot's cache replaces c during the scan. Called by
// the warmer goroutine alone.
func (t *Index) commonTerms(ctx context.Context, r bindex.IndexReader, c *snapCache) ([]index.QueryTerm, error) {
	docs, err := r.DocCount()
	if err != nil {
		return nil, err
	}
	if l := t.common; l.ok && docs >= l.docs-l.docs/8 && docs <= l.docs+l.docs/8 {
		return l.terms, nil
	}
	t.dictScans++
	common := []index.QueryTerm{}
	for f, field := range scoredFields {
		d, err := r.FieldDict(field)
		if err != nil {
			return nil, err
		}
		for {
			e, err := d.Next()
			if err != nil || e == nil {
				d.Close()
				if err != nil {
					return nil, err
				}
				break
			}
			if e.Count > inlinePostings/2 {
				common = append(common, index.QueryTerm{Term: e.Term, Gram: f == gramField})
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if t.cache.Load() != c {
			return nil, nil // a newer snapshot's cache is the one to fill
		}
	}
	t.common = commonList{terms: common, docs: docs, ok: true}
	return common, nil
}

// prime decodes the terms missing from the current snapshot's cache, until
// a newer snapshot's cache replaces it.
func (t *Index) prime(ctx context.Context, p Params, terms []index.QueryTerm) error {
	r, err := t.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := t.cacheFor(r, p)
	if err != nil {
		return err
	}
	var st index.SearchStats
	for _, qt := range terms {
		if t.cache.Load() != c {
			break // a newer snapshot's cache is the one to fill
		}
		if _, err := c.term(ctx, qt, anyPostings, &st); err != nil {
			return err
		}
	}
	return nil
}

// externalIDs fills ids[i] with the external id of nums[i], from the raw
// cache's ids of the snapshot's segments when it has them.
func (c *snapCache) externalIDs(r bindex.IndexReader, nums []uint64, ids []string) error {
	if !c.raw.ids(&c.layout, nums, ids) {
		return nil
	}
	var buf [8]byte
	for i, n := range nums {
		if ids[i] != "" {
			continue
		}
		binary.BigEndian.PutUint64(buf[:], n)
		id, err := r.ExternalID(buf[:])
		if err != nil {
			return err
		}
		ids[i] = id
	}
	c.raw.putIDs(&c.layout, nums, ids)
	return nil
}

func errNotScorch(r bindex.IndexReader) error {
	return fmt.Errorf("search: index reader is %T, not a scorch snapshot", r)
}
