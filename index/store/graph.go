package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
	gojson "github.com/goccy/go-json"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/graph"
)

// OutlineSearch returns the chunks of the sections whose heading paths best
// match the query words (see OutlineMinCover), at most k, passing the filter.
func (s *Store) OutlineSearch(ctx context.Context, collection string, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	if err := c.checkFilter(collection, f); err != nil {
		return nil, err
	}
	return c.graph.Outline(terms, &f, k), nil
}

// GraphSearch returns the chunks reached from the query words through the
// keyword graph, at most k, passing the filter.
func (s *Store) GraphSearch(ctx context.Context, collection string, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	if err := c.checkFilter(collection, f); err != nil {
		return nil, err
	}
	return c.graph.Expand(terms, &f, k), nil
}

// decodeValueFast is decodeValue with goccy/go-json, a faster decoder of
// the same behaviour (TestGraphDecoderMatchesStd): the graph's load decodes
// every document record at each open.
func decodeValueFast(key, b []byte, v any) error { return decodeWith(gojson.Unmarshal, key, b, v) }

// loadGraph builds a collection's graph from its stored documents, in key
// order. Decoding the records and analysing their headings is about 40% of
// the work, and is spread over the cores while this goroutine reads and
// another links the documents into the graph, in order.
func (s *Store) loadGraph(txn *badger.Txn, c *coll) error {
	type loadedDoc struct {
		key, value []byte
		d          index.Document
		secTerms   graph.SectionTerms
		err        error
		done       chan struct{}
	}
	work := make(chan *loadedDoc, 256)
	order := make(chan *loadedDoc, 1024)
	var workers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		workers.Go(func() {
			for ld := range work {
				if ld.err = decodeValueFast(ld.key, ld.value, &ld.d); ld.err == nil {
					ld.secTerms = c.graph.SectionTerms(&ld.d)
				}
				ld.value = nil
				close(ld.done)
			}
		})
	}
	linked := make(chan error, 1)
	go func() {
		var err error
		for ld := range order { // drained to the end, so that the reader never blocks
			<-ld.done
			switch {
			case err != nil:
			case ld.err != nil:
				err = fmt.Errorf("document %s: %w", ld.key, ld.err)
			default:
				c.graph.PutAnalysed(ld.d.ID, &ld.d, ld.secTerms)
			}
		}
		linked <- err
	}()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + c.cfg.Name + docKeyInfix), PrefetchValues: true})
	var readErr error
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		ld := &loadedDoc{key: item.KeyCopy(nil), done: make(chan struct{})}
		if ld.value, readErr = item.ValueCopy(nil); readErr != nil {
			readErr = fmt.Errorf("document %s: %w", ld.key, readErr)
			break
		}
		order <- ld
		work <- ld
	}
	it.Close()
	close(work)
	close(order)
	workers.Wait()
	return errors.Join(readErr, <-linked)
}

// verifyGraph checks that the collection's graph equals one built afresh from
// its stored documents (once no chunk waits to be re-indexed for a lexicon
// change: until then, headings may have been analysed with the old lexicon).
func (s *Store) verifyGraph(c *coll) error {
	c.mu.RLock()
	pending := c.pending
	c.mu.RUnlock()
	if pending > 0 {
		return nil
	}
	fresh := &coll{cfg: c.cfg, graph: graph.New(s.an, c.vocab.Load)}
	if err := s.db.View(func(txn *badger.Txn) error { return s.loadGraph(txn, fresh) }); err != nil {
		return err
	}
	if got, want := c.graph.Canonical(), fresh.graph.Canonical(); got != want {
		return fmt.Errorf("the keyword graph differs from the one built from the stored documents (%d vs %d lines)", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
	return nil
}

// graphVersion is the version of the chunk keywords a collection's chunks
// carry; a collection written before keywords existed has none, and
// upgradeGraph re-indexes it.
const graphVersion = 1

func graphVersionKey(name string) []byte { return []byte(collectionDataP + name + "/graphv") }

// upgradeGraph queues every chunk of a collection written before chunk
// keywords existed for a background re-index (the lexicon's re-index, which
// extracts keywords and updates the graph through the log), once. Called
// during Open, before the re-indexer starts.
func (s *Store) upgradeGraph(c *coll) error {
	name := c.cfg.Name
	var queued int
	err := s.db.Update(func(txn *badger.Txn) error {
		v, err := getUint(txn, graphVersionKey(name))
		if err != nil || v >= graphVersion {
			return err
		}
		p, err := readReindexState(txn, name)
		if err != nil {
			return err
		}
		ids := slices.Clone(p.remaining())
		seen := map[string]bool{}
		for _, id := range ids {
			seen[id] = true
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + name + docKeyInfix), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var d index.Document
			if err := itemJSON(it.Item(), &d); err != nil {
				it.Close()
				return fmt.Errorf("document %s: %w", it.Item().Key(), err)
			}
			for _, ch := range d.Chunks {
				if !seen[ch.ID] {
					seen[ch.ID] = true
					ids = append(ids, ch.ID)
				}
			}
		}
		it.Close()
		if err := writeReindexState(txn, name, reindexState{IDs: ids}); err != nil {
			return err
		}
		queued = len(ids)
		return putUint(txn, graphVersionKey(name), graphVersion)
	})
	if err != nil {
		return fmt.Errorf("upgrade graph of %s: %w", name, err)
	}
	if queued > 0 {
		c.mu.Lock()
		c.pending = queued
		c.mu.Unlock()
		s.logger.Info("collection written before keyword extraction: re-indexing in the background", "collection", name, "chunks", queued)
	}
	return nil
}
