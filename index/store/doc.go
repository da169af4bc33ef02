// Package store is a data directory: a write log in files of its own
// (package wal), Badger as the source of truth (collections, documents,
// chunks, statistics, lexicons, keys) and,
// per collection, a bm25 index and a keyword graph derived from it.
//
// # Writes
//
// Every write is an index.Record in a sequenced log. Upsert and Delete
// append records durably, then apply them to Badger (one transaction per record,
// including Badger's applied position) and to the collection's bm25 index (one
// batch that also stores the index's position). On Open, each store replays the
// log from its own position; a bm25 index that cannot be caught up is rebuilt
// from Badger. Applying is idempotent: an unchanged content hash writes
// nothing, an older version never overwrites a newer one, and a delete leaves
// a tombstone. A lexicon change re-analyses the chunks it affects in the
// background, through the same log (lexicon_store.go).
//
// # Locks
//
// Taken in this order, never the reverse:
//
//	Store.wmu → Store.mu → coll.mu
//
// wmu serialises writes (held through log append, fsync and apply) and guards
// Store.pos and Store.vocabs, and keeps log appends in order; mu guards the collection map;
// coll.mu guards a collection's statistics, metadata keys and pending count.
// A graph's own lock is taken with wmu held (writes apply to it) or alone
// (searches), never with mu or coll.mu held. progressMu and the bm25 caches'
// locks are leaves: nothing else is locked while one is held.
package store
