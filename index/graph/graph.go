// Package graph is a collection's outline and keyword graph, in memory:
// sections (heading paths) with their chunks and analysed headings, keyword
// nodes with their chunk edges. It answers the outline
// match (Outline) and keyword expansion (Expand) candidate sources.
//
// Its edges are stored in Badger with the documents they come from: each
// chunk reference in a document record carries the chunk's heading path,
// ordinal and keywords (the weighted chunk–keyword edges), written in the same
// transaction as the chunk, so the graph is exactly as crash-safe as the rest.
// The derived parts — keyword nodes with their document frequency, sections
// (outline containment) with their analysed headings — are built in memory from
// those records when the store opens (or read from the compact form a clean
// close saved: AppendBinary, Load) and kept up to date incrementally as each
// upsert or delete is applied: a write touches only its own document's nodes
// and edges, never a rebuild.
// Keyword–keyword co-occurrence is counted from a keyword's chunks when a
// search spreads from it, and cached until the graph changes.
package graph

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/internal/topk"
)

// Graph tuning.
const (
	// degree bounds the co-occurrence neighbours a seed keyword spreads
	// to (the strongest by PMI).
	degree = 8
	// decay is the share of a seed's activation that reaches a neighbour.
	decay = 0.5
	// outlineMinCover is the share of the query (by idf weight) a heading path
	// must match for its section to contribute chunks.
	outlineMinCover = 0.3
	// outlineSections is the number of best-matching sections that contribute.
	outlineSections = 10
	// chunksPerKeyword bounds the chunks one activated keyword reaches
	// (its strongest edges), so a common keyword costs no more than a rare one.
	chunksPerKeyword = 64
)

type gDoc struct {
	id     string
	meta   map[string]string
	chunks []*gChunk   // in document order
	secs   []*gSection // in the order of their first chunks
}

type gChunk struct {
	// version is the chunk's bleve id, id@hash; id is its prefix.
	id, version string
	// slot is the chunk's index in graph.slots, for dense per-search arrays.
	slot int32
	doc  *gDoc
	kws  []index.Keyword
	// kpos[i] is the chunk's index in the edges of keyword kws[i], so that
	// an edge is removed without a search.
	kpos []int32
	sec  *gSection // its heading path is the chunk's
}

// gSection is a leaf of the outline: the chunks under one heading path of one
// document.
type gSection struct {
	doc    *gDoc
	path   []string
	chunks []*gChunk // in document order
	// words are the analysed words of the document title and heading path,
	// each with the weight of the most specific level it occurs at.
	words []secWord
}

// secWord is one of a section's heading words, with its weight there.
type secWord struct {
	h *headWord
	w float64
}

// weight is the weight of heading word h in the section (0 if absent).
func (sec *gSection) weight(h *headWord) float64 {
	for i := range sec.words {
		if sec.words[i].h == h {
			return sec.words[i].w
		}
	}
	return 0
}

// headWord is an analysed heading word: how many sections have it, and those
// whose own heading does. Sections refer to it by pointer (a query looks each
// of its words up once): it lives while any section has the word.
type headWord struct {
	term  string
	nsecs int32      // sections whose title or heading path has the word
	leaf  sectionSet // those whose own (most specific) heading has it
}

type kwNode struct {
	term string
	// edges are the keyword's chunks with their weights, in no order (a
	// chunk's kpos says where it is): a list, not a map, to be compact and
	// quick to load.
	edges []edge
	// nbrs are its strongest co-occurring keywords, counted from its
	// chunks when a search asks (neighbours): kept as counts per pair, they
	// took most of the graph's memory and of its build at open.
	nbrs atomic.Pointer[versioned[nbr]]
	top  atomic.Pointer[versioned[edge]]
}

// versioned is a list derived from the graph, cached for one graph version.
type versioned[T any] struct {
	version uint64
	list    []T
}

type edge struct {
	c *gChunk
	w float64
}

type nbr struct {
	term string
	pmi  float64
}

// Graph is one collection's outline and keyword graph. It is safe for
// concurrent use: writes (Put) take its lock exclusively, searches shared.
type Graph struct {
	an *analysis.Analyzer
	// vocab returns the collection's lexicon in force (nil for none), with
	// which headings are analysed.
	vocab func() *analysis.Vocab

	mu      sync.RWMutex // guards everything below; a leaf lock
	version uint64
	docs    map[string]*gDoc
	chunks  map[string]*gChunk
	kws     map[string]*kwNode
	// nsections counts the sections (of all documents).
	nsections int
	// heads maps an analysed heading word to the sections it occurs in
	// (its weight in each is in the section's words).
	heads map[string]*headWord
	// slots numbers the chunks densely (nil: a free slot, listed in free).
	slots []*gChunk
	free  []int32

	// words caches the analysed words of heading and title strings: a
	// document's title heads every one of its sections, and sibling
	// documents share titles and headings (a law's articles, a course's
	// lessons).
	words wordCache
}

// wordCache maps strings to their analysed words under one lexicon, up to
// wordCacheSize of them (then it starts again). A leaf lock of its own:
// SectionTerms runs on several goroutines without the graph's lock.
type wordCache struct {
	mu    sync.Mutex
	vocab *analysis.Vocab
	m     map[string][]string
}

const wordCacheSize = 1 << 14

func (c *wordCache) get(an *analysis.Analyzer, v *analysis.Vocab, s string) []string {
	c.mu.Lock()
	if c.vocab != v || len(c.m) >= wordCacheSize {
		c.vocab, c.m = v, nil
	}
	ws, ok := c.m[s]
	c.mu.Unlock()
	if ok {
		return ws
	}
	toks := an.TokensIn(v, s)
	ws = make([]string, len(toks))
	for i := range toks {
		ws[i] = toks[i].Term
	}
	c.mu.Lock()
	if c.vocab == v {
		if c.m == nil {
			c.m = map[string][]string{}
		}
		c.m[s] = ws
	}
	c.mu.Unlock()
	return ws
}

// New returns an empty graph whose headings are analysed by an with the
// lexicon that vocab returns at the time (nil for none).
func New(an *analysis.Analyzer, vocab func() *analysis.Vocab) *Graph {
	return &Graph{an: an, vocab: vocab, docs: map[string]*gDoc{}, chunks: map[string]*gChunk{}, kws: map[string]*kwNode{},
		heads: map[string]*headWord{}}
}

// Reserve makes room for about docs documents and chunks chunks, so that a
// load from the store does not grow the maps step by step.
func (g *Graph) Reserve(docs, chunks int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.docs) > 0 || docs <= 0 {
		return
	}
	// The counts come from the store's statistics: bounded, so that a
	// wrong count costs growth, not an allocation it cannot make.
	const most = 1 << 23
	docs, chunks = min(docs, most), min(max(chunks, docs), most)
	g.docs = make(map[string]*gDoc, docs)
	g.chunks = make(map[string]*gChunk, chunks)
	g.slots = make([]*gChunk, 0, chunks)
}

// Heading levels: a word in the most specific heading says the most.
const (
	levelLeaf     = 1.0
	levelAncestor = 0.6
	levelTitle    = 0.5
)

func sectionKey(docID string, path []string) string {
	return docID + "\x1f" + strings.Join(path, "\x1f")
}

// compareKey compares the sections' keys (sectionKey: the document id and
// the path elements joined by \x1f; an empty path still adds one \x1f)
// without building them.
func (sec *gSection) compareKey(o *gSection) int {
	return compareJoined(sec.keyPieces(), o.keyPieces(), sec.keyPiece, o.keyPiece)
}

func (sec *gSection) keyPieces() int { return 1 + max(len(sec.path), 1) }

func (sec *gSection) keyPiece(i int) string {
	if i == 0 {
		return sec.doc.id
	}
	if len(sec.path) == 0 {
		return ""
	}
	return sec.path[i-1]
}

// compareJoined compares the join by \x1f of na pieces a(i) with that of nb
// pieces b(i), as strings.Compare would.
func compareJoined(na, nb int, a, b func(int) string) int {
	for i := 0; ; i++ {
		if i == na || i == nb {
			return cmp.Compare(na-i, nb-i) // the one that goes on is greater
		}
		x, y := a(i), b(i)
		if x == y {
			continue
		}
		m := 0
		for m < len(x) && m < len(y) && x[m] == y[m] {
			m++
		}
		// The first byte where the joins differ: a piece's own, or the
		// separator (or the end) after the shorter one.
		next := func(p string, last bool) int {
			switch {
			case m < len(p):
				return int(p[m])
			case last:
				return -1
			}
			return 0x1f
		}
		if c := cmp.Compare(next(x, i == na-1), next(y, i == nb-1)); c != 0 {
			return c
		}
		// A piece holds a \x1f itself: the pieces no longer line up.
		return strings.Compare(join(na, a), join(nb, b))
	}
}

func join(n int, piece func(int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		b.WriteString(piece(i))
	}
	return b.String()
}

// allSections yields every section, document by document.
func (g *Graph) allSections() func(yield func(*gSection) bool) {
	return func(yield func(*gSection) bool) {
		for _, d := range g.docs {
			for _, sec := range d.secs {
				if !yield(sec) {
					return
				}
			}
		}
	}
}

// Put replaces a document's part of the graph (d == nil removes it). The
// chunks' Keywords, set when the store analyses them, are their edges.
func (g *Graph) Put(docID string, d *index.Document) {
	g.PutAnalysed(docID, d, g.SectionTerms(d))
}

// SectionTerms are the analysed heading words of a document's sections, with
// their weights, keyed by section: what PutAnalysed links.
type SectionTerms map[string]map[string]float64

// SectionTerms analyses the headings of d's sections, for PutAnalysed; it
// takes no lock, so loaders call it on several goroutines.
func (g *Graph) SectionTerms(d *index.Document) SectionTerms {
	if d == nil {
		return nil
	}
	secTerms := SectionTerms{}
	for i := range d.Chunks {
		key := sectionKey(d.ID, d.Chunks[i].HeadingPath)
		if _, ok := secTerms[key]; !ok {
			secTerms[key] = g.headingTerms(d.Title, d.Chunks[i].HeadingPath)
		}
	}
	return secTerms
}

// PutAnalysed is Put with d's headings already analysed (SectionTerms(d)).
func (g *Graph) PutAnalysed(docID string, d *index.Document, secTerms SectionTerms) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	if old := g.docs[docID]; old != nil {
		for _, c := range old.chunks {
			g.unlinkChunk(c)
		}
		delete(g.docs, docID)
	}
	if d == nil {
		return
	}
	gd := &gDoc{id: d.ID, meta: d.Metadata}
	g.docs[d.ID] = gd
	secs := map[string]*gSection{} // the document's, by key
	for i := range d.Chunks {
		ch := &d.Chunks[i]
		version := index.ChunkVersion(ch)
		c := &gChunk{id: version[:len(ch.ID)], version: version, doc: gd, kws: ch.Keywords}
		gd.chunks = append(gd.chunks, c)
		g.linkChunk(c, ch.HeadingPath, secTerms, secs)
	}
}

func (g *Graph) headingTerms(title string, path []string) map[string]float64 {
	terms := map[string]float64{}
	v := g.vocab()
	add := func(s string, w float64) {
		for _, t := range g.words.get(g.an, v, s) {
			terms[t] = max(terms[t], w)
		}
	}
	add(title, levelTitle)
	for i, p := range path {
		if i == len(path)-1 {
			add(p, levelLeaf)
		} else {
			add(p, levelAncestor)
		}
	}
	return terms
}

// linkChunk links a new chunk of a document being put into the graph; secs
// are the document's sections linked so far, by key.
func (g *Graph) linkChunk(c *gChunk, path []string, secTerms SectionTerms, secs map[string]*gSection) {
	g.chunks[c.id] = c
	if n := len(g.free); n > 0 {
		c.slot, g.free = g.free[n-1], g.free[:n-1]
	} else {
		c.slot = int32(len(g.slots))
		g.slots = append(g.slots, nil)
	}
	g.slots[c.slot] = c
	key := sectionKey(c.doc.id, path)
	sec := secs[key]
	if sec == nil {
		terms := secTerms[key]
		sec = &gSection{doc: c.doc, path: path, words: make([]secWord, 0, len(terms))}
		secs[key] = sec
		c.doc.secs = append(c.doc.secs, sec)
		g.nsections++
		for t, w := range terms {
			h := g.heads[t]
			if h == nil {
				h = &headWord{term: t}
				g.heads[t] = h
			}
			h.nsecs++
			if w == levelLeaf {
				if h.leaf == nil {
					h.leaf = sectionSet{}
				}
				h.leaf[sec] = struct{}{}
			}
			sec.words = append(sec.words, secWord{h, w})
		}
	}
	sec.chunks = append(sec.chunks, c)
	c.sec = sec
	// The edges are kept for the chunk's life: in a list of their own size,
	// each term the keyword node's (a document decoded from its record holds
	// its own copies, and room to grow). A keyword listed twice (the
	// analyser lists each once) keeps its first weight.
	kws := make([]index.Keyword, 0, len(c.kws))
	for _, k := range c.kws {
		if !slices.ContainsFunc(kws, func(o index.Keyword) bool { return o.Term == k.Term }) {
			kws = append(kws, k)
		}
	}
	c.kws, c.kpos = kws, make([]int32, len(kws))
	for i, k := range c.kws {
		n := g.kws[k.Term]
		if n == nil {
			n = &kwNode{term: strings.Clone(k.Term)}
			g.kws[n.term] = n
		}
		c.kws[i].Term = n.term
		c.kpos[i] = int32(len(n.edges))
		n.edges = append(n.edges, edge{c, k.Weight})
	}
}

// removeEdge removes a keyword's edge at index p, moving its last edge there.
func (n *kwNode) removeEdge(p int32) {
	last := len(n.edges) - 1
	if moved := n.edges[last]; int(p) != last {
		n.edges[p] = moved
		for j := range moved.c.kws {
			if moved.c.kws[j].Term == n.term {
				moved.c.kpos[j] = p
				break
			}
		}
	}
	n.edges[last] = edge{}
	n.edges = n.edges[:last]
}

// sectionSet is a set of sections.
type sectionSet map[*gSection]struct{}

func (g *Graph) unlinkChunk(c *gChunk) {
	delete(g.chunks, c.id)
	g.slots[c.slot] = nil
	g.free = append(g.free, c.slot)
	if sec := c.sec; sec != nil {
		sec.chunks = slices.DeleteFunc(sec.chunks, func(x *gChunk) bool { return x == c })
		if len(sec.chunks) == 0 {
			g.nsections--
			sec.doc.secs = slices.DeleteFunc(sec.doc.secs, func(x *gSection) bool { return x == sec })
			for _, sw := range sec.words {
				h := sw.h
				h.nsecs--
				delete(h.leaf, sec)
				if h.nsecs == 0 {
					delete(g.heads, h.term)
				}
			}
		}
	}
	for i, k := range c.kws {
		if n := g.kws[k.Term]; n != nil {
			n.removeEdge(c.kpos[i])
			if len(n.edges) == 0 {
				delete(g.kws, n.term)
			}
		}
	}
}

// passes reports whether a chunk passes a filter.
func (c *gChunk) passes(f *index.Filter) bool {
	if len(f.DocIDs) > 0 && !slices.Contains(f.DocIDs, c.doc.id) {
		return false
	}
	for k, v := range f.Metadata {
		if c.doc.meta[k] != v {
			return false
		}
	}
	if len(f.HeadingPrefix) > 0 {
		if len(c.sec.path) < len(f.HeadingPrefix) {
			return false
		}
		for i, p := range f.HeadingPrefix {
			if !strings.EqualFold(strings.TrimSpace(c.sec.path[i]), strings.TrimSpace(p)) {
				return false
			}
		}
	}
	return true
}

func (c *gChunk) hit(score float64, matched, via []string) index.Hit {
	return index.Hit{ChunkID: c.id, Score: score, Matched: matched, Via: via, ChunkVersion: c.version}
}

// Outline finds the sections whose title and heading path match the query and
// returns their chunks, the best sections first and a section's chunks in
// document order with a gentle decay. A section must match outlineMinCover of
// the query's idf-weighted words, at least one of them in its own (most
// specific) heading: a match on the document title or a chapter heading alone
// says little about which section answers.
func (g *Graph) Outline(terms []index.QueryTerm, f *index.Filter, k int) []index.Hit {
	g.mu.RLock()
	defer g.mu.RUnlock()
	S := float64(g.nsections)
	if S == 0 {
		return nil
	}
	// Only sections with a query word in their own heading can match, so
	// they are the candidates; each is then scored over all query words, in
	// query order (deterministic sums).
	weights := make([]float64, len(terms))
	heads := make([]*headWord, len(terms))
	var total float64
	cands := make(map[*gSection]struct{}, 64)
	for i, qt := range terms {
		if qt.Gram {
			continue
		}
		h := g.heads[qt.Term]
		df := 0.0
		if h != nil {
			df = float64(h.nsecs)
			heads[i] = h
			for sec := range h.leaf {
				cands[sec] = struct{}{}
			}
		}
		weights[i] = qt.Weight * math.Log(1+(S-df+0.5)/(df+0.5))
		total += weights[i]
	}
	if total == 0 || len(cands) == 0 {
		return nil
	}
	type ranked struct {
		sec   *gSection
		score float64
	}
	secs := make([]ranked, 0, len(cands))
	filtered := !f.IsZero()
	// The words that can add to a score (adding 0 changes no sum): those
	// in some heading.
	scoring := make([]int, 0, len(terms))
	for i := range terms {
		if heads[i] != nil && weights[i] != 0 {
			scoring = append(scoring, i)
		}
	}
	for sec := range cands {
		score := 0.0
		for _, i := range scoring {
			if lw := sec.weight(heads[i]); lw > 0 {
				score += weights[i] * lw
			}
		}
		if score/total < outlineMinCover {
			continue
		}
		// A section none of whose chunks pass the filter does not count
		// among the outlineSections.
		if filtered && !slices.ContainsFunc(sec.chunks, func(c *gChunk) bool { return c.passes(f) }) {
			continue
		}
		secs = append(secs, ranked{sec, score})
	}
	best := topk.Best(len(secs), outlineSections, func(i int) float64 { return secs[i].score }, func(a, b int32) int {
		if c := cmp.Compare(secs[b].score, secs[a].score); c != 0 {
			return c
		}
		return secs[a].sec.compareKey(secs[b].sec)
	}, nil)
	var out []index.Hit
	for _, j := range best {
		if len(out) >= k {
			break
		}
		s := secs[j]
		var matched []string
		for i, qt := range terms {
			if heads[i] != nil && s.sec.weight(heads[i]) > 0 {
				matched = append(matched, qt.Term)
			}
		}
		i := 0
		for _, c := range s.sec.chunks {
			if !c.passes(f) {
				continue
			}
			out = append(out, c.hit(s.score/total/(1+0.2*float64(i)), matched, s.sec.path))
			i++
		}
	}
	sortHits(out)
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// activation is a keyword's share of the spreading activation and the
// keyword path that brought most of it.
type activation struct {
	a   float64
	via []string
	// seed is true for the query's own words.
	seed bool
}

// activate spreads activation from the query's words that are keywords (seeds:
// query weight × keyword idf) to each seed's degree strongest
// co-occurring keywords (× decay × PMI relative to the seed's best). It
// returns the activations and the activated keywords in a fixed order, so
// sums over them are deterministic. Called with g.mu read-locked.
func (g *Graph) activate(terms []index.QueryTerm) (map[string]*activation, []string) {
	N := float64(len(g.chunks))
	if N == 0 {
		return nil, nil
	}
	acts := map[string]*activation{}
	var order []string
	for _, qt := range terms {
		if qt.Gram {
			continue
		}
		n := g.kws[qt.Term]
		if n == nil {
			continue
		}
		if _, ok := acts[qt.Term]; ok {
			continue
		}
		df := float64(len(n.edges))
		acts[qt.Term] = &activation{a: qt.Weight * math.Log(1+(N-df+0.5)/(df+0.5)), via: []string{qt.Term}, seed: true}
		order = append(order, qt.Term)
	}
	seeds := len(order)
	for _, s := range order[:seeds] {
		sa := acts[s].a
		nbrs := g.neighbours(s)
		if len(nbrs) == 0 {
			continue
		}
		top := nbrs[0].pmi
		for _, nb := range nbrs {
			a := acts[nb.term]
			if a != nil && a.seed {
				continue
			}
			add := sa * decay * nb.pmi / top
			if a == nil {
				a = &activation{}
				acts[nb.term] = a
				order = append(order, nb.term)
			}
			if add > a.a { // keep the strongest path; sum the activation
				a.via = []string{s, nb.term}
			}
			a.a += add
		}
	}
	return acts, order
}

// Expand scores chunks by the activation (see activate) of their keywords ×
// edge weight, over each keyword's chunksPerKeyword strongest edges. Via
// is the keyword path that contributed most: [seed] or [seed, neighbour].
func (g *Graph) Expand(terms []index.QueryTerm, f *index.Filter, k int) []index.Hit {
	g.mu.RLock()
	defer g.mu.RUnlock()
	acts, order := g.activate(terms)
	if len(order) == 0 {
		return nil
	}
	type cs struct {
		c     *gChunk
		score float64
		best  float64
		via   []string
	}
	// at[slot] is 1 + the chunk's index in scores (0: not reached yet).
	atp := slotScratch.Get().(*[]int32)
	if cap(*atp) < len(g.slots) {
		*atp = make([]int32, len(g.slots))
	}
	*atp = (*atp)[:len(g.slots)]
	at := *atp
	scores := make([]cs, 0, 4*chunksPerKeyword)
	for _, term := range order {
		a := acts[term]
		for _, e := range g.strongest(term) {
			v := a.a * e.w
			i := at[e.c.slot] - 1
			if i < 0 {
				i = int32(len(scores))
				at[e.c.slot] = i + 1
				scores = append(scores, cs{c: e.c})
			}
			s := &scores[i]
			s.score += v
			if v > s.best {
				s.best, s.via = v, a.via
			}
		}
	}
	for _, s := range scores {
		at[s.c.slot] = 0
	}
	slotScratch.Put(atp)
	ranked := scores[:0]
	for _, s := range scores {
		if s.c.passes(f) {
			ranked = append(ranked, s)
		}
	}
	best := topk.Best(len(ranked), k, func(i int) float64 { return ranked[i].score }, func(a, b int32) int {
		if c := cmp.Compare(ranked[b].score, ranked[a].score); c != 0 {
			return c
		}
		return cmp.Compare(ranked[a].c.id, ranked[b].c.id)
	}, nil)
	out := make([]index.Hit, len(best))
	for i, j := range best {
		r := &ranked[j]
		var matched []string
		if len(r.via) == 1 {
			matched = r.via // a query word that is one of the chunk's keywords
		}
		out[i] = r.c.hit(r.score, matched, r.via)
	}
	return out
}

// slotScratch holds zeroed []int32 indexed by chunk slot, for expand.
var slotScratch = sync.Pool{New: func() any { return new([]int32) }}

// strongest returns a keyword's chunksPerKeyword strongest edges, by
// weight then chunk id, cached until the graph changes. Called with g.mu
// read-locked.
func (g *Graph) strongest(term string) []edge {
	n := g.kws[term]
	if l := n.top.Load(); l != nil && l.version == g.version {
		return l.list
	}
	list := slices.Clone(n.edges)
	slices.SortFunc(list, func(a, b edge) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.c.id, b.c.id)
	})
	if len(list) > chunksPerKeyword {
		list = slices.Clip(list[:chunksPerKeyword])
	}
	n.top.Store(&versioned[edge]{version: g.version, list: list})
	return list
}

// neighbours returns a keyword's strongest co-occurring keywords by PMI (those
// seen together in at least two chunks, or one in a small collection), cached
// until the graph changes. Called with g.mu read-locked.
func (g *Graph) neighbours(term string) []nbr {
	n := g.kws[term]
	if l := n.nbrs.Load(); l != nil && l.version == g.version {
		return l.list
	}
	N := float64(len(g.chunks))
	minCo := int32(2)
	if N < 200 {
		minCo = 1
	}
	dfA := float64(len(n.edges))
	co := map[*kwNode]int32{} // chunks shared with each other keyword
	for _, e := range n.edges {
		for _, k := range e.c.kws {
			if o := g.kws[k.Term]; o != n && o != nil {
				co[o]++
			}
		}
	}
	var list []nbr
	for on, c := range co {
		if c < minCo {
			continue
		}
		pmi := math.Log(float64(c) * N / (dfA * float64(len(on.edges))))
		if pmi > 0 {
			list = append(list, nbr{on.term, pmi})
		}
	}
	slices.SortFunc(list, func(a, b nbr) int {
		if c := cmp.Compare(b.pmi, a.pmi); c != 0 {
			return c
		}
		return cmp.Compare(a.term, b.term)
	})
	if len(list) > degree {
		list = list[:degree]
	}
	n.nbrs.Store(&versioned[nbr]{version: g.version, list: list})
	return list
}

func sortHits(h []index.Hit) {
	slices.SortFunc(h, func(a, b index.Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ChunkID, b.ChunkID)
	})
}

// Canonical renders the graph as sorted text: keyword nodes with their edges,
// sections with their chunks, and the heading index.
// Two graphs are equal when their renderings are.
func (g *Graph) Canonical() string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var lines []string
	for term, n := range g.kws {
		var edges []string
		for _, e := range n.edges {
			edges = append(edges, fmt.Sprintf("%s=%.3f", e.c.id, e.w))
		}
		slices.Sort(edges)
		lines = append(lines, fmt.Sprintf("kw %s df=%d edges=%v", term, len(n.edges), edges))
	}
	headSecs := map[*headWord][]string{}
	for sec := range g.allSections() {
		key := sectionKey(sec.doc.id, sec.path)
		var ids []string
		for _, ch := range sec.chunks {
			ids = append(ids, ch.id)
		}
		lines = append(lines, fmt.Sprintf("sec %q %v", key, ids))
		for _, sw := range sec.words {
			_, leaf := sw.h.leaf[sec]
			headSecs[sw.h] = append(headSecs[sw.h], fmt.Sprintf("%q=%.1f/%v", key, sw.w, leaf))
		}
	}
	for term, h := range g.heads {
		keys := headSecs[h]
		slices.Sort(keys)
		lines = append(lines, fmt.Sprintf("head %s n=%d leaf=%d %v %v", term, h.nsecs, len(h.leaf), h.term == term, keys))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Known returns the hits whose chunks are in the graph and pass f, in order,
// each with its chunk version (for the chunk cache), at most k.
func (g *Graph) Known(hits []index.Hit, f *index.Filter, k int) []index.Hit {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]index.Hit, 0, min(len(hits), k))
	for _, h := range hits {
		c := g.chunks[h.ChunkID]
		if c == nil || !c.passes(f) {
			continue
		}
		h.ChunkVersion = c.version
		out = append(out, h)
		if len(out) == k {
			break
		}
	}
	return out
}
