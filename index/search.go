package index

// QueryTerm is one analysed query term with its weight (1 for a term the user
// typed, less for expansions and question words).
type QueryTerm struct {
	Term   string
	Weight float64
	// Gram marks a character bigram, searched in the bigram field and weighted
	// by the collection's GramWeight; other terms are words, searched in title,
	// heading and body.
	Gram bool
	// From is the query word a learned expansion stands for ("" for the
	// query's own terms): the evidence "用人单位 ← 老板".
	From string
}

// MaxQueryTerms is the most terms a search scores; later terms are ignored
// (callers cap their term lists, keeping the ones that matter).
const MaxQueryTerms = 64

// Filter restricts a search. Zero-valued fields do not restrict; set fields are
// AND-ed; DocIDs are OR-ed among themselves.
type Filter struct {
	DocIDs []string
	// Metadata requires each key to have exactly this value.
	Metadata map[string]string
	// HeadingPrefix keeps chunks whose heading path starts with these parts.
	HeadingPrefix []string
}

// IsZero reports whether the filter restricts nothing.
func (f Filter) IsZero() bool {
	return len(f.DocIDs) == 0 && len(f.Metadata) == 0 && len(f.HeadingPrefix) == 0
}

// Hit is a scored chunk.
type Hit struct {
	ChunkID string
	// Score ranks hits: BM25 plus the document evidence.
	Score float64
	// BM25 is the chunk's own BM25F (+ bigram) score.
	BM25 float64
	// Matched lists the query terms found in the chunk, in query order.
	Matched []string
	// Via is the outline or graph evidence of a hit from those sources: the
	// matched section's heading path, or the keyword path ([seed] or
	// [seed, neighbour]) through the graph; for the learned source, the
	// question most like the query ([question], or [question, "generated"]
	// when a language model wrote it).
	Via []string
	// ChunkVersion names the chunk version that was scored (its ID and
	// content hash): chunk versions are immutable, so the store serves a hit's
	// chunk from a cache by this key, and drops the hit when the chunk has
	// since been replaced.
	ChunkVersion string
}

// SearchStats reports the work a search did.
type SearchStats struct {
	// Postings is the number of postings scored or skipped over.
	Postings int
	// Decoded is the number of postings decoded from bleve into the
	// snapshot's cache (the pruned search's misses).
	Decoded int
	// Exhaustive reports that every posting was scored: the collection's
	// parameters do not allow pruning, or a term was not cached yet.
	Exhaustive bool
	// Candidates is the number of chunks scored: every chunk that matched
	// a term for the exhaustive search, the chunks that could reach the
	// pool for the pruned one.
	Candidates int
}

// Stats are a collection's corpus statistics, kept in Badger with the data.
type Stats struct {
	Docs   int64            `json:"docs"`
	Chunks int64            `json:"chunks"`
	SumLen [NumFields]int64 `json:"sum_len"`
}

// NumFields is the number of scored fields of a chunk, in the order of
// Chunk.Lens and Stats.SumLen: title, heading path and body (words, scored
// together with BM25F) and character bigrams of all three (scored as a second
// BM25 model and added with the collection's GramWeight).
const NumFields = 4
