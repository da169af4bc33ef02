package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/bm25"
)

// A lexicon change is one OpLexicon record. Applying it to Badger stores the
// lexicon and, in the same transaction, the list of chunks whose text contains
// a term that was added or removed (their segmentation may change). A
// background goroutine then appends OpReindex records of reindexBatch chunks;
// applying one analyses its chunks again with the lexicon in force, updates
// their field lengths and the collection's statistics in Badger, and replaces
// them in bleve. Each record is applied like any other, with the position
// stored with the data, so a crash resumes where it stopped. Searches keep
// running throughout; queries and new writes use the new lexicon at once.

const reindexBatch = 256

const (
	lexiconKeySuffix = "/lexicon"
	reindexKeySuffix = "/reindex"
)

func lexiconKey(c string) []byte { return []byte(collectionDataP + c + lexiconKeySuffix) }
func reindexKey(c string) []byte { return []byte(collectionDataP + c + reindexKeySuffix) }

// reindexState is the chunks still to re-index after lexicon changes:
// IDs[Next:]. It is written whole by an OpLexicon and only Next moves after.
type reindexState struct {
	IDs  []string `json:"ids"`
	Next int      `json:"next"`
}

func (p reindexState) remaining() []string {
	if p.Next >= len(p.IDs) {
		return nil
	}
	return p.IDs[p.Next:]
}

// lexiconState is what a collection keeps in memory about its lexicon.
type lexiconState struct {
	vocab   *analysis.Vocab
	pending int
	// docs are the documents whose chunk keywords a re-index changed: the
	// keyword graph takes them again.
	docs []*index.Document
}

// LexiconInfo is a collection's lexicon and the state of its re-indexing.
type LexiconInfo struct {
	index.Lexicon
	// PendingReindex is the number of chunks still to be re-indexed in the
	// background after lexicon changes.
	PendingReindex int
}

// vocabIn returns the compiled lexicon stored for a collection (nil if it has
// none), reusing the compiled one when the stored version has not changed.
// Called with wmu held or during Open.
func (s *Store) vocabIn(txn *badger.Txn, name string) (*analysis.Vocab, error) {
	var lex index.Lexicon
	err := readJSON(txn, lexiconKey(name), &lex)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lexicon of %s: %w", name, err)
	}
	if v := s.vocabs[name]; v != nil && v.Version() == lex.Version {
		return v, nil
	}
	v := analysis.NewVocab(lex)
	s.vocabs[name] = v
	return v, nil
}

func readReindexState(txn *badger.Txn, name string) (reindexState, error) {
	var p reindexState
	err := readJSON(txn, reindexKey(name), &p)
	if errors.Is(err, index.ErrNotFound) {
		err = nil
	}
	return p, err
}

func writeReindexState(txn *badger.Txn, name string, p reindexState) error {
	if len(p.remaining()) == 0 {
		return txn.Delete(reindexKey(name))
	}
	return writeJSON(txn, reindexKey(name), &p)
}

func (s *Store) readLexiconState(txn *badger.Txn, name string) (lexiconState, error) {
	v, err := s.vocabIn(txn, name)
	if err != nil {
		return lexiconState{}, err
	}
	p, err := readReindexState(txn, name)
	if err != nil {
		return lexiconState{}, fmt.Errorf("read re-index state of %s: %w", name, err)
	}
	return lexiconState{vocab: v, pending: len(p.remaining())}, nil
}

// setLexiconState publishes a collection's lexicon and pending count after a
// record was applied.
func (s *Store) setLexiconState(name string, st *lexiconState) {
	s.vocabs[name] = st.vocab
	s.mu.RLock()
	c := s.colls[name]
	s.mu.RUnlock()
	if c == nil {
		return // during Open: loadCollections reads the state
	}
	c.vocab.Store(st.vocab)
	for _, d := range st.docs {
		c.graph.Put(d.ID, d)
	}
	c.mu.Lock()
	c.pending = st.pending
	c.mu.Unlock()
}

// lexiconBadger stores a new lexicon and adds the chunks whose text contains
// an added or removed term to the re-index list.
func (s *Store) lexiconBadger(txn *badger.Txn, r *index.Record) (*lexiconState, error) {
	name := r.Collection
	if _, err := txn.Get([]byte(collectionKeyP + name)); err != nil {
		return nil, nil // collection deleted after this record was written
	}
	if r.Lexicon == nil {
		return nil, errors.New("lexicon record without a lexicon")
	}
	var old index.Lexicon
	if err := readJSON(txn, lexiconKey(name), &old); err != nil && !errors.Is(err, index.ErrNotFound) {
		return nil, err
	}
	lex := *r.Lexicon
	lex.Version = r.Seq
	if err := writeJSON(txn, lexiconKey(name), &lex); err != nil {
		return nil, err
	}
	p, err := readReindexState(txn, name)
	if err != nil {
		return nil, err
	}
	ids := slices.Clone(p.remaining())
	if changed := analysis.NewMatcher(changedTerms(old.Terms, lex.Terms)); !changed.Empty() {
		queued := map[string]bool{}
		for _, id := range ids {
			queued[id] = true
		}
		prefix := chunkKey(name, "")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var ch index.Chunk
			if err := itemJSON(it.Item(), &ch); err != nil {
				return nil, fmt.Errorf("read chunk %s: %w", it.Item().Key(), err)
			}
			if !queued[ch.ID] && s.containsAny(changed, &ch) {
				queued[ch.ID] = true
				ids = append(ids, ch.ID)
			}
		}
	}
	if err := writeReindexState(txn, name, reindexState{IDs: ids}); err != nil {
		return nil, err
	}
	return &lexiconState{vocab: analysis.NewVocab(lex), pending: len(ids)}, nil
}

// changedTerms returns the terms in exactly one of old and cur.
func changedTerms(old, cur []string) []string {
	in := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, t := range list {
			m[t] = true
		}
		return m
	}
	o, c := in(old), in(cur)
	var out []string
	for t := range o {
		if !c[t] {
			out = append(out, t)
		}
	}
	for t := range c {
		if !o[t] {
			out = append(out, t)
		}
	}
	return out
}

// containsAny reports whether a chunk's analysed fields (title, heading path,
// text), normalised, contain an entry of m.
func (s *Store) containsAny(m analysis.Matcher, ch *index.Chunk) bool {
	for _, f := range [3]string{ch.DocTitle, index.HeadingString(ch.HeadingPath), ch.Text} {
		if m.Found(s.an.Normalize(f).Text) {
			return true
		}
	}
	return false
}

// reindexBadger analyses the record's chunks again with the lexicon in force
// and stores their new field lengths and keywords in the chunk and in its
// document's chunk reference, and the lengths in the collection's statistics. A chunk deleted or replaced
// since it was queued is skipped: its new version was analysed when written.
func (s *Store) reindexBadger(txn *badger.Txn, r *index.Record) (*index.Stats, *lexiconState, error) {
	name := r.Collection
	if _, err := txn.Get([]byte(collectionKeyP + name)); err != nil {
		return nil, nil, nil
	}
	v, err := s.vocabIn(txn, name)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.readStats(txn, name)
	if err != nil {
		return nil, nil, err
	}
	statsChanged := false
	changed := map[string]*index.Document{}
	for _, id := range r.ChunkIDs {
		var ch index.Chunk
		d, ref, err := currentChunk(txn, name, id, &ch)
		if err != nil {
			return nil, nil, err
		}
		if ref == nil {
			continue
		}
		a := bm25.Analyse(s.an, v, ch.DocTitle, &ch)
		lens := a.Lens()
		kws := a.Keywords(s.an)
		if ref.Lens == lens && ch.Lens == lens && slices.Equal(ref.Keywords, kws) && slices.Equal(ch.Keywords, kws) {
			continue
		}
		if ref.Lens != lens {
			addLens(&st, ref, -1)
			ref.Lens = lens
			addLens(&st, ref, 1)
			statsChanged = true
		}
		ch.Lens = lens
		ref.Keywords, ch.Keywords = kws, kws
		if err := writeJSON(txn, chunkKey(name, id), &ch); err != nil {
			return nil, nil, err
		}
		if err := writeJSON(txn, docKey(name, d.ID), d); err != nil {
			return nil, nil, err
		}
		changed[d.ID] = d // the last write of a document is its state
	}
	p, err := readReindexState(txn, name)
	if err != nil {
		return nil, nil, err
	}
	p.Next = min(p.Next+len(r.ChunkIDs), len(p.IDs))
	if err := writeReindexState(txn, name, p); err != nil {
		return nil, nil, err
	}
	ls := &lexiconState{vocab: v, pending: len(p.remaining())}
	for _, id := range slices.Sorted(maps.Keys(changed)) {
		ls.docs = append(ls.docs, changed[id])
	}
	if !statsChanged {
		return nil, ls, nil
	}
	return &st, ls, writeJSON(txn, statsKey(name), &st)
}

// currentChunk reads chunk id into ch and its document, and returns the
// document's reference to that chunk version; a nil reference means the chunk
// or its document is gone, or the document no longer holds this version.
func currentChunk(txn *badger.Txn, name, id string, ch *index.Chunk) (*index.Document, *index.Chunk, error) {
	err := readJSON(txn, chunkKey(name, id), ch)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var d index.Document
	err = readJSON(txn, docKey(name, ch.DocID), &d)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for i := range d.Chunks {
		if d.Chunks[i].ID == id && d.Chunks[i].Hash == ch.Hash {
			return &d, &d.Chunks[i], nil
		}
	}
	return nil, nil, nil
}

// reindexText replaces the record's chunks in bleve with their analysis
// under the lexicon in force. It reads the chunks from Badger, which is at
// least as far along as bleve: during catch-up a chunk may already be a later
// version, which the later record that wrote it leaves in place.
func (s *Store) reindexText(c *coll, batch *bm25.Batch, r *index.Record) error {
	v := c.vocab.Load()
	return s.db.View(func(txn *badger.Txn) error {
		for _, id := range r.ChunkIDs {
			var ch index.Chunk
			d, ref, err := currentChunk(txn, c.cfg.Name, id, &ch)
			if err != nil {
				return err
			}
			if ref == nil {
				continue
			}
			if err := batch.Index(d, &ch, bm25.Analyse(s.an, v, d.Title, &ch)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Lexicon returns a collection's lexicon (normalised, as stored) and how many
// chunks still wait to be re-indexed.
func (s *Store) Lexicon(collection string) (LexiconInfo, error) {
	c, err := s.get(collection)
	if err != nil {
		return LexiconInfo{}, err
	}
	return c.lexiconInfo(), nil
}

func (c *coll) lexiconInfo() LexiconInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return LexiconInfo{Lexicon: c.vocab.Load().Lexicon(), PendingReindex: c.pending}
}

// Vocab returns the compiled lexicon in force for a collection (nil if it has
// none), for query analysis. It is immutable: a change replaces it.
func (s *Store) Vocab(collection string) (*analysis.Vocab, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	return c.vocab.Load(), nil
}

// ReplaceLexicon replaces a collection's lexicon. It takes effect at once for
// searches and new writes; the chunks whose text contains an added or removed
// term are re-indexed in the background, and the result's PendingReindex says
// how many chunks are waiting (those of earlier changes not yet done
// included). A lexicon equal to the one in force writes nothing. Bad entries
// give an error wrapping ErrInvalid that names the entry.
func (s *Store) ReplaceLexicon(ctx context.Context, collection string, lex index.Lexicon) (LexiconInfo, error) {
	if _, err := s.getFresh(ctx, collection); err != nil {
		return LexiconInfo{}, err
	}
	norm, err := s.an.NormalizeLexicon(lex)
	if err != nil {
		return LexiconInfo{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.syncForWrite(ctx); err != nil {
		return LexiconInfo{}, err
	}
	c, err := s.get(collection)
	if err != nil {
		return LexiconInfo{}, err
	}
	if sameLexicon(c.vocab.Load().Lexicon(), norm) {
		return c.lexiconInfo(), nil
	}
	recs := []index.Record{{Op: index.OpLexicon, Collection: collection, Lexicon: &norm}}
	if err := s.commit(ctx, recs, nil); err != nil {
		return LexiconInfo{}, err
	}
	s.kickReindex()
	return c.lexiconInfo(), nil
}

func sameLexicon(a, b index.Lexicon) bool {
	return slices.Equal(a.Terms, b.Terms) && slices.Equal(a.StopWords, b.StopWords) &&
		slices.EqualFunc(a.Synonyms, b.Synonyms, func(x, y index.Synonym) bool {
			return x.Term == y.Term && slices.Equal(x.Alternatives, y.Alternatives)
		})
}

// WaitReindex returns when no chunk of the collection waits to be re-indexed
// after a lexicon change, or when ctx is done.
func (s *Store) WaitReindex(ctx context.Context, collection string) error {
	for {
		s.progressMu.Lock()
		progress := s.progress
		s.progressMu.Unlock()
		c, err := s.get(collection)
		if err != nil {
			return err
		}
		c.mu.RLock()
		n := c.pending
		c.mu.RUnlock()
		if n == 0 {
			// The count drops when Badger has applied the last batch; bleve
			// applies it under the same write lock, so taking the lock
			// waits for it.
			s.wmu.Lock()
			c.mu.RLock()
			n = c.pending
			c.mu.RUnlock()
			s.wmu.Unlock()
			if n == 0 {
				return nil
			}
			continue
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("wait for re-indexing of %s (%d chunks left): %w", collection, n, ctx.Err())
		}
	}
}

func (s *Store) kickReindex() {
	select {
	case s.kick <- struct{}{}:
	default: // already kicked
	}
}

func (s *Store) notifyProgress() {
	s.progressMu.Lock()
	close(s.progress)
	s.progress = make(chan struct{})
	s.progressMu.Unlock()
}

// startReindexer starts the background re-indexer; Close stops it. It starts
// with a kick, so work left by a crash resumes at once.
func (s *Store) startReindexer() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopReindex = cancel
	s.reindexDone = make(chan struct{})
	go func() {
		defer close(s.reindexDone)
		s.reindexLoop(ctx)
	}()
	s.kickReindex()
}

func (s *Store) reindexLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		for {
			more, err := s.reindexStep(ctx)
			s.notifyProgress()
			if err != nil {
				if ctx.Err() == nil {
					// Left pending: the next lexicon change or restart retries.
					s.logger.Warn("re-index after lexicon change", "err", err)
				}
				break
			}
			if !more {
				break
			}
		}
	}
}

// reindexStep re-indexes one batch of one collection's pending chunks through
// the log, holding the write lock only for that batch so that writes and
// searches go on. It reports whether it did anything.
func (s *Store) reindexStep(ctx context.Context) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if ctx.Err() != nil {
		return false, nil
	}
	s.mu.RLock()
	var c *coll
	for _, name := range slices.Sorted(maps.Keys(s.colls)) {
		cc := s.colls[name]
		cc.mu.RLock()
		n := cc.pending
		cc.mu.RUnlock()
		if n > 0 {
			c = cc
			break
		}
	}
	s.mu.RUnlock()
	if c == nil {
		return false, nil
	}
	var p reindexState
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		p, err = readReindexState(txn, c.cfg.Name)
		return err
	}); err != nil {
		return false, fmt.Errorf("read re-index state of %s: %w", c.cfg.Name, err)
	}
	ids := p.remaining()
	if len(ids) == 0 {
		c.mu.Lock()
		c.pending = 0
		c.mu.Unlock()
		return true, nil
	}
	ids = ids[:min(len(ids), reindexBatch)]
	recs := []index.Record{{Op: index.OpReindex, Collection: c.cfg.Name, ChunkIDs: slices.Clone(ids)}}
	if err := s.commit(ctx, recs, nil); err != nil {
		return false, fmt.Errorf("re-index %d chunks of %s: %w", len(ids), c.cfg.Name, err)
	}
	return true, nil
}

// verifyLexicon checks, when no chunk waits to be re-indexed, that each
// chunk's stored field lengths (in the chunk and in its document) are those
// of its analysis with the lexicon in force. Called by Verify with wmu held.
func (s *Store) verifyLexicon(ctx context.Context, c *coll) error {
	c.mu.RLock()
	pending := c.pending
	c.mu.RUnlock()
	if pending > 0 {
		return nil
	}
	v := c.vocab.Load()
	name := c.cfg.Name
	n := 0
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + name + docKeyInfix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d index.Document
			if err := itemJSON(it.Item(), &d); err != nil {
				return err
			}
			for _, ref := range d.Chunks {
				if n++; n%256 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				var ch index.Chunk
				if err := readJSON(txn, chunkKey(name, ref.ID), &ch); err != nil {
					return fmt.Errorf("verify %s: chunk %s: %w", name, ref.ID, err)
				}
				a := bm25.Analyse(s.an, v, d.Title, &ch)
				lens := a.Lens()
				if ref.Lens != lens || ch.Lens != lens {
					return fmt.Errorf("verify %s: chunk %s has field lengths %v (document says %v); with the lexicon at version %d they are %v", name, ref.ID, ch.Lens, ref.Lens, v.Version(), lens)
				}
				if kws := a.Keywords(s.an); !slices.Equal(ref.Keywords, kws) || !slices.Equal(ch.Keywords, kws) {
					return fmt.Errorf("verify %s: chunk %s has keywords %v (document says %v); with the lexicon at version %d they are %v", name, ref.ID, ch.Keywords, ref.Keywords, v.Version(), kws)
				}
			}
		}
		return nil
	})
}
