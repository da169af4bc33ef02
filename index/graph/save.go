package graph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
)

// AppendBinary appends the graph to b in the compact form Load reads: keyword
// terms with their document frequency, heading words, then each document with
// its sections (heading path and weighted heading words, by index) and its
// chunks (version, section and weighted keywords, by index). What a load would
// otherwise recompute — the documents' records decoded again and their headings
// analysed again — is stored as it is; the maps are rebuilt from it.
func (g *Graph) AppendBinary(b []byte) []byte {
	g.mu.RLock()
	defer g.mu.RUnlock()
	kwIdx := make(map[*kwNode]uint64, len(g.kws))
	b = binary.AppendUvarint(b, uint64(len(g.kws)))
	for _, n := range g.kws {
		kwIdx[n] = uint64(len(kwIdx))
		b = appendString(b, n.term)
		b = binary.AppendUvarint(b, uint64(len(n.edges)))
	}
	headIdx := make(map[*headWord]uint64, len(g.heads))
	b = binary.AppendUvarint(b, uint64(len(g.heads)))
	for _, h := range g.heads {
		headIdx[h] = uint64(len(headIdx))
		b = appendString(b, h.term)
	}
	b = binary.AppendUvarint(b, uint64(len(g.docs)))
	b = binary.AppendUvarint(b, uint64(len(g.chunks)))
	secIdx := map[*gSection]uint64{}
	for _, d := range g.docs {
		b = appendString(b, d.id)
		b = binary.AppendUvarint(b, uint64(len(d.meta)))
		for k, v := range d.meta {
			b = appendString(b, k)
			b = appendString(b, v)
		}
		clear(secIdx)
		for i, sec := range d.secs {
			secIdx[sec] = uint64(i)
		}
		b = binary.AppendUvarint(b, uint64(len(d.secs)))
		for _, sec := range d.secs {
			b = binary.AppendUvarint(b, uint64(len(sec.path)))
			for _, p := range sec.path {
				b = appendString(b, p)
			}
			b = binary.AppendUvarint(b, uint64(len(sec.words)))
			for _, sw := range sec.words {
				b = binary.AppendUvarint(b, headIdx[sw.h])
				b = appendWeight(b, sw.w)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(d.chunks)))
		for _, c := range d.chunks {
			b = appendString(b, c.version)
			b = binary.AppendUvarint(b, uint64(len(c.id)))
			b = binary.AppendUvarint(b, secIdx[c.sec])
			b = binary.AppendUvarint(b, uint64(len(c.kws)))
			for _, k := range c.kws {
				b = binary.AppendUvarint(b, kwIdx[g.kws[k.Term]])
				b = appendWeight(b, k.Weight)
			}
		}
	}
	return b
}

// appendWeight appends a weight: a whole number of thousandths (as the
// analyser rounds keyword weights) as twice that number, else 1 and its
// 8 bytes.
func appendWeight(b []byte, w float64) []byte {
	if k := math.Round(w * 1000); k >= 0 && k < 1<<30 && k/1000 == w {
		return binary.AppendUvarint(b, 2*uint64(k))
	}
	b = binary.AppendUvarint(b, 1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(w))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errSaved is wrapped by every error of Load: the saved form does not hold a
// consistent graph.
var errSaved = errors.New("saved graph is inconsistent")

// idBatchDocs is how many documents Load hands at a time to the goroutine that
// fills the maps by id and the keywords' edge lists.
const idBatchDocs = 4096

// Load fills an empty graph from b, written by AppendBinary, and keeps b: its
// strings are cut from it, so the caller must never change b afterwards. A b that does not
// hold a consistent graph (cut short, counts that do not add up, an index out of
// range, a chunk twice) is an error and leaves the graph empty; a b that does
// is loaded as it was saved, which the caller vouches for (the store checks a
// checksum, its log position and the analyzer it was analysed with).
func (g *Graph) Load(b []byte) (err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.docs) > 0 {
		return errors.New("load graph: the graph is not empty")
	}
	defer func() {
		if err != nil {
			g.docs, g.chunks, g.kws = map[string]*gDoc{}, map[string]*gChunk{}, map[string]*kwNode{}
			g.nsections, g.heads, g.slots, g.free = 0, map[string]*headWord{}, nil, nil
		}
	}()
	// The graph's parts are carved from a few large allocations (slabs)
	// rather than allocated one by one, and its strings are cut from b
	// (not copied: b is the graph's from now on; a copy would double a
	// large load's peak): a load makes a few hundred allocations, not millions. A
	// part that a later write removes stays in its slab until the slab's
	// every part is gone (at most the size of the load).
	r := &reader{b: b, s: unsafe.String(unsafe.SliceData(b), len(b))}
	nodes := make([]kwNode, r.count(2))
	dfs := make([]int, len(nodes))
	var nedges int
	for i := range nodes {
		nodes[i].term = r.string()
		dfs[i] = r.count(1)
		nedges += dfs[i]
	}
	heads := make([]headWord, r.count(1))
	for i := range heads {
		heads[i].term = r.string()
	}
	ndocs, nchunks := r.count(2), r.count(1)
	if r.err != nil {
		return r.err
	}
	if nedges > len(r.b) {
		r.fail("%d keyword edges do not fit in the %d bytes left", nedges, len(r.b))
		return r.err
	}
	edges := make([]edge, nedges)
	for i := range nodes {
		nodes[i].edges, edges = edges[:0:dfs[i]], edges[dfs[i]:]
	}
	g.docs = make(map[string]*gDoc, ndocs)
	g.chunks = make(map[string]*gChunk, nchunks)
	g.slots = make([]*gChunk, 0, nchunks)
	docs := make([]gDoc, ndocs)
	chunks := make([]gChunk, nchunks)
	chunkPtrs := make([]*gChunk, 2*nchunks) // documents' and sections' lists
	kws := make([]index.Keyword, nedges)
	kpos := make([]int32, nedges)
	var sections slab[gSection]
	var secPtrs slab[*gSection]
	var words slab[secWord]
	var paths slab[string]
	var secs []*gSection
	var secOf, secLen []int // per chunk of a document, per section
	var nread int           // chunks read
	var seen []int          // a chunk's keywords, by index
	// The maps by id and the keywords' edge lists are filled on another
	// goroutine while the decoding goes on, a batch of documents (and their
	// chunks) at a time, in order: on a million chunks they were a third of
	// the load, after it.
	type idBatch struct {
		docs   []gDoc
		chunks []gChunk
	}
	batches := make(chan idBatch, 64)
	mapped := make(chan struct{})
	go func() {
		defer close(mapped)
		for b := range batches {
			for i := range b.docs {
				g.docs[b.docs[i].id] = &b.docs[i]
			}
			for i := range b.chunks {
				c := &b.chunks[i]
				g.chunks[c.id] = c
				// The decoding left each keyword's index in kpos.
				for j, ni := range c.kpos {
					n := &nodes[ni]
					c.kpos[j] = int32(len(n.edges))
					n.edges = append(n.edges, edge{c, c.kws[j].Weight})
				}
			}
		}
	}()
	sentDocs, sentChunks := 0, 0
	send := func(di int) {
		batches <- idBatch{docs[sentDocs:di], chunks[sentChunks:nread]}
		sentDocs, sentChunks = di, nread
	}
	stop := sync.OnceFunc(func() {
		close(batches)
		<-mapped
	})
	defer stop() // an error returns before the end
	for di := range ndocs {
		if di-sentDocs == idBatchDocs {
			send(di)
		}
		d := &docs[di]
		d.id = r.string()
		if nm := r.count(2); nm > 0 {
			d.meta = make(map[string]string, nm)
			for range nm {
				k := r.string()
				d.meta[k] = r.string()
			}
		}
		secs = secs[:0]
		nsec := r.count(2)
		d.secs = secPtrs.take(nsec)
		for si := range nsec {
			path := paths.take(r.count(1))
			for i := range path {
				path[i] = r.string()
			}
			sec := &sections.take(1)[0]
			sec.doc, sec.path, sec.words = d, path, words.take(r.count(2))
			d.secs[si] = sec
			g.nsections++
			secs = append(secs, sec)
			for i := range sec.words {
				hi, w, ok := r.weighted(len(heads))
				if !ok {
					return r.err
				}
				h := &heads[hi]
				if h.nsecs == 0 {
					g.heads[h.term] = h
				}
				h.nsecs++
				if w == levelLeaf {
					if h.leaf == nil {
						h.leaf = sectionSet{}
					}
					h.leaf[sec] = struct{}{}
				}
				sec.words[i] = secWord{h, w}
			}
		}
		nc := r.count(3)
		if nread+nc > nchunks {
			r.fail("more chunks than its header says (%d)", nchunks)
			return r.err
		}
		d.chunks, chunkPtrs = chunkPtrs[:nc:nc], chunkPtrs[nc:]
		secOf, secLen = secOf[:0], append(secLen[:0], make([]int, len(secs))...)
		for i := range d.chunks {
			version := r.string()
			idLen, _ := r.index(len(version) + 1)
			si, ok := r.index(len(secs))
			nk := r.count(2)
			if !ok {
				return r.err
			}
			if nk > len(kws) {
				r.fail("more keyword edges than its header says (%d)", nedges)
				return r.err
			}
			c := &chunks[nread]
			nread++
			c.id, c.version, c.doc, c.sec = version[:idLen], version, d, secs[si]
			c.kws, kws = kws[:nk:nk], kws[nk:]
			c.kpos, kpos = kpos[:nk:nk], kpos[nk:]
			secOf = append(secOf, si)
			secLen[si]++
			c.slot = int32(len(g.slots))
			g.slots = append(g.slots, c)
			d.chunks[i] = c
			seen = seen[:0]
			for j := range c.kws {
				ni, w, ok := r.weighted(len(nodes))
				if !ok {
					return r.err
				}
				n := &nodes[ni]
				if slices.Contains(seen, ni) {
					r.fail("chunk %q has keyword %q twice", c.id, n.term)
					return r.err
				}
				seen = append(seen, ni)
				c.kws[j] = index.Keyword{Term: n.term, Weight: w}
				c.kpos[j] = int32(ni) // the keyword's edge is added with the maps
			}
		}
		for si, sec := range secs {
			sec.chunks, chunkPtrs = chunkPtrs[:0:secLen[si]], chunkPtrs[secLen[si]:]
		}
		for i, c := range d.chunks {
			secs[secOf[i]].chunks = append(secs[secOf[i]].chunks, c)
		}
		if r.err != nil {
			return r.err
		}
	}
	if len(r.b) > 0 {
		r.fail("%d bytes after the last document", len(r.b))
	}
	send(ndocs)
	stop()
	switch {
	case len(g.docs) != ndocs:
		r.fail("a document twice")
	case len(g.chunks) != nread:
		r.fail("a chunk twice")
	case nread != nchunks:
		r.fail("%d chunks, where its header says %d", nread, nchunks)
	}
	for i := range nodes {
		n := &nodes[i]
		if len(n.edges) != dfs[i] || dfs[i] == 0 {
			r.fail("keyword %q has %d chunks, where its header says %d", n.term, len(n.edges), dfs[i])
			break
		}
		g.kws[n.term] = n
	}
	if len(g.kws) != len(nodes) {
		r.fail("a keyword twice")
	}
	for sec := range g.allSections() {
		if len(sec.chunks) == 0 {
			r.fail("a section of document %q has no chunks", sec.doc.id)
			break
		}
	}
	for i := range heads {
		if h := &heads[i]; h.nsecs == 0 {
			r.fail("heading word %q is in no section", h.term)
			break
		}
	}
	if len(g.heads) != len(heads) {
		r.fail("a heading word twice")
	}
	g.version++
	return r.err
}

// reader reads AppendBinary's encoding; its first error sticks, and every
// read after it returns zero values.
type reader struct {
	b []byte
	// s is the whole of what b was at first, as a string, which strings
	// are cut from.
	s   string
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errSaved}, a...)...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("cut short or overwritten")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items that take at least min bytes each, so that a
// damaged count cannot ask for more memory than the rest of b could fill.
func (r *reader) count(min int) int {
	v := r.uvarint()
	if v > uint64(len(r.b)/min) {
		r.fail("a count of %d does not fit in the %d bytes left", v, len(r.b))
		return 0
	}
	return int(v)
}

// index reads an index below n; ok is false after an error.
func (r *reader) index(n int) (i int, ok bool) {
	v := r.uvarint()
	if r.err == nil && v >= uint64(n) {
		r.fail("index %d out of range (%d)", v, n)
	}
	return int(v), r.err == nil
}

func (r *reader) string() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	off := len(r.s) - len(r.b)
	s := r.s[off : off+n]
	r.b = r.b[n:]
	return s
}

// weighted reads an index below n and its weight (a heading word's in a
// section, a keyword's in a chunk); ok is false after an error.
func (r *reader) weighted(n int) (i int, w float64, ok bool) {
	i, _ = r.index(n)
	w = r.float()
	return i, w, r.err == nil
}

// float reads a weight written by appendWeight.
func (r *reader) float() float64 {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if v&1 == 0 {
		return float64(v/2) / 1000
	}
	if len(r.b) < 8 {
		r.fail("cut short")
		return 0
	}
	w := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return w
}

// Size returns the number of documents and chunks in the graph.
func (g *Graph) Size() (docs, chunks int) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.docs), len(g.chunks)
}

// Bind sets the analyzer and the lexicon function (see New) of a graph made
// by New(nil, nil) and loaded before they were known. Call it before the
// graph is shared.
func (g *Graph) Bind(an *analysis.Analyzer, vocab func() *analysis.Vocab) { g.an, g.vocab = an, vocab }

// slab hands out slices of T carved from larger allocations.
type slab[T any] struct{ buf []T }

// take returns n zero Ts, capped at n.
func (s *slab[T]) take(n int) []T {
	if len(s.buf) < n {
		s.buf = make([]T, max(n, 1<<12))
	}
	out := s.buf[:n:n]
	s.buf = s.buf[n:]
	return out
}
