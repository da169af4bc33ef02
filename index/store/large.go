package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
)

// Large records. Badger refuses a transaction over a share of its memtable
// (ErrTxnTooBig: 4.8 MB and some 54 000 entries with the store's 32 MB
// memtables), and one document of a few MB of text has more chunks than
// that. So a record that Badger refuses as one transaction writes its chunks
// first, in transactions of their own, and then applies the rest (the
// document record, statistics, metadata keys and the position) in the usual
// one. Records that fit, nearly all, pay nothing for this.
//
// This keeps applying crash-safe and idempotent: until the last transaction
// moves the position, the record is applied again from the start on replay;
// the chunk writes compare against the stored document record, which only the
// last transaction changes, so they are repeated alike. Meanwhile a chunk key
// may hold the new version of a chunk whose document record (and bleve
// index) still names the old one: a search drops such a hit, as it does
// while any document is rewritten (HitChunks compares chunk versions).

// upsertTarget reads what an upsert record replaces: ok is false when the
// record does not apply (its collection is gone, or a newer version or
// tombstone is stored); old is nil for a new document.
func upsertTarget(txn *badger.Txn, r *index.Record) (old *index.Document, ok bool, err error) {
	coll, d := r.Collection, r.Doc
	if _, err := txn.Get([]byte(collectionKeyP + coll)); err != nil {
		return nil, false, nil // collection deleted after this record was written
	}
	v := r.DocVersion()
	tomb, err := getUint(txn, tombKey(coll, d.ID))
	if err != nil {
		return nil, false, err
	}
	if tomb >= v {
		return nil, false, nil // a newer delete wins
	}
	var stored index.Document
	switch err := readJSON(txn, docKey(coll, d.ID), &stored); {
	case errors.Is(err, index.ErrNotFound):
		return nil, true, nil
	case err != nil:
		return nil, false, err
	case stored.Version > v:
		return nil, false, nil // a newer version is stored
	}
	return &stored, true, nil
}

// chunkWrite is one chunk key a record sets (value non-nil) or deletes.
type chunkWrite struct {
	key, value []byte
}

// chunkWrites lists the chunk keys record r sets and deletes, reading what
// it replaces, and the estimated share of a Badger transaction they take.
func (s *Store) chunkWrites(txn *badger.Txn, r *index.Record) ([]chunkWrite, int64, error) {
	var old *index.Document
	switch r.Op {
	case index.OpUpsert:
		o, ok, err := upsertTarget(txn, r)
		if err != nil || !ok {
			return nil, 0, err
		}
		old = o
	case index.OpDelete:
		if _, err := txn.Get([]byte(collectionKeyP + r.Collection)); err != nil {
			return nil, 0, nil
		}
		var d index.Document
		switch err := readJSON(txn, docKey(r.Collection, r.DocID), &d); {
		case errors.Is(err, index.ErrNotFound):
			return nil, 0, nil
		case err != nil:
			return nil, 0, err
		}
		old = &d
	default:
		return nil, 0, nil
	}
	return chunkWritesOf(r, old)
}

// chunkWritesOf lists the chunk keys an upsert or delete record sets and
// deletes, given the document it replaces (nil for none): an upsert writes
// its new and changed chunks and deletes the old ones it drops, a delete
// deletes every old chunk. The one place that decides it, whether the writes
// join the record's transaction or go ahead of it.
func chunkWritesOf(r *index.Record, old *index.Document) ([]chunkWrite, int64, error) {
	coll := r.Collection
	var ws []chunkWrite
	var size int64
	add := func(key, value []byte) {
		ws = append(ws, chunkWrite{key, value})
		size += txnEntrySize(key, value)
	}
	if r.Op == index.OpDelete {
		if old != nil {
			for _, c := range old.Chunks {
				add(chunkKey(coll, c.ID), nil)
				if c.Generated != nil {
					add(generatedKey(coll, c.ID), nil)
				}
			}
		}
		return ws, size, nil
	}
	keep, oldHash, oldGen := map[string]bool{}, map[string]string{}, map[string]bool{}
	for _, c := range r.Doc.Chunks {
		keep[c.ID] = true
	}
	if old != nil {
		for _, c := range old.Chunks {
			oldHash[c.ID] = c.Hash
			oldGen[c.ID] = c.Generated != nil
			if !keep[c.ID] {
				add(chunkKey(coll, c.ID), nil)
				if c.Generated != nil {
					add(generatedKey(coll, c.ID), nil)
				}
			}
		}
	}
	for i := range r.Doc.Chunks {
		c := &r.Doc.Chunks[i]
		// What a model wrote about the chunk is kept apart from it (under
		// generatedKey, and in the document record), so that enriching an
		// unchanged chunk does not rewrite it.
		switch {
		case c.Generated != nil:
			b, err := json.Marshal(storedGenerated{Hash: c.Hash, Generated: *c.Generated})
			if err != nil {
				return nil, 0, err
			}
			add(generatedKey(coll, c.ID), b)
		case oldGen[c.ID]:
			add(generatedKey(coll, c.ID), nil)
		}
		if oldHash[c.ID] == c.Hash {
			continue
		}
		plain := *c
		plain.Generated = nil
		b, err := json.Marshal(&plain)
		if err != nil {
			return nil, 0, err
		}
		add(chunkKey(coll, c.ID), b)
	}
	return ws, size, nil
}

// applyWrites sets and deletes chunk keys in txn.
func applyWrites(txn *badger.Txn, ws []chunkWrite) error {
	for _, w := range ws {
		var err error
		if w.value == nil {
			err = txn.Delete(w.key)
		} else {
			err = txn.Set(w.key, w.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// txnEntrySize is what an entry counts toward Badger's transaction limit
// (Entry.estimateSizeAndSetThreshold plus the version bytes of
// Txn.checkSize), counting the value whole: an over-estimate for values that
// go to the value log.
func txnEntrySize(key, value []byte) int64 { return int64(len(key)+len(value)) + 2 + 10 }

// txnBudget is the share of one Badger transaction that a batch of chunk
// writes ahead of their record may take.
func (s *Store) txnBudget() (bytes, count int64) {
	if s.maxTxnBytes > 0 {
		return s.maxTxnBytes, s.db.MaxBatchCount() / 2
	}
	return s.db.MaxBatchSize() / 2, s.db.MaxBatchCount() / 2
}

// writeChunksFirst writes the chunk keys of an upsert or delete record in
// transactions of their own, and reports whether it did (the record's own
// transaction then skips them). Unless force is set, it does so only when
// they are over the budget. Called with wmu held.
func (s *Store) writeChunksFirst(r *index.Record, force bool) (bool, error) {
	if r.Op != index.OpUpsert && r.Op != index.OpDelete {
		return false, nil
	}
	var ws []chunkWrite
	var size int64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		ws, size, err = s.chunkWrites(txn, r)
		return err
	})
	if err != nil {
		return false, err
	}
	maxBytes, maxCount := s.txnBudget()
	if !force && size <= maxBytes && int64(len(ws)) <= maxCount || len(ws) == 0 {
		return false, nil
	}
	for len(ws) > 0 {
		n, bytes := 0, int64(0)
		for n < len(ws) && (n == 0 || bytes+txnEntrySize(ws[n].key, ws[n].value) <= maxBytes) && int64(n) < maxCount {
			bytes += txnEntrySize(ws[n].key, ws[n].value)
			n++
		}
		batch := ws[:n]
		if err := s.db.Update(func(txn *badger.Txn) error { return applyWrites(txn, batch) }); err != nil {
			return false, fmt.Errorf("write chunks: %w", err)
		}
		ws = ws[n:]
	}
	s.logger.Debug("large record: chunks written ahead of it", "seq", r.Seq, "op", r.Op, "collection", r.Collection, "bytes", size)
	return true, nil
}
