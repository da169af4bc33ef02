package index

// Lexicon limits. An entry is one term, stop word, synonym key or alternative.
const (
	// MaxLexiconEntryRunes is the longest entry, in characters after
	// normalisation: terms are words and product codes, not sentences.
	MaxLexiconEntryRunes = 64
	// MaxLexiconEntries caps the entries of one lexicon, all lists together.
	MaxLexiconEntries = 50_000
	// MaxSynonymAlternatives caps the alternatives of one synonym entry: each
	// adds terms to every query that contains the key.
	MaxSynonymAlternatives = 16
)

// Lexicon is a collection's own vocabulary: terms that segmentation keeps
// whole, synonyms that expand queries, and stop words that queries drop.
// Entries are normalised like text (NFKC, lower case, traditional →
// simplified); a stored Lexicon holds them normalised.
type Lexicon struct {
	// Terms are kept whole by segmentation, in indexed text and in queries
	// (indexed text also keeps their usual pieces, so a search for a piece
	// still finds them).
	Terms []string `json:"terms,omitempty"`
	// Synonyms expand a query that contains a key with its alternatives, at
	// a lower weight. Expansion is one hop: an alternative's own synonyms are
	// not added, so cycles (a→b, b→a) are harmless.
	Synonyms []Synonym `json:"synonyms,omitempty"`
	// StopWords are dropped from queries (a query of stop words only is
	// searched as written). They do not change indexing.
	StopWords []string `json:"stop_words,omitempty"`
	// Version is the log position of the write that set the lexicon; 0 for
	// a collection that never had one.
	Version uint64 `json:"version,omitempty"`
}

// Synonym is one synonym entry: a key and the words searched with it.
type Synonym struct {
	Term         string   `json:"term"`
	Alternatives []string `json:"alternatives"`
}
