package index

// Op is the kind of a log record.
type Op string

// Log record kinds.
const (
	OpCreateCollection Op = "create_collection"
	OpDeleteCollection Op = "delete_collection"
	OpUpsert           Op = "upsert"
	OpDelete           Op = "delete"
	// OpLexicon replaces a collection's lexicon (Record.Lexicon) and marks
	// the chunks whose segmentation it changes for re-indexing.
	OpLexicon Op = "lexicon"
	// OpReindex analyses chunks (Record.ChunkIDs) again with the lexicon in
	// force; the store appends these in the background after an OpLexicon.
	OpReindex Op = "reindex"
	// OpPutKey writes an API key (Record.Key): a new one, or a revocation.
	OpPutKey Op = "put_key"
	// OpLearn adds labelled questions (Record.Pairs) to a collection's
	// learned model, or replaces them all (Record.Replace).
	OpLearn Op = "learn"
)

// Record is one write in the sequenced log. Appliers apply records in Seq order
// and idempotently: applying a record twice leaves the same state as once.
type Record struct {
	Seq        uint64      `json:"seq"`
	Op         Op          `json:"op"`
	Collection string      `json:"collection"`
	Config     *Collection `json:"config,omitempty"`
	Doc        *Document   `json:"doc,omitempty"`
	DocID      string      `json:"doc_id,omitempty"`
	// Version of a delete: it leaves a tombstone with this version.
	Version uint64 `json:"version,omitempty"`
	// Lexicon is the new lexicon of an OpLexicon record, normalised.
	Lexicon *Lexicon `json:"lexicon,omitempty"`
	// ChunkIDs are the chunks an OpReindex record analyses again.
	ChunkIDs []string `json:"chunk_ids,omitempty"`
	// Key is the API key an OpPutKey record writes.
	Key *APIKey `json:"key,omitempty"`
	// Pairs are the labelled questions an OpLearn record adds; with Replace
	// they replace the collection's pairs (none: forget them all).
	Pairs   []Pair `json:"pairs,omitempty"`
	Replace bool   `json:"replace,omitempty"`
}

// DocVersion is the record's effective document version: the caller's, or the
// log position when the caller gave none.
func (r *Record) DocVersion() uint64 {
	if r.Doc != nil && r.Doc.Version != 0 {
		return r.Doc.Version
	}
	if r.Version != 0 {
		return r.Version
	}
	return r.Seq
}
