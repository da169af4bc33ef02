package bm25

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2/index/scorch"
	segment "github.com/blevesearch/scorch_segment_api/v2"
	"github.com/zhisou/zhisou/index"
)

// A write or a merge makes a new bleve snapshot, but scorch segments are
// immutable and a new snapshot mostly shares them with the previous one: a
// batch appends a small segment, a merge replaces a few, a deletion changes
// only a segment's deleted bitmap. So under the snapshot caches, the
// collection keeps each term's raw postings per segment (local doc numbers,
// frequencies and norms, deleted docs included), and a snapshot's termData is
// assembled from them (a few ns a posting) after decoding only the segments
// not seen yet (~100 ns a posting): after a write, a common term costs the
// postings of the new segment.
//
// A segment is known by its scorch id, which stays with it across snapshots
// (persisting an in-memory segment keeps the id and the doc numbers; a merge
// makes a segment with a new id).

// rawPosting is one posting as the segment stores it.
type rawPosting struct {
	doc  uint32 // the segment's local doc number
	freq uint32
	// length is fieldLength of the posting's norm (an integer: the field's
	// length in terms).
	length uint32
}

// rawTerm is one term's postings in one segment, per scored field (nil:
// none), deleted docs included.
type rawTerm struct {
	fields [index.NumFields][]rawPosting
	n      int // postings in all fields
	size   int // bytes, for the budget
}

// rawCache holds a collection's raw postings by segment id and term. Only
// the segments of the latest snapshot started (retain) are kept: a search
// on an older snapshot decodes the segments since merged away without
// caching them.
type rawCache struct {
	budget int // bytes of raw postings kept; past it entries are evicted at random

	mu    sync.RWMutex
	segs  map[uint64]map[termKey]*rawTerm
	bytes int
	// docIDs holds the kept segments' external ids by local doc number
	// ("": not read yet; nil: none read).
	docIDs map[uint64][]string
	// latest is the largest segment id of the snapshot last retained.
	latest uint64
	// decodes counts segments decoded (a term's postings in one segment):
	// the misses, for tests.
	decodes atomic.Int64
}

func newRawCache(budget int) *rawCache {
	return &rawCache{budget: budget, segs: map[uint64]map[termKey]*rawTerm{}, docIDs: map[uint64][]string{}}
}

// retain drops the segments not in segs and makes room for those in it,
// unless segs are an older snapshot's than the last retained: scorch numbers
// segments in the order it makes them (batches and merges alike; a merge's
// id is above those it merges), so an older snapshot lacks the newer's
// largest id. Searches still on an older snapshot call it when they start
// its cache after a newer one's.
func (rc *rawCache) retain(segs []*scorch.SegmentSnapshot) {
	keep := make(map[uint64]bool, len(segs))
	latest := uint64(0)
	for _, s := range segs {
		keep[s.Id()] = true
		latest = max(latest, s.Id())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if latest < rc.latest {
		return
	}
	rc.latest = latest
	for id, terms := range rc.segs {
		if !keep[id] {
			for _, rt := range terms {
				rc.bytes -= rt.size
			}
			delete(rc.segs, id)
			delete(rc.docIDs, id)
		}
	}
	for id := range keep {
		if rc.segs[id] == nil {
			rc.segs[id] = map[termKey]*rawTerm{}
		}
	}
}

// lookup fills rts[i] with the term's raw postings in segs[i] (nil: not
// cached) and returns how many are missing.
func (rc *rawCache) lookup(segs []*scorch.SegmentSnapshot, key termKey, rts []*rawTerm) int {
	missing := 0
	rc.mu.RLock()
	for i, s := range segs {
		if rts[i] = rc.segs[s.Id()][key]; rts[i] == nil {
			missing++
		}
	}
	rc.mu.RUnlock()
	return missing
}

// put caches a term's raw postings in segment id, if the segment is kept.
func (rc *rawCache) put(id uint64, key termKey, rt *rawTerm) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	terms := rc.segs[id]
	if terms == nil || terms[key] != nil || rt.size > rc.budget {
		return
	}
	if rc.bytes+rt.size > rc.budget {
		// Evict at random (map order) down to 7/8 of the budget: the
		// entries in use come back at their next miss.
	evict:
		for _, ts := range rc.segs {
			for k, old := range ts {
				if rc.bytes+rt.size <= rc.budget*7/8 {
					break evict
				}
				rc.bytes -= old.size
				delete(ts, k)
			}
		}
	}
	terms[key] = rt
	rc.bytes += rt.size
}

// ids fills ids[i] with the cached external id of global doc number nums[i]
// in l ("" when not cached) and reports whether any is missing.
func (rc *rawCache) ids(l *segLayout, nums []uint64, ids []string) bool {
	missing := false
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	for i, n := range nums {
		si, local := l.locate(n)
		ids[i] = ""
		if s := rc.docIDs[l.segs[si].Id()]; s != nil {
			ids[i] = s[local]
		}
		if ids[i] == "" {
			missing = true
		}
	}
	return missing
}

// putIDs caches ids[i] as the external id of global doc number nums[i] in
// l, if its segment is kept.
func (rc *rawCache) putIDs(l *segLayout, nums []uint64, ids []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, n := range nums {
		si, local := l.locate(n)
		seg := l.segs[si]
		if rc.segs[seg.Id()] == nil {
			continue
		}
		s := rc.docIDs[seg.Id()]
		if s == nil {
			s = make([]string, seg.Segment().Count())
			rc.docIDs[seg.Id()] = s
		}
		s[local] = ids[i]
	}
}

// segPostings are a term's postings lists in one segment, per scored field
// (nil: none), opened with no deleted docs excepted.
type segPostings struct {
	lists [index.NumFields]segment.PostingsList
	n     int // postings in all fields
}

// openRaw opens the term's postings lists in seg, as IndexSnapshot's
// TermFieldReader does but keeping deleted docs.
func openRaw(seg segment.Segment, qt index.QueryTerm) (segPostings, error) {
	var sp segPostings
	term := []byte(qt.Term)
	for f, field := range scoredFields {
		if (f == gramField) != qt.Gram {
			continue
		}
		dict, err := seg.Dictionary(field)
		if err != nil {
			return sp, err
		}
		pl, err := dict.PostingsList(term, nil, nil)
		if err != nil {
			return sp, err
		}
		if n := int(pl.Count()); n > 0 {
			sp.lists[f] = pl
			sp.n += n
		}
	}
	return sp, nil
}

// decodeRaw reads the postings lists.
func decodeRaw(ctx context.Context, sp segPostings, st *index.SearchStats) (*rawTerm, error) {
	rt := &rawTerm{size: 64}
	for f, pl := range sp.lists {
		if pl == nil {
			continue
		}
		ps := make([]rawPosting, 0, pl.Count())
		it := pl.Iterator(true, true, false, nil)
		for {
			p, err := it.Next()
			if err != nil {
				return nil, err
			}
			if p == nil {
				break
			}
			if st.Decoded++; st.Decoded%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			freq, length := p.Frequency(), fieldLength(p.Norm())
			if freq > math.MaxUint32 || length > math.MaxUint32 {
				return nil, fmt.Errorf("decode postings: term frequency %d or field length %v out of range", freq, length)
			}
			ps = append(ps, rawPosting{doc: uint32(p.Number()), freq: uint32(freq), length: uint32(length)})
		}
		rt.fields[f] = ps
		rt.n += len(ps)
		rt.size += 12*cap(ps) + 24
	}
	return rt, nil
}

// segLayout is how a snapshot lays its segments out in doc numbers.
type segLayout struct {
	segs []*scorch.SegmentSnapshot
	// offsets[i] is the global doc number of segs[i]'s doc 0: the segments'
	// full sizes (deleted docs included) summed, as scorch's introducer
	// sets IndexSnapshot.offsets (unexported).
	offsets []uint64
	// deleted[i] is segs[i]'s deleted docs as a bit set (nil: none).
	deleted [][]uint64
}

func newSegLayout(snap *scorch.IndexSnapshot) segLayout {
	segs := snap.Segments()
	l := segLayout{segs: segs, offsets: make([]uint64, len(segs)), deleted: make([][]uint64, len(segs))}
	var running uint64
	for i, s := range segs {
		l.offsets[i] = running
		n := s.Segment().Count()
		running += n
		if d := s.Deleted(); d != nil && !d.IsEmpty() {
			bits := make([]uint64, n/64+1)
			it := d.Iterator()
			for it.HasNext() {
				x := it.Next()
				if uint64(x) < n {
					bits[x/64] |= 1 << (x % 64)
				}
			}
			l.deleted[i] = bits
		}
	}
	return l
}

// locate returns the index of the segment holding global doc number num and
// num's local doc number there, as IndexSnapshot does.
func (l *segLayout) locate(num uint64) (int, uint64) {
	i := sort.Search(len(l.offsets), func(i int) bool { return l.offsets[i] > num }) - 1
	return i, num - l.offsets[i]
}

// assemble builds the snapshot's termData from the term's raw postings in
// each of its segments (rts[i] in segs[i]): what readTermTFR reads through
// bleve's TermFieldReader, bit for bit. It returns the size in bytes.
func (l *segLayout) assemble(p Params, qt index.QueryTerm, rts []*rawTerm) (*termData, int) {
	td := &termData{}
	size := 64 + len(qt.Term)
	for f := range index.NumFields {
		if (f == gramField) != qt.Gram {
			continue
		}
		// Sized for every posting; trimmed to the live ones.
		n, last := 0, uint64(0)
		for i, rt := range rts {
			if ps := rt.fields[f]; len(ps) > 0 {
				n += len(ps)
				last = l.offsets[i] + uint64(ps[len(ps)-1].doc)
			}
		}
		if n == 0 {
			continue
		}
		docs, ptf, winMax := make([]uint32, n), make([]float64, n), make([]float64, last/window+1)
		// Doc numbers ascend: the current window's largest ptf is kept
		// in cw, cm and stored when the window changes (max is
		// associative and commutative, so winMax is as if updated by
		// each posting).
		k, cw, cm := 0, uint32(0), 0.0
		for i, rt := range rts {
			off, del := uint32(l.offsets[i]), l.deleted[i]
			for _, x := range rt.fields[f] {
				if del != nil && del[x.doc/64]&(1<<(x.doc%64)) != 0 {
					continue
				}
				v := p.pseudoTF(f, float64(x.freq), float64(x.length))
				num := off + x.doc
				docs[k], ptf[k] = num, v
				k++
				if w := num / window; w != cw {
					winMax[cw], cw, cm = cm, w, 0
				}
				cm = max(cm, v)
			}
		}
		winMax[cw] = cm
		if k == 0 {
			continue // every posting deleted: bleve's reader has none
		}
		fp := fieldPostings{f: f, docs: docs[:k], ptf: ptf[:k], winMax: winMax[:docs[k-1]/window+1]}
		size += 12*len(fp.docs) + 8*len(fp.winMax) + 96
		td.fields = append(td.fields, fp)
	}
	td.df = td.unionCount()
	return td, size
}

// unionCount is docFreq(nil), counted through a bit set of doc numbers
// when the term has postings in several fields and the set is no larger
// than the postings (merging the sorted lists costs several ns a posting).
func (td *termData) unionCount() int {
	if len(td.fields) < 2 {
		return td.docFreq(nil)
	}
	n, last := 0, uint32(0)
	for _, fp := range td.fields {
		n += len(fp.docs)
		last = max(last, fp.docs[len(fp.docs)-1])
	}
	words := int(last/64) + 1
	if words > n {
		return td.docFreq(nil)
	}
	set := make([]uint64, words)
	for _, fp := range td.fields {
		for _, d := range fp.docs {
			set[d/64] |= 1 << (d % 64)
		}
	}
	df := 0
	for _, w := range set {
		df += bits.OnesCount64(w)
	}
	return df
}

// readTerm returns a term's postings in the snapshot, assembled from the raw
// cache after decoding (and caching) the segments missing from it, when
// those have at most limit postings (deleted docs count); nil when they have
// more.
func (c *snapCache) readTerm(ctx context.Context, qt index.QueryTerm, limit int, st *index.SearchStats) (*termData, int, error) {
	key := termKey{qt.Term, qt.Gram}
	rts := make([]*rawTerm, len(c.layout.segs))
	if c.raw.lookup(c.layout.segs, key, rts) > 0 {
		type pending struct {
			i  int
			sp segPostings
		}
		var todo []pending
		total := 0
		for i, s := range c.layout.segs {
			if rts[i] != nil {
				continue
			}
			sp, err := openRaw(s.Segment(), qt)
			if err != nil {
				return nil, 0, err
			}
			total += sp.n
			todo = append(todo, pending{i, sp})
		}
		if total > limit {
			return nil, 0, nil
		}
		for _, pd := range todo {
			rt, err := decodeRaw(ctx, pd.sp, st)
			if err != nil {
				return nil, 0, err
			}
			c.raw.decodes.Add(1)
			rt.size += len(qt.Term)
			c.raw.put(c.layout.segs[pd.i].Id(), key, rt)
			rts[pd.i] = rt
		}
	}
	td, size := c.layout.assemble(c.p, qt, rts)
	return td, size, nil
}
