// Package bm25 is one collection's bleve index and the scoring over it:
// chunks' analysed fields are indexed as bleve postings (Batch, Apply), and
// Search scores them with textbook BM25F, exact field lengths and document
// evidence, pruned with MaxScore over postings cached per snapshot.
//
// Where a query term's weight is computed: retrieve gives each term its
// weight (1 for a word the user typed, less for expansions and question
// words); Search multiplies bigram terms by the collection's GramWeight
// (searchFiltered), and scores a term per chunk as idf (Params.idf) times the
// saturated sum of its field weights' length-normalised frequencies
// (Params.pseudoTF, Params.saturate).
//
// bleve's own BM25 is not textbook (see ../shared/notes/bleve-bm25-and-speed.md
// in the project's notes), so the index stores analysed terms only and this
// package scores them with the corpus statistics the store keeps (Params);
// scores do not change when bleve merges segments.
//
// Locks: the postings caches (snapCache.mu, rawCache.mu) are leaves: no other
// lock is taken while one is held.
package bm25
