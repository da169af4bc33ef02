package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
)

// applyBadger applies one log record to Badger in one transaction that also
// moves Badger's position, so a crash leaves either both or neither. Records at
// or below the position are skipped, which makes replay idempotent. Called with
// wmu held (or during Open).
func (s *Store) applyBadger(r *index.Record) error {
	if r.Seq <= s.pos {
		return nil
	}
	if r.Op == index.OpDeleteCollection {
		// DropPrefix cannot join a transaction; replaying it is harmless.
		if err := s.db.DropPrefix(collPrefix(r.Collection)); err != nil {
			return fmt.Errorf("apply %d: drop collection %s: %w", r.Seq, r.Collection, err)
		}
	}
	if r.Op == index.OpLearn && r.Replace {
		if err := s.db.DropPrefix(learnPrefix(r.Collection)); err != nil {
			return fmt.Errorf("apply %d: drop learned pairs of %s: %w", r.Seq, r.Collection, err)
		}
	}
	// Tests lower maxTxnBytes to take the large-record path with small
	// documents; otherwise it is taken when Badger refuses the transaction.
	var chunksDone bool
	var err error
	if s.maxTxnBytes > 0 {
		if chunksDone, err = s.writeChunksFirst(r, false); err != nil {
			return fmt.Errorf("apply %d (%s %s): %w", r.Seq, r.Op, r.Collection, err)
		}
	}
	var newStats *index.Stats
	var newMeta []string
	var newLex *lexiconState
	apply := func(txn *badger.Txn) error {
		var err error
		switch r.Op {
		case index.OpCreateCollection:
			if _, gerr := txn.Get([]byte(collectionKeyP + r.Collection)); gerr == nil {
				break // already created
			}
			cfg := *r.Config
			cfg.CreatedSeq = r.Seq
			if err = writeJSON(txn, []byte(collectionKeyP+r.Collection), &cfg); err == nil {
				err = putUint(txn, graphVersionKey(r.Collection), graphVersion)
			}
		case index.OpDeleteCollection:
			err = txn.Delete([]byte(collectionKeyP + r.Collection))
		case index.OpUpsert:
			newStats, newMeta, err = s.upsertBadger(txn, r, chunksDone)
		case index.OpDelete:
			newStats, err = s.deleteBadger(txn, r, chunksDone)
		case index.OpLexicon:
			newLex, err = s.lexiconBadger(txn, r)
		case index.OpReindex:
			newStats, newLex, err = s.reindexBadger(txn, r)
		case index.OpPutKey:
			err = putKeyBadger(txn, r)
		case index.OpLearn:
			err = learnBadger(txn, r)
		default:
			err = fmt.Errorf("%w: unknown op %q", errUnappliable, r.Op)
		}
		if err != nil {
			return err
		}
		return putUint(txn, posBadgerKey, r.Seq)
	}
	err = s.db.Update(apply)
	if errors.Is(err, badger.ErrTxnTooBig) && !chunksDone {
		if chunksDone, err = s.writeChunksFirst(r, true); err == nil && chunksDone {
			err = s.db.Update(apply)
		} else if err == nil {
			err = badger.ErrTxnTooBig
		}
	}
	if err != nil {
		return fmt.Errorf("apply %d (%s %s): %w", r.Seq, r.Op, r.Collection, err)
	}
	s.pos = r.Seq
	if r.Op == index.OpLearn {
		s.pairsChanged(r)
	} else if r.Op == index.OpUpsert || r.Op == index.OpDelete {
		s.generatedChanged(r)
	}
	if newLex != nil {
		s.setLexiconState(r.Collection, newLex)
	}
	if newStats != nil || len(newMeta) > 0 {
		s.mu.RLock()
		c := s.colls[r.Collection]
		s.mu.RUnlock()
		if c != nil && newStats != nil {
			// The record changed the collection: mirror it in the graph.
			if r.Op == index.OpUpsert {
				c.graph.Put(r.Doc.ID, r.Doc)
			} else if r.Op == index.OpDelete {
				c.graph.Put(r.DocID, nil)
			}
		}
		if c != nil {
			c.mu.Lock()
			if newStats != nil {
				c.stats = *newStats
			}
			for _, k := range newMeta {
				c.metaKeys[k] = true
			}
			c.mu.Unlock()
		}
	}
	return nil
}

func (s *Store) readStats(txn *badger.Txn, collection string) (index.Stats, error) {
	var st index.Stats
	err := readJSON(txn, statsKey(collection), &st)
	if errors.Is(err, index.ErrNotFound) {
		err = nil
	}
	return st, err
}

func addLens(st *index.Stats, c *index.Chunk, sign int64) {
	st.Chunks += sign
	for f := range index.NumFields {
		st.SumLen[f] += sign * int64(c.Lens[f])
	}
}

func (s *Store) upsertBadger(txn *badger.Txn, r *index.Record, chunksDone bool) (*index.Stats, []string, error) {
	coll, d := r.Collection, r.Doc
	old, ok, err := upsertTarget(txn, r)
	if err != nil || !ok {
		return nil, nil, err
	}
	v := r.DocVersion()
	st, err := s.readStats(txn, coll)
	if err != nil {
		return nil, nil, err
	}
	if !chunksDone {
		ws, _, err := chunkWritesOf(r, old)
		if err == nil {
			err = applyWrites(txn, ws)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if old == nil {
		st.Docs++
		old = &index.Document{}
	}
	for i := range old.Chunks {
		addLens(&st, &old.Chunks[i], -1)
	}
	stored := *d
	stored.Version = v
	stored.Chunks = make([]index.Chunk, len(d.Chunks))
	for i := range d.Chunks {
		c := &d.Chunks[i]
		addLens(&st, c, 1)
		ref := *c
		ref.Text = "" // the document record keeps chunk references only
		stored.Chunks[i] = ref
	}
	if err := writeJSON(txn, docKey(coll, d.ID), &stored); err != nil {
		return nil, nil, err
	}
	var newMeta []string
	for k := range d.Metadata {
		if err := txn.Set(metaKey(coll, k), nil); err != nil {
			return nil, nil, err
		}
		newMeta = append(newMeta, k)
	}
	return &st, newMeta, writeJSON(txn, statsKey(coll), &st)
}

func (s *Store) deleteBadger(txn *badger.Txn, r *index.Record, chunksDone bool) (*index.Stats, error) {
	coll := r.Collection
	if _, err := txn.Get([]byte(collectionKeyP + coll)); err != nil {
		return nil, nil
	}
	// The tombstone stands above the delete's own version (its log
	// position, unless it carries one), the version it removes and any
	// earlier tombstone: a late copy of the write it removed (a retry that
	// reached the log after it, its client's version above the position)
	// stays out.
	tomb, err := getUint(txn, tombKey(coll, r.DocID))
	if err != nil {
		return nil, err
	}
	var old index.Document
	err = readJSON(txn, docKey(coll, r.DocID), &old)
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		return nil, err
	}
	found := err == nil
	if err := putUint(txn, tombKey(coll, r.DocID), max(tomb, r.DocVersion(), old.Version)); err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	st, err := s.readStats(txn, coll)
	if err != nil {
		return nil, err
	}
	st.Docs--
	for i := range old.Chunks {
		addLens(&st, &old.Chunks[i], -1)
	}
	if !chunksDone {
		ws, _, err := chunkWritesOf(r, &old)
		if err == nil {
			err = applyWrites(txn, ws)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := txn.Delete(docKey(coll, r.DocID)); err != nil {
		return nil, err
	}
	return &st, writeJSON(txn, statsKey(coll), &st)
}

// applyText applies upsert and delete records of one collection to its bleve
// index in one batch that also records the position of the last record. terms
// holds already analysed chunks by bleve id (nil during catch-up, when chunks
// are analysed again). Bleve mirrors Badger's decisions: an upsert that Badger
// has since superseded (newer version or tombstone) is skipped, because a later
// record will bring the index to Badger's state.
func (s *Store) applyText(ctx context.Context, c *coll, recs []index.Record, terms map[string]bm25.Terms) error {
	if len(recs) == 0 {
		return nil
	}
	t := c.text
	batch := t.NewBatch()
	touched := map[string]bool{}
	// One reader per batch: it sees the index as the batch started, which is
	// right for every document the batch has not touched yet.
	reader, err := t.Reader()
	if err != nil {
		return err
	}
	defer func() { reader.Close() }()
	for i := range recs {
		r := &recs[i]
		if s.quarantined[r.Seq] {
			continue // Badger never applied it
		}
		docID := r.DocID
		if r.Op == index.OpUpsert {
			docID = r.Doc.ID
		}
		if touched[docID] {
			// The batch must see its own earlier changes to this document.
			if err := t.Apply(batch); err != nil {
				return err
			}
			batch = t.NewBatch()
			clear(touched)
			reader.Close()
			if reader, err = t.Reader(); err != nil {
				return err
			}
		}
		touched[docID] = true
		if err := s.applyTextRecord(ctx, c, reader, batch, r, terms); err != nil {
			return fmt.Errorf("apply %d to bleve index of %s: %w", r.Seq, c.cfg.Name, err)
		}
	}
	batch.SetPos(recs[len(recs)-1].Seq)
	if err := t.Apply(batch); err != nil {
		return fmt.Errorf("write bleve index of %s: %w", c.cfg.Name, err)
	}
	return nil
}

func (s *Store) applyTextRecord(ctx context.Context, c *coll, reader *bm25.Reader, batch *bm25.Batch, r *index.Record, terms map[string]bm25.Terms) error {
	switch r.Op {
	case index.OpLexicon:
		return nil // the chunks it changes follow as OpReindex records
	case index.OpLearn:
		return nil // learned pairs are not in the text index
	case index.OpReindex:
		return s.reindexText(c, batch, r)
	}
	docID := r.DocID
	if r.Op == index.OpUpsert {
		docID = r.Doc.ID
	}
	existing, err := reader.DocChunks(ctx, docID)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	if r.Op == index.OpUpsert {
		superseded := false
		err := s.db.View(func(txn *badger.Txn) error {
			var cur index.Document
			err := readJSON(txn, docKey(c.cfg.Name, docID), &cur)
			if err == nil {
				superseded = cur.Version > r.DocVersion()
			} else if errors.Is(err, index.ErrNotFound) {
				superseded = true // deleted later: a later delete record follows
				err = nil
			}
			return err
		})
		if err != nil {
			return err
		}
		if superseded {
			return nil
		}
		for i := range r.Doc.Chunks {
			want[index.ChunkVersion(&r.Doc.Chunks[i])] = true
		}
	}
	have := map[string]bool{}
	for _, id := range existing {
		have[id] = true
		if !want[id] {
			batch.Delete(id)
		}
	}
	if r.Op != index.OpUpsert {
		return nil
	}
	for i := range r.Doc.Chunks {
		ch := &r.Doc.Chunks[i]
		id := index.ChunkVersion(ch)
		if have[id] {
			continue
		}
		a, ok := terms[id]
		if !ok {
			a = bm25.Analyse(s.an, c.vocab.Load(), r.Doc.Title, ch)
		}
		if err := batch.Index(r.Doc, ch, a); err != nil {
			return err
		}
	}
	return nil
}
