package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

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

// A cleanly closed store leaves each collection's graph in its saved form
// (graph.AppendBinary) under graphDir, so that the next open reads it instead
// of rebuilding it from every document record (which decodes each record and
// analyses each heading again: most of a start-up). The file is used only when
// it is whole (its checksum), was written at the position Badger holds now (no
// write applied since), with the lexicon the collection has and an analyzer of
// the same fingerprint; else the graph is rebuilt, as after a crash. Open
// removes the files once read, so they exist only while the store is closed.
const graphDir = "graph"

// graphMagic and graphFormat head a saved graph's file: its header is the
// magic, then uvarints format, position and lexicon version, then the
// analyzer's fingerprint (8 bytes); its trailer is a CRC-32C of all before.
const (
	graphMagic  = "zhisou graph\x00"
	graphFormat = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// savedGraphBytesPerChunk is a little more than a saved graph takes per chunk
// (188 bytes on a million STARD chunks, 195 on 115 342).
const savedGraphBytesPerChunk = 224

func savedGraphPath(dir, name string) string { return filepath.Join(dir, graphDir, name) }

// saveGraphs writes each collection's saved graph. Called with wmu held (by
// Close, once the background work has stopped, and by the state loop while
// writes pause), so the graphs are those of the position. A graph that
// cannot be saved is logged: the next open rebuilds it. It reports whether
// every graph was saved.
func (s *Store) saveGraphs() bool {
	if s.damagedTables {
		return false // built from what damaged tables gave: never reused
	}
	// A save writes each file beside the one it replaces: it must not take
	// the disk into the reserve that keeps Badger's files writable.
	var need uint64
	for _, c := range s.colls {
		need += 2 * savedGraphBytesPerChunk * uint64(max(0, c.stats.Chunks))
	}
	if err := s.checkSpace("saving the keyword graphs", need); err != nil {
		s.logger.Warn("cannot save the keyword graphs; the next start catches up from the saved ones, or rebuilds them", "err", err)
		return false
	}
	if err := os.MkdirAll(filepath.Join(s.dir, graphDir), 0o755); err != nil {
		s.logger.Warn("cannot save the keyword graphs; the next start rebuilds them", "err", err)
		return false
	}
	ok := true
	for name, c := range s.colls {
		start := time.Now()
		// Sized at once: grown by appending, a million chunks' 190 MB
		// were copied over and over (a quarter of the save's time).
		b := make([]byte, 0, savedGraphBytesPerChunk*int(c.stats.Chunks)+64<<10)
		b = append(b, graphMagic...)
		b = binary.AppendUvarint(b, graphFormat)
		b = binary.AppendUvarint(b, s.pos)
		b = binary.AppendUvarint(b, c.vocab.Load().Version())
		b = binary.LittleEndian.AppendUint64(b, s.an.Fingerprint())
		b = c.graph.AppendBinary(b)
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		if err := writeFileDurably(savedGraphPath(s.dir, name), b); err != nil {
			s.logger.Warn("cannot save a keyword graph; the next start rebuilds it", "collection", name, "err", err)
			ok = false
			continue
		}
		s.logger.Debug("keyword graph saved", "collection", name, "bytes", len(b), "took", time.Since(start).Round(time.Millisecond))
	}
	if ok {
		s.graphsSaved = s.pos
	}
	return ok
}

// Between clean closes the graphs are saved again once the log has moved
// graphSaveRecords past the saved ones and writes have paused for
// graphSaveIdle: a save holds the write lock (about 0.6 s on 120 000 chunks,
// 3.5 s on a million), and after a crash an open catches up at most
// max(1 000, a quarter of the documents) records (catchUpGraph) before it
// rebuilds instead. Each store starts with these (Store.graphSaveRecords,
// graphSaveIdle).
const (
	graphSaveRecords uint64 = 500
	graphSaveIdle           = 10 * time.Second
)

// maybeSaveGraphs saves the graphs when the log has moved graphSaveRecords
// past them and not at all for graphSaveIdle (moved is when the position
// last changed). Called by the state loop.
func (s *Store) maybeSaveGraphs(moved time.Time) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if time.Since(moved) < s.graphSaveIdle || s.pos < s.graphsSaved+s.graphSaveRecords || s.damagedTables || s.isClosed() {
		return
	}
	start, from := time.Now(), s.graphsSaved
	if s.saveGraphs() {
		s.logger.Info("keyword graphs saved while writes paused", "from", from, "to", s.pos, "took", time.Since(start).Round(time.Millisecond))
	} else {
		s.graphsSaved = s.pos // not again until as many more records
	}
}

// SavedGraphs are the saved graphs of a data directory, being read and
// decoded on goroutines of their own (ReadSavedGraphs).
type SavedGraphs struct {
	dir    string
	graphs map[string]*savedGraph
	// resume ends the collector's pause while they decode (pauseGC).
	resume func()
}

// savedGraph is one collection's saved graph, read and decoded.
type savedGraph struct {
	done     chan struct{}
	g        *graph.Graph
	pos, lex uint64
	fp       uint64 // the analyzer's fingerprint
	err      error
	took     time.Duration
}

// ReadSavedGraphs starts reading and decoding each saved graph of the data
// directory dir, so that the work overlaps the rest of a start: loading the
// dictionary (pass the result as Options.SavedGraphs), Badger's open and the
// check of its tables (Open starts it itself when not given). The graphs are
// checked against the store once it is at its position (useSavedGraph);
// decoding needs neither the analyzer nor the lexicon, which are bound then.
func ReadSavedGraphs(dir string) *SavedGraphs {
	sgs := &SavedGraphs{dir: dir}
	entries, err := os.ReadDir(filepath.Join(dir, graphDir))
	if err != nil {
		return sgs // none (or unreadable: the graphs are rebuilt)
	}
	sgs.graphs = map[string]*savedGraph{}
	var size int64
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
		sg := &savedGraph{done: make(chan struct{})}
		sgs.graphs[e.Name()] = sg
		go func() {
			defer close(sg.done)
			start := time.Now()
			b, err := os.ReadFile(filepath.Join(dir, graphDir, e.Name()))
			if err == nil {
				err = sg.decode(b)
			}
			sg.err, sg.took = err, time.Since(start)
		}()
	}
	if len(sgs.graphs) > 0 {
		// Also when no store takes them (a failed start).
		sgs.resume = pauseGC(size)
		go sgs.wait()
	}
	return sgs
}

// wait waits for every graph's decoding to end, and then ends the
// collector's pause.
func (sgs *SavedGraphs) wait() {
	for _, sg := range sgs.graphs {
		<-sg.done
	}
	if sgs.resume != nil {
		sgs.resume()
	}
}

// decode checks b's frame (magic, checksum, format) and decodes its graph.
func (sg *savedGraph) decode(b []byte) error {
	body, ok := bytes.CutPrefix(b, []byte(graphMagic))
	if !ok || len(body) < 4 {
		return errors.New("not a saved graph")
	}
	body, sum := body[:len(body)-4], binary.LittleEndian.Uint32(body[len(body)-4:])
	if crc32.Checksum(b[:len(b)-4], castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", index.ErrDamaged)
	}
	format, n := binary.Uvarint(body)
	if n <= 0 || format != graphFormat {
		return fmt.Errorf("format %d, not %d", format, graphFormat)
	}
	body = body[n:]
	if sg.pos, n = binary.Uvarint(body); n <= 0 {
		return errors.New("no position")
	}
	body = body[n:]
	if sg.lex, n = binary.Uvarint(body); n <= 0 {
		return errors.New("no lexicon version")
	}
	body = body[n:]
	if len(body) < 8 {
		return errors.New("no analyzer fingerprint")
	}
	sg.fp = binary.LittleEndian.Uint64(body)
	g := graph.New(nil, nil)
	if err := g.Load(body[8:]); err != nil {
		return err
	}
	sg.g = g
	return nil
}

// useSavedGraph makes c's graph its saved one when there is one that fits
// the store (else it logs why not, and the caller rebuilds the graph): read
// whole, saved with this dictionary and lexicon, from tables that are not
// damaged, at the store's position or brought up to it (catchUpGraph), and
// holding as many documents and chunks as the collection. txn reads the
// documents that changed since it was saved.
func (s *Store) useSavedGraph(ctx context.Context, txn *badger.Txn, c *coll) bool {
	sg := s.saved.graphs[c.cfg.Name]
	if sg == nil {
		return false
	}
	<-sg.done
	err := sg.err
	var caughtUp int
	switch {
	case err != nil:
	case sg.fp != s.an.Fingerprint():
		err = errors.New("saved with another segmentation dictionary")
	case s.damagedTables:
		err = errors.New("badger's tables are damaged")
	case sg.pos > s.pos:
		err = fmt.Errorf("saved at position %d; the store is at %d", sg.pos, s.pos)
	case sg.lex != c.vocab.Load().Version():
		err = fmt.Errorf("saved with lexicon version %d; the collection has %d", sg.lex, c.vocab.Load().Version())
	case sg.pos < s.pos:
		sg.g.Bind(s.an, c.vocab.Load)
		caughtUp, err = s.catchUpGraph(ctx, txn, c.cfg.Name, sg)
	}
	if err == nil {
		if docs, chunks := sg.g.Size(); int64(docs) != c.stats.Docs || int64(chunks) != c.stats.Chunks {
			err = fmt.Errorf("it has %d documents and %d chunks; the collection has %d and %d", docs, chunks, c.stats.Docs, c.stats.Chunks)
		}
	}
	if err != nil {
		s.logger.Info("saved keyword graph not used; rebuilding it from the documents", "collection", c.cfg.Name, "file", savedGraphPath(s.dir, c.cfg.Name), "reason", err)
		return false
	}
	sg.g.Bind(s.an, c.vocab.Load)
	c.graph = sg.g
	s.graphsSaved = min(s.graphsSaved, sg.pos)
	docs, chunks := c.graph.Size()
	s.logger.Debug("keyword graph read from its saved form", "collection", c.cfg.Name, "docs", docs, "chunks", chunks, "took", sg.took.Round(time.Millisecond))
	if sg.pos < s.pos {
		s.logger.Info("saved keyword graph brought up to date from the write log", "collection", c.cfg.Name, "from", sg.pos, "to", s.pos, "documents", caughtUp)
	}
	return true
}

// maxGraphCatchUp is the most records an older saved graph of docs documents
// is brought up to date through; past it the graph is rebuilt, which reads
// the documents on every core.
func maxGraphCatchUp(docs int64) uint64 { return uint64(max(1000, docs/4)) }

// catchUpGraph brings a graph saved at an older position (the last clean
// close, before a crash) up to the store's: the records since then name the
// documents that can differ, and each is read again from Badger (or removed
// when Badger no longer has it). Only the documents' records are followed:
// one that changes the collection otherwise (its lexicon, a re-index, its
// deletion or creation) is an error, as is a log that no longer holds every
// record since the graph's position; the caller rebuilds. It returns the
// number of documents read again.
func (s *Store) catchUpGraph(ctx context.Context, txn *badger.Txn, name string, sg *savedGraph) (int, error) {
	docs, _ := sg.g.Size()
	if n := s.pos - sg.pos; n > cmp.Or(s.maxGraphCatchUp, maxGraphCatchUp(int64(docs))) {
		return 0, fmt.Errorf("saved at position %d; the store is at %d, %d records later", sg.pos, s.pos, n)
	}
	if first := s.log.First(); first > sg.pos+1 {
		return 0, fmt.Errorf("saved at position %d; the write log no longer holds the records from %d (it starts at %d)", sg.pos, sg.pos+1, first)
	}
	changed := map[string]bool{}
	errEnd := errors.New("at the store's position")
	err := s.replayCaught(ctx, sg.pos, func(r index.Record) error {
		switch {
		case r.Seq > s.pos:
			return errEnd
		case r.Collection != name:
		case r.Op == index.OpUpsert && r.Doc != nil:
			changed[r.Doc.ID] = true
		case r.Op == index.OpDelete:
			changed[r.DocID] = true
		case r.Op == index.OpLearn || r.Op == index.OpPutKey:
		default:
			return fmt.Errorf("record %d (%s) changes the collection since the graph was saved", r.Seq, r.Op)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnd) {
		return 0, err
	}
	ids := slices.Sorted(maps.Keys(changed))
	for _, id := range ids {
		var d index.Document
		switch err := readJSON(txn, docKey(name, id), &d); {
		case errors.Is(err, index.ErrNotFound):
			sg.g.Put(id, nil)
		case err != nil:
			return 0, fmt.Errorf("document %s: %w", id, err)
		default:
			sg.g.Put(id, &d)
		}
	}
	return len(ids), nil
}

// doneWithSavedGraphs lets go of the saved graphs once Open has read them
// (or rebuilt the graphs instead). The files stay: after a crash, the next
// open brings them up to date from the write log (catchUpGraph); a clean
// close replaces them. A store opened with damaged tables removes them: what
// it holds is no longer what they describe, and its own graphs are never
// saved.
func (s *Store) doneWithSavedGraphs() {
	s.saved.wait()
	s.saved = nil
	if s.damagedTables {
		if err := os.RemoveAll(filepath.Join(s.dir, graphDir)); err != nil {
			s.logger.Warn("cannot remove the saved keyword graphs", "err", err)
		}
		return
	}
	// What a kill during a save left, and the graphs of collections that
	// are gone.
	entries, _ := os.ReadDir(filepath.Join(s.dir, graphDir))
	for _, e := range entries {
		if _, ok := s.colls[e.Name()]; ok {
			continue
		}
		p := filepath.Join(s.dir, graphDir, e.Name())
		if err := os.Remove(p); err != nil {
			s.logger.Warn("cannot remove a saved keyword graph's leftover", "file", p, "err", err)
		}
	}
}
