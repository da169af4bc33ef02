// Package index is zhisou's storage: Badger as the source of truth, one bleve
// index per collection for postings, the gse-based Analyzer, and textbook BM25F
// scoring computed over bleve's postings.
//
// # Writes
//
// Every write is a Record in a sequenced Log. Store.Upsert and Store.Delete
// append records durably, then apply them to Badger (one transaction per record,
// including Badger's applied position) and to the collection's bleve index (one
// batch that also stores the index's position with SetInternal). On Open, each
// store replays the log from its own position; a bleve index that cannot be
// caught up is rebuilt from Badger. Applying is idempotent: an unchanged
// content hash writes nothing, an older version never overwrites a newer one,
// and a delete leaves a tombstone.
//
// # Scoring
//
// bleve's own BM25 is not textbook (see ../shared/notes/bleve-bm25-and-speed.md),
// so the index only stores analysed terms; Store.Search reads the postings of
// the title, heading and body fields and scores them with BM25F using the exact
// field lengths kept in the postings and corpus statistics kept in Badger, so
// scores do not change when bleve merges segments.
package index
