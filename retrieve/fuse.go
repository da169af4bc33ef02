package retrieve

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/topk"
)

// Mode chooses the candidate sources of a search.
type Mode int

// Modes. The zero value is ModeFused.
const (
	// ModeFused fuses BM25, outline match and graph expansion.
	ModeFused Mode = iota
	// ModeBM25 ranks by BM25F (with document evidence) alone.
	ModeBM25
	// ModeOutline ranks the chunks of the sections whose heading paths match.
	ModeOutline
	// ModeGraph ranks the chunks reached through the keyword graph.
	ModeGraph
)

var modeNames = []string{"fused", "bm25", "outline", "graph"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses a mode name: fused, bm25, outline or graph.
func ParseMode(s string) (Mode, error) {
	if i := slices.Index(modeNames, strings.ToLower(strings.TrimSpace(s))); i >= 0 {
		return Mode(i), nil
	}
	return 0, fmt.Errorf("%w: mode %q: want one of %s", ErrInvalid, s, strings.Join(modeNames, ", "))
}

// StageFuse is the name of the fusion step in Debug.Stages (the sources'
// steps are named like the sources).
const StageFuse = "fuse"

// Source names, as reported in evidence.
const (
	SourceBM25    = "bm25"
	SourceOutline = "outline"
	SourceGraph   = "graph"
	// SourceLearned is the chunks that labelled questions like the query
	// name (learned pairs, see index/learn).
	SourceLearned = "learned"
)

// Evidence says how a hit was found.
type Evidence struct {
	// Sources that found the hit, among bm25, outline, graph and learned.
	Sources []string
	// FusedRank is the hit's 1-based rank after fusion (before any rerank);
	// BM25Rank, OutlineRank and GraphRank its rank in each source's list (0:
	// not in that list).
	FusedRank, BM25Rank, OutlineRank, GraphRank, LearnedRank int
	// BM25, Outline, Graph and Learned are the source scores (0: not found
	// by it).
	BM25, Outline, Graph, Learned float64
	// OutlinePath is the heading path of the section the outline matched.
	OutlinePath []string
	// GraphPath is the keyword path through the graph: [seed] when a query
	// word is one of the chunk's keywords, [seed, neighbour] for one hop.
	GraphPath []string
	// LearnedQuestion is the labelled question most like the query that
	// names the chunk (learned source).
	LearnedQuestion string
	// LearnedGenerated reports that LearnedQuestion was written by a
	// language model at ingest (index.Generated), not labelled.
	LearnedGenerated bool
	// Expanded lists the learned expansions that matched in the chunk, each
	// as "passage word ← query word".
	Expanded []string
}

// sourceDepth is the number of candidates taken from each source for fusion.
const sourceDepth = 100

// fusedHit is a chunk while the lists are fused: its score and where it is
// in each list.
type fusedHit struct {
	score float64
	id    string
	// at[s] is the hit's 1-based rank in list s (0: not in it).
	at [numSources]int32
}

// numSources is the number of candidate sources: bm25, outline, graph,
// learned, in that order.
const numSources = 4

// candidates runs the sources the mode asks for and returns the top k hits in
// order, with their evidence, and the BM25 search statistics. stage is called
// after each step with its name.
func (s *Searcher) candidates(ctx context.Context, req *Request, terms []index.QueryTerm, k int, stage func(string)) ([]index.Hit, []Evidence, index.SearchStats, error) {
	var st index.SearchStats
	var lists [numSources][]index.Hit
	var err error
	depth := max(k, sourceDepth)
	// A single-source mode weighs that source alone.
	w := req.weights
	switch req.Mode {
	case ModeBM25:
		w, depth = index.FusionWeights{BM25: 1}, k
	case ModeOutline:
		w = index.FusionWeights{Outline: 1}
	case ModeGraph:
		w = index.FusionWeights{Graph: 1}
	}
	if w.BM25 > 0 {
		if lists[0], st, err = s.store.Search(ctx, req.Collection, terms, req.Filter, depth); err != nil {
			return nil, nil, st, err
		}
		stage(SourceBM25)
	}
	// The outline and the graph follow the query's own words: learned
	// expansions (many, weak) would cost them more than they add, at their
	// small fusion weights.
	own := ownTerms(terms)
	if w.Outline > 0 {
		if lists[1], err = s.store.OutlineSearch(ctx, req.Collection, own, req.Filter, depth); err != nil {
			return nil, nil, st, err
		}
		stage(SourceOutline)
	}
	if w.Graph > 0 {
		if lists[2], err = s.store.GraphSearch(ctx, req.Collection, own, req.Filter, depth); err != nil {
			return nil, nil, st, err
		}
		stage(SourceGraph)
	}
	if m, _ := s.store.Learned(req.Collection); w.Learned > 0 && m != nil {
		if lists[3], err = s.store.LearnedSearch(ctx, req.Collection, req.Query, req.Filter, depth); err != nil {
			return nil, nil, st, err
		}
		stage(SourceLearned)
	}
	hits, ev := fuse(lists, w, k, req.Mode != ModeFused)
	stage(StageFuse)
	return hits, ev, st, nil
}

// ownTerms returns terms without the learned expansions (QueryTerm.From).
func ownTerms(terms []index.QueryTerm) []index.QueryTerm {
	if !slices.ContainsFunc(terms, func(t index.QueryTerm) bool { return t.From != "" }) {
		return terms
	}
	return slices.DeleteFunc(slices.Clone(terms), func(t index.QueryTerm) bool { return t.From != "" })
}

// learnedSharpness is the power BM25's normalised scores are raised to when
// they are fused with a learned list. The learned scores are a share of what
// the query scores against itself, so a weak vote is small; BM25's, divided
// by the best, are not: its 50th hit still has about 0.6 of the first's. At
// that scale the deep BM25 hits crowd out the chunks that only the labelled
// questions found. Cubed, a hit at 0.6 weighs 0.2 and the order within BM25
// is unchanged. Chosen by 5-fold cross-validation on stard-train
// (docs/learning.md): recall@100 0.8106 → 0.8314, mrr@10 0.4985 → 0.5032;
// 2 was 0.8208 / 0.4999, 4 was 0.8421 / 0.5030 but cost cmrc2018 recall@10.
// Without a learned list BM25's scores are fused as they are.
const learnedSharpness = 3

// fuse merges the sources' lists: each source's scores are divided by its best
// score (so every source lies in 0..1 and none swamps the others), weighted
// and summed; with a learned list, BM25's are first raised to
// learnedSharpness. Ties go to the better BM25 rank, then the chunk id. A hit
// keeps the BM25 hit's matched terms (the outline's when BM25 did not find
// it). With raw, a hit keeps its source's own score (for a single-source
// mode).
func fuse(lists [numSources][]index.Hit, w index.FusionWeights, k int, raw bool) ([]index.Hit, []Evidence) {
	weights := [numSources]float64{w.BM25, w.Outline, w.Graph, w.Learned}
	sharpen := !raw && weights[3] != 0 && len(lists[3]) > 0
	n := 0
	for s, list := range lists {
		if weights[s] != 0 {
			n += len(list)
		}
	}
	all := make([]fusedHit, 0, n)
	byID := make(map[string]int32, n)
	for s, list := range lists {
		if len(list) == 0 || weights[s] == 0 {
			continue
		}
		top := list[0].Score
		for i, h := range list {
			j, ok := byID[h.ChunkID]
			if !ok {
				j = int32(len(all))
				byID[h.ChunkID] = j
				all = append(all, fusedHit{id: h.ChunkID})
			}
			f := &all[j]
			norm := 0.0
			switch {
			case raw || s == 3: // learned scores are in 0..1 already
				norm = h.Score
			case top > 0:
				norm = h.Score / top
				if s == 0 && sharpen {
					norm = math.Pow(norm, learnedSharpness)
				}
			}
			f.score += weights[s] * norm
			f.at[s] = int32(i + 1)
		}
	}
	order := topk.Best(len(all), k, func(i int) float64 { return all[i].score }, func(a, b int32) int { return fusedBefore(&all[a], &all[b]) }, nil)
	hits := make([]index.Hit, len(order))
	ev := make([]Evidence, len(order))
	for i, j := range order {
		f := &all[j]
		e := &ev[i]
		e.FusedRank = i + 1
		sources := 0
		for s, at := range f.at {
			if at == 0 {
				continue
			}
			sources |= 1 << s
			h := &lists[s][at-1]
			switch s {
			case 0:
				hits[i] = *h
				e.BM25Rank, e.BM25 = int(at), h.Score
			case 1:
				if f.at[0] == 0 {
					hits[i] = *h
				}
				e.OutlineRank, e.Outline, e.OutlinePath = int(at), h.Score, h.Via
			case 2:
				if f.at[0] == 0 && f.at[1] == 0 {
					hits[i] = *h
				}
				e.GraphRank, e.Graph, e.GraphPath = int(at), h.Score, h.Via
			case 3:
				if f.at[0] == 0 && f.at[1] == 0 && f.at[2] == 0 {
					hits[i] = *h
					hits[i].Via = nil
				}
				e.LearnedRank, e.Learned = int(at), h.Score
				if len(h.Via) > 0 {
					e.LearnedQuestion = h.Via[0]
					e.LearnedGenerated = len(h.Via) > 1 && h.Via[1] == "generated"
				}
			}
		}
		e.Sources = sourceSets[sources]
		hits[i].Score = f.score
	}
	return hits, ev
}

// sourceSets[m] lists the sources of bit set m (bit 0 bm25, 1 outline, 2
// graph, 3 learned), in that order; shared, read only.
var sourceSets = func() [1 << numSources][]string {
	names := [numSources]string{SourceBM25, SourceOutline, SourceGraph, SourceLearned}
	var sets [1 << numSources][]string
	for m := range sets {
		for s, name := range names {
			if m&(1<<s) != 0 {
				sets[m] = append(sets[m], name)
			}
		}
		sets[m] = slices.Clip(sets[m])
	}
	return sets
}()

// fusedBefore orders fused hits: score descending, then the better BM25 rank
// (none last), then chunk id.
func fusedBefore(a, b *fusedHit) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	ra, rb := a.at[0], b.at[0]
	if ra == 0 {
		ra = 1 << 30
	}
	if rb == 0 {
		rb = 1 << 30
	}
	if c := cmp.Compare(ra, rb); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}
