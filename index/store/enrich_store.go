package store

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/zhisou/zhisou/index"
)

// What a language model wrote about a chunk (index.Generated) is written with
// the document, in the same record, so every replica holds the same; the
// store keeps it in the document record's chunk references and under
// c/<collection>/g/<chunk id> with the chunk's content hash. The learner
// reads it from there: each generated question (and the keywords, as one
// line) is remembered like a labelled question naming its chunk, at a lower
// weight (index/learn.GeneratedWeight).
const generatedKeyInfix = "/g/"

func generatedKey(c, id string) []byte { return []byte(collectionDataP + c + generatedKeyInfix + id) }

func generatedPrefix(c string) []byte { return []byte(collectionDataP + c + generatedKeyInfix) }

// storedGenerated is the value under generatedKey.
type storedGenerated struct {
	// Hash is the content hash of the chunk it was written about.
	Hash string `json:"hash"`
	index.Generated
}

// Enricher writes what a language model says about chunks into them
// (Chunk.Generated) before they are written (package ingest/enrich). It never
// fails a write: a chunk it could not enrich is written without.
type Enricher interface {
	// Enrich fills Generated in the chunks of docs that lack it. Chunks
	// are sealed (Hash set). stored returns what the store already holds
	// about a chunk with the same id and content (nil if nothing), to be
	// reused instead of asked for again.
	Enrich(ctx context.Context, collection string, docs []index.Document, stored func(*index.Chunk) *index.Generated)
}

// enrich runs the store's enricher over docs (sealed), then seals them again:
// the documents' hashes cover what was generated.
func (s *Store) enrich(ctx context.Context, collection string, docs []index.Document) {
	if s.enricher == nil {
		return
	}
	s.enricher.Enrich(ctx, collection, docs, func(c *index.Chunk) *index.Generated {
		g, err := s.storedGenerated(collection, c)
		if err != nil {
			s.logger.Warn("enrich: stored questions unreadable; asking again", "chunk", c.ID, "err", err)
		}
		return g
	})
	for i := range docs {
		docs[i].Seal()
	}
}

// storedGenerated returns what is stored about chunk c's id, if it was
// written about the same content.
func (s *Store) storedGenerated(collection string, c *index.Chunk) (*index.Generated, error) {
	var sg storedGenerated
	err := s.db.View(func(txn *badger.Txn) error { return readJSON(txn, generatedKey(collection, c.ID), &sg) })
	switch {
	case errors.Is(err, index.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case sg.Hash != c.Hash:
		return nil, nil
	}
	return &sg.Generated, nil
}

// hasGenerated reports whether a record brings generated content, which
// the collection's learned model is built from.
func hasGenerated(r *index.Record) bool {
	if r.Op != index.OpUpsert || r.Doc == nil {
		return false
	}
	for i := range r.Doc.Chunks {
		if r.Doc.Chunks[i].Generated != nil {
			return true
		}
	}
	return false
}
