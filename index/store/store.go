package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/graph"
)

// Options configures Open. The zero value is valid.
type Options struct {
	// SavedGraphs, when set, are the data directory's saved keyword graphs
	// already being read (ReadSavedGraphs), for a caller that starts that
	// before it loads the dictionary; nil: Open starts it.
	SavedGraphs *SavedGraphs
	// Logger receives Badger's warnings and the store's recovery messages; nil
	// discards them.
	Logger *slog.Logger
	// MinFreeBytes is the free space that writes must leave on the data
	// directory's filesystem (see space.go); 0 means DefaultMinFreeBytes.
	MinFreeBytes uint64
	// AcceptDamage opens a store that holds less than its state file says it
	// had applied (see state.go), logging what is missing, instead of failing
	// with ErrDamaged: the operator's explicit choice to serve what is left.
	AcceptDamage bool
	// LogSegmentBytes is the size of the write log's segment files (see
	// package wal); 0 means wal.DefaultSegmentBytes. The log is shortened a
	// whole segment at a time.
	LogSegmentBytes int64
	// MemoryBytes is the memory budget of the process that holds the store
	// (0: none); the store's caches are sized from it (cacheSizes).
	MemoryBytes uint64
	// Log, when set, is a write log shared with other nodes (package
	// natslog): the store applies every record of it, other nodes' too,
	// and keeps no log of its own (see shared.go). The store closes it when
	// it closes (or fails to open).
	Log SharedLog
	// Enricher, when set, writes generated questions and keywords into the
	// chunks of every upsert before it is logged (see enrich_store.go); nil
	// (the default) writes documents as they come.
	Enricher Enricher
	// maxGraphCatchUp, for tests, replaces the most records an older saved
	// graph is brought up to date through (0: maxGraphCatchUp's rule).
	maxGraphCatchUp uint64
}

// cacheSizes are the store's cache budgets under a memory budget (0: the
// defaults): Badger's block cache (used only while compressed tables
// remain) and the chunk cache 1/32 of it each, each
// collection's postings caches 1/8, none above its default.
func cacheSizes(budget uint64) (block, chunks int64, postings int) {
	block, chunks, postings = 64<<20, chunkCacheBytes, bm25.DefaultCacheBytes
	if budget == 0 {
		return
	}
	return min(block, int64(budget/32)), min(chunks, int64(budget/32)), min(postings, int(budget/8))
}

// Store is a data directory: the write log, Badger (the truth: collections,
// documents, chunks, statistics) and one bleve index per collection.
//
// Writes are serialised: each is appended to the log (durably), then applied to
// Badger and to bleve, each of which records the applied log position
// atomically with its data. Reads run concurrently with writes.
type Store struct {
	dir string
	db  *badger.DB
	log Log
	// local is the local write log; nil when the log is shared.
	local *fileLog
	// shared is Options.Log: the write log shared with other nodes.
	shared SharedLog
	// enricher is Options.Enricher (nil: none).
	enricher Enricher
	an       *analysis.Analyzer
	logger   *slog.Logger

	wmu sync.Mutex // serialises writes and position changes
	pos uint64     // Badger's applied position; guarded by wmu
	// textBehind is set when a bleve write failed after Badger applied its
	// records: the indexes are behind until the next open replays them
	// (markTextPositions must not hide that); guarded by wmu.
	textBehind bool
	// applied is pos as last published by notePos, for readers; posMoved
	// is closed (and replaced, under posMu) when it moves.
	applied  atomic.Uint64
	posMu    sync.Mutex
	posMoved chan struct{}
	// stopFollow stops the shared log's follower; followDone is closed when
	// it has returned.
	stopFollow chan struct{}
	followDone chan struct{}

	mu     sync.RWMutex // guards colls and closed
	colls  map[string]*coll
	closed bool

	// chunks caches decoded chunk versions for hits, keyed by collection and
	// bleve id (id@hash): a key's value never changes.
	chunks *ristretto.Cache[string, *cachedChunk]
	// postingsCache bounds each collection's postings caches (bm25.Options).
	postingsCache int

	// The background re-indexer (see lexicon_store.go): stop cancels it,
	// reindexDone is closed when it has returned, kick wakes it up.
	stopReindex context.CancelFunc
	reindexDone chan struct{}
	kick        chan struct{}
	// The learner (learn_store.go): learnKick wakes it, learnStop stops it,
	// learnDone is closed when it has returned; learnBuilt is closed (and
	// replaced, under learnMu) after each round of builds.
	learnKick            chan struct{}
	learnStop, learnDone chan struct{}
	learnMu              sync.Mutex
	learnBuilt           chan struct{}
	// progress is closed (and replaced) whenever re-indexing moves on.
	progressMu sync.Mutex
	progress   chan struct{}
	// vocabs caches compiled lexicons by collection for applyBadger, which
	// runs before collections are loaded at start; guarded by wmu.
	vocabs map[string]*analysis.Vocab
	// quarantined holds the sequence numbers of the log records set aside
	// because they could not be applied (see quarantine.go); guarded by wmu.
	quarantined map[uint64]bool
	// minFree is Options.MinFreeBytes, defaulted.
	minFree uint64
	// acceptDamage is Options.AcceptDamage.
	acceptDamage bool
	// damagedTables is set when Badger's tables failed their check at open
	// (and acceptDamage opened them anyway): what Badger reads may be less
	// than what was written, so saved graphs are not used.
	damagedTables bool
	// saved are the saved graphs being read during Open (nil after).
	saved *SavedGraphs
	// caught holds the records Badger's catch-up read during Open, for the
	// bleve indexes' (empty after Open).
	caught caughtUp
	// graphsSaved is the oldest position of the saved graphs on disk (0
	// when a collection has none); guarded by wmu, as are graphSaveRecords
	// and graphSaveIdle (see maybeSaveGraphs; tests change them).
	graphsSaved      uint64
	graphSaveRecords uint64
	graphSaveIdle    time.Duration
	maxGraphCatchUp  uint64 // Options.maxGraphCatchUp
	// opening are the bleve indexes being opened and checked during Open,
	// by collection name (nil after).
	opening map[string]*textOpen
	// segBytes is the write log's segment size (Options.LogSegmentBytes).
	segBytes int64
	// statePos is the position the state file last recorded; guarded by wmu.
	statePos uint64
	// stopState stops the state file's writer; stateDone is closed when it
	// has returned.
	stopState chan struct{}
	stateDone chan struct{}
	// maxTxnBytes, when set, replaces half of Badger's transaction limit as
	// the budget of a record's chunk writes (see large.go): tests lower it.
	maxTxnBytes int64
}

type coll struct {
	cfg   index.Collection
	text  *bm25.Index
	graph *graph.Graph
	// vocab is the lexicon in force (nil for none): read by every search and
	// every write's analysis, replaced whole by an OpLexicon.
	vocab atomic.Pointer[analysis.Vocab]

	mu       sync.RWMutex // guards stats, metaKeys and pending
	stats    index.Stats
	metaKeys map[string]bool
	// pending is the number of chunks waiting to be re-indexed after a
	// lexicon change.
	pending int
	// learn is the model learned from labelled pairs (learn_store.go).
	learn learnState
}

// Badger keys. Everything of a collection is under "c/<name>/".
var (
	posBadgerKey    = []byte("sys/pos")
	collectionKeyP  = "coll/"
	docKeyInfix     = "/d/"
	chunkKeyInfix   = "/k/"
	tombKeyInfix    = "/t/"
	metaKeyInfix    = "/m/"
	statsKeySuffix  = "/stats"
	collectionDataP = "c/"
)

func collPrefix(name string) []byte { return []byte(collectionDataP + name + "/") }
func docKey(c, id string) []byte    { return []byte(collectionDataP + c + docKeyInfix + id) }
func chunkKey(c, id string) []byte  { return []byte(collectionDataP + c + chunkKeyInfix + id) }
func tombKey(c, id string) []byte   { return []byte(collectionDataP + c + tombKeyInfix + id) }
func metaKey(c, k string) []byte    { return []byte(collectionDataP + c + metaKeyInfix + k) }
func statsKey(c string) []byte      { return []byte(collectionDataP + c + statsKeySuffix) }

// Open opens (or creates) the data directory dir. A directory that another
// process holds gives an error matching ErrLocked. On open each derived store
// catches up from its own position in the log; a missing or damaged bleve index
// is rebuilt from Badger.
func Open(ctx context.Context, dir string, an *analysis.Analyzer, opts Options) (_ *Store, err error) {
	// Until the store holds the log, whose Close closes it, a failed open
	// closes it here.
	owned := false
	defer func() {
		if err != nil && !owned && opts.Log != nil {
			err = errors.Join(err, opts.Log.Close())
		}
	}()
	if an == nil {
		return nil, errors.New("open store: nil analyzer")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bleve"), 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	blockCache, chunkCache, postingsCache := cacheSizes(opts.MemoryBytes)
	bo := badger.DefaultOptions(filepath.Join(dir, "badger")).
		WithLogger(badgerLogger{logger}).
		WithSyncWrites(false). // the write log is synced; Badger catches up from it
		WithMemTableSize(32 << 20).
		WithBlockCacheSize(blockCache).
		WithValueLogFileSize(256 << 20).
		// Tables uncompressed (Badger's default is Snappy): every block is
		// checked at each open, and read for each hit, and decompressing
		// them was most of the check's time and garbage; the tables take
		// about 2.4 times the disk (a store's tables written before keep
		// their compression, which each table records).
		WithCompression(options.None).
		// Damage is an error, not silently different data: each block's
		// checksum is verified when it is read, every value's read from the
		// value log, and every table's once at open (verifyTableBlocks: a
		// block that fails its check reads as absent in Badger's lookups).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true)
	if free, err := freeBytes(dir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	} else if min := cmp.Or(opts.MinFreeBytes, DefaultMinFreeBytes); free < min {
		return nil, fmt.Errorf("open store %s: %w: %s free, and opening needs %s (it catches up from its log); free some space and retry",
			dir, index.ErrNoSpace, mib(free), mib(min))
	}
	checked := time.Now()
	tables, damaged, err := checkBadgerDir(bo.Dir, logger)
	if err != nil {
		if errors.Is(err, index.ErrLocked) {
			return nil, fmt.Errorf("open store %s: %w (stop the server, or talk to it with -addr)", dir, index.ErrLocked)
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if damaged != nil {
		if !opts.AcceptDamage {
			return nil, fmt.Errorf("open store %s: %w; restore the data directory from a backup, or open it anyway with -accept-damage", dir, damaged)
		}
		logger.Error("opening a damaged store, as -accept-damage asks", "err", damaged)
	}
	damagedTables := damaged != nil
	logger.Debug("badger tables verified", "tables", len(tables), "took", time.Since(checked).Round(time.Millisecond))
	if !anyCompressed(tables) {
		// Badger needs a block cache only to keep blocks it decompressed
		// (tables written before they were uncompressed); without, a
		// block is read where the table is mapped.
		bo = bo.WithBlockCacheSize(0)
	}
	saved := opts.SavedGraphs
	if saved == nil || saved.dir != dir {
		saved = ReadSavedGraphs(dir)
	}
	defer saved.wait() // not left decoding after a failed open
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open store %s: %w (stop the server, or talk to it with -addr)", dir, index.ErrLocked)
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *cachedChunk]{NumCounters: 200_000, MaxCost: chunkCache, BufferItems: 1024})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store: chunk cache: %w", err), db.Close())
	}
	s := &Store{dir: dir, db: db, an: an, logger: logger, colls: map[string]*coll{}, chunks: cache,
		kick: make(chan struct{}, 1), progress: make(chan struct{}), vocabs: map[string]*analysis.Vocab{}, quarantined: map[uint64]bool{},
		acceptDamage: opts.AcceptDamage, postingsCache: postingsCache, segBytes: opts.LogSegmentBytes, minFree: cmp.Or(opts.MinFreeBytes, DefaultMinFreeBytes),
		shared: opts.Log, enricher: opts.Enricher, posMoved: make(chan struct{}), damagedTables: damagedTables, saved: saved,
		graphSaveRecords: graphSaveRecords, graphSaveIdle: graphSaveIdle, maxGraphCatchUp: opts.maxGraphCatchUp}
	owned = true
	removeSnapshotLeftovers(dir) // under Badger's lock: no other process snapshots here
	s.openTexts()
	err = s.recover(ctx)
	s.closeUnusedTexts()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", dir, err), s.Close())
	}
	s.notePos()
	s.startReindexer()
	s.startLearner()
	s.kickLearner()
	s.stopState, s.stateDone = make(chan struct{}), make(chan struct{})
	go s.stateLoop(s.stopState, s.stateDone)
	if s.shared != nil {
		s.stopFollow, s.followDone = make(chan struct{}), make(chan struct{})
		go s.follow(s.stopFollow, s.followDone)
	}
	return s, nil
}

// Analyzer returns the analyzer the store indexes with.
func (s *Store) Analyzer() *analysis.Analyzer { return s.an }

func (s *Store) recover(ctx context.Context) error {
	phase := time.Now()
	if s.shared != nil {
		if err := s.openShared(); err != nil {
			return err
		}
	} else if err := s.refuseShared(); err != nil {
		return err
	} else if err := s.openLog(ctx); err != nil {
		return err
	}
	if err := s.loadQuarantined(); err != nil {
		return fmt.Errorf("read quarantined records: %w", err)
	}
	// Badger first: it is the truth the derived indexes are rebuilt from. A
	// record that can never be applied is set aside, not left to fail every
	// open.
	s.logger.Debug("write log opened", "took", time.Since(phase).Round(time.Millisecond))
	from := s.pos
	s.caught = caughtUp{from: max(s.pos, s.log.First()-1), keep: s.shared != nil}
	err := s.replayRetry(ctx, s.caught.from, func(r index.Record) error {
		s.caught.add(r)
		if quarantined, err := s.applyOrQuarantine(&r); !quarantined {
			return err
		}
		return nil // set aside and logged
	})
	if err != nil {
		return fmt.Errorf("catch up badger: %w", err)
	}
	defer func() { s.caught = caughtUp{} }() // only the bleve indexes' catch-up below reads it
	if s.pos > from {
		s.logger.Info("badger caught up from the log", "from", from, "to", s.pos)
	}
	phase = time.Now()
	if err := s.loadCollections(ctx); err != nil {
		return err
	}
	s.logger.Debug("collections and graphs loaded", "collections", len(s.colls), "took", time.Since(phase).Round(time.Millisecond))
	s.doneWithSavedGraphs()
	for _, c := range s.colls {
		if err := s.upgradeGraph(c); err != nil {
			return err
		}
	}
	// Before the log is truncated: the check reads the records since the
	// state file was written.
	if err := s.checkState(ctx); err != nil {
		return err
	}
	if err := s.saveState(); err != nil {
		return err
	}
	low, truncated := s.pos, s.log.First()-1 // one look (a shared log's is a request)
	phase = time.Now()
	for _, c := range s.colls {
		p, err := s.openCollectionText(ctx, c, truncated)
		if err != nil {
			return err
		}
		low = min(low, p)
	}
	s.logger.Debug("bleve indexes opened and checked", "took", time.Since(phase).Round(time.Millisecond))
	// Decode the common terms' postings in the background, so that the
	// first searches after a start find them cached.
	for _, c := range s.colls {
		c.text.StartPrewarm(bm25.NewParams(c.cfg, c.stats))
	}
	return s.dropLog(low)
}

// dropLog drops the log's records up to upto, or as many of them as a
// backup holds: a record leaves the log only once a backup has it, so that
// a damaged Badger can be rebuilt from the newest backup and the log.
// Called with wmu held, or during Open.
func (s *Store) dropLog(upto uint64) error {
	if s.shared != nil {
		return nil // the shared log's retention is its servers'
	}
	var backupPos uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		backupPos, err = getUint(txn, backupPosKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("read the backup position: %w", err)
	}
	upto = min(upto, backupPos)
	if upto < s.log.First() {
		return nil
	}
	// What the log drops must be durable in Badger first.
	if err := s.db.Sync(); err != nil {
		return err
	}
	return s.log.Truncate(upto)
}

func (s *Store) loadCollections(ctx context.Context) error {
	s.graphsSaved = s.pos
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionKeyP), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var cfg index.Collection
			if err := itemJSON(it.Item(), &cfg); err != nil {
				return fmt.Errorf("read collection %s: %w", it.Item().Key(), err)
			}
			c := &coll{cfg: cfg, metaKeys: map[string]bool{}}
			c.learn.want, c.learn.held = 1, -1 // the learner looks for pairs
			c.graph = graph.New(s.an, c.vocab.Load)
			if err := readJSON(txn, statsKey(cfg.Name), &c.stats); err != nil && !errors.Is(err, index.ErrNotFound) {
				return err
			}
			st, err := s.readLexiconState(txn, cfg.Name)
			if err != nil {
				return err
			}
			c.vocab.Store(st.vocab)
			c.pending = st.pending
			mit := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey(cfg.Name, "")})
			for mit.Rewind(); mit.Valid(); mit.Next() {
				c.metaKeys[strings.TrimPrefix(string(mit.Item().Key()), string(metaKey(cfg.Name, "")))] = true
			}
			mit.Close()
			if s.useSavedGraph(ctx, txn, c) {
				s.colls[cfg.Name] = c
				continue
			}
			s.graphsSaved = 0
			c.graph.Reserve(int(c.stats.Docs), int(c.stats.Chunks))
			if err := s.loadGraph(txn, c); err != nil {
				return fmt.Errorf("load graph of %s: %w", cfg.Name, err)
			}
			s.colls[cfg.Name] = c
		}
		return nil
	})
}

// openCollectionText opens a collection's bleve index and brings it to Badger's
// position: by replaying the log when the log still holds what it missed, else
// by rebuilding it from Badger. It returns the index's position.
func (s *Store) openCollectionText(ctx context.Context, c *coll, truncated uint64) (uint64, error) {
	o := s.opening[c.cfg.Name]
	if o == nil {
		o = s.openText(c.cfg.Name)
	} else {
		delete(s.opening, c.cfg.Name)
	}
	<-o.done
	t, p, err := o.t, o.pos, o.err
	if err != nil || p < truncated {
		if errors.Is(err, bm25.ErrFormat) {
			s.logger.Info("bleve index has an older format; rebuilding from badger", "collection", c.cfg.Name, "err", err)
		} else if err != nil {
			s.logger.Warn("bleve index unreadable; rebuilding from badger", "collection", c.cfg.Name, "err", err)
		} else {
			s.logger.Warn("bleve index is behind the retained log; rebuilding from badger", "collection", c.cfg.Name, "pos", p, "log_truncated", truncated)
			_ = t.Close() // rebuilt below; a close error changes nothing
		}
		return s.rebuildText(ctx, c)
	}
	c.text = t
	if p >= s.pos {
		return p, nil
	}
	var recs []index.Record
	// replayRetry: all of it, or an error (a shared log's replay may
	// deliver part of what is there); or what Badger's catch-up read.
	err = s.replayCaught(ctx, p, func(r index.Record) error {
		if r.Collection == c.cfg.Name && (r.Op == index.OpUpsert || r.Op == index.OpDelete || r.Op == index.OpReindex) {
			recs = append(recs, r)
		}
		if len(recs) >= 256 {
			err := s.applyText(ctx, c, recs, nil)
			recs = recs[:0]
			return err
		}
		return nil
	})
	if err == nil {
		err = s.applyText(ctx, c, recs, nil)
	}
	if err == nil {
		err = s.setTextPos(c, s.pos)
	}
	if errors.Is(err, index.ErrUnavailable) && s.shared != nil {
		// The shared log does not answer: Badger holds what is needed.
		s.logger.Warn("the shared log does not answer; rebuilding the bleve index from badger", "collection", c.cfg.Name, "err", err)
		_ = t.Close() // rebuilt; a close error changes nothing
		return s.rebuildText(ctx, c)
	}
	if err != nil {
		return 0, fmt.Errorf("catch up bleve index of %s: %w", c.cfg.Name, err)
	}
	s.logger.Info("bleve index caught up from the log", "collection", c.cfg.Name, "from", p, "to", s.pos)
	return s.pos, nil
}

// textOpen is a bleve index being opened and checked (openText).
type textOpen struct {
	done chan struct{} // closed when the fields below are set
	t    *bm25.Index   // nil when err is set
	pos  uint64
	err  error
}

// openText opens and checks the bleve index of a collection on a goroutine
// of its own. The index is derived: one whose files fail their checksums is
// rebuilt, never searched (openCollectionText decides).
func (s *Store) openText(name string) *textOpen {
	o := &textOpen{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		t, err := bm25.Open(filepath.Join(s.dir, "bleve", name), bm25.Options{CacheBytes: s.postingsCache})
		if err == nil {
			if err = t.CheckFiles(); err == nil {
				o.pos, err = t.Pos()
			}
			if err != nil {
				err = errors.Join(err, t.Close())
			}
		}
		if err == nil {
			o.t = t
		}
		o.err = err
	}()
	return o
}

// openTexts starts opening every bleve index in the data directory, while
// Open reads Badger and the keyword graphs: at a million chunks the open
// and its checksums took half a second after everything else. Called under
// Badger's directory lock, so no other process has them open.
func (s *Store) openTexts() {
	entries, err := os.ReadDir(filepath.Join(s.dir, "bleve"))
	if err != nil {
		return // openCollectionText opens each itself and reports
	}
	s.opening = map[string]*textOpen{}
	for _, e := range entries {
		if e.IsDir() {
			s.opening[e.Name()] = s.openText(e.Name())
		}
	}
}

// closeUnusedTexts closes the indexes openTexts opened that no collection
// took (a directory of no collection, or an open that failed before it got
// there).
func (s *Store) closeUnusedTexts() {
	for name, o := range s.opening {
		<-o.done
		if o.t != nil {
			if err := o.t.Close(); err != nil {
				s.logger.Warn("close an unused bleve index", "dir", name, "err", err)
			}
		}
	}
	s.opening = nil
}

func (s *Store) setTextPos(c *coll, p uint64) error {
	b := c.text.NewBatch()
	b.SetPos(p)
	return c.text.Apply(b)
}

// rebuildText recreates a collection's bleve index from the chunks in Badger.
func (s *Store) rebuildText(ctx context.Context, c *coll) (uint64, error) {
	dir := filepath.Join(s.dir, "bleve", c.cfg.Name)
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("rebuild bleve index of %s: %w", c.cfg.Name, err)
	}
	t, err := bm25.Open(dir, bm25.Options{CacheBytes: s.postingsCache})
	if err != nil {
		return 0, err
	}
	c.text = t
	batch := t.NewBatch()
	n := 0
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionDataP + c.cfg.Name + docKeyInfix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d index.Document
			if err := itemJSON(it.Item(), &d); err != nil {
				return err
			}
			for _, ref := range d.Chunks {
				var ch index.Chunk
				if err := readJSON(txn, chunkKey(c.cfg.Name, ref.ID), &ch); err != nil {
					return err
				}
				if err := batch.Index(&d, &ch, bm25.Analyse(s.an, c.vocab.Load(), d.Title, &ch)); err != nil {
					return err
				}
				if n++; n%500 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
					if err := t.Apply(batch); err != nil {
						return err
					}
					batch = t.NewBatch()
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild bleve index of %s: %w", c.cfg.Name, err)
	}
	batch.SetPos(s.pos)
	if err := t.Apply(batch); err != nil {
		return 0, fmt.Errorf("rebuild bleve index of %s: %w", c.cfg.Name, err)
	}
	s.logger.Info("bleve index rebuilt from badger", "collection", c.cfg.Name, "chunks", n)
	return s.pos, nil
}

// Close closes every index and Badger.
func (s *Store) Close() error {
	if s.stopFollow != nil {
		select {
		case <-s.stopFollow:
		default:
			close(s.stopFollow)
		}
		<-s.followDone
	}
	if s.stopReindex != nil {
		s.stopReindex()
		<-s.reindexDone
	}
	s.stopLearner()
	if s.stopState != nil {
		select {
		case <-s.stopState:
		default:
			close(s.stopState)
		}
		<-s.stateDone
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var errs []error
	if !s.isClosed() && s.stopState != nil {
		errs = append(errs, s.markTextPositions(), s.saveState())
		s.saveGraphs()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, c := range s.colls {
		if c.text != nil {
			errs = append(errs, c.text.Close())
		}
	}
	errs = append(errs, s.db.Close())
	if s.shared != nil {
		errs = append(errs, s.shared.Close())
	}
	if s.local != nil {
		errs = append(errs, s.local.w.Close())
	}
	s.chunks.Close()
	return errors.Join(errs...)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Positions reports the log position each store has applied: Badger's, and
// each collection's bleve index (keyed by collection name).
func (s *Store) Positions() (badgerPos uint64, text map[string]uint64, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.positions()
}

// TryPositions is Positions without waiting for a write in progress: ok is
// false while one holds the write lock (a metrics scrape skips them then).
func (s *Store) TryPositions() (badgerPos uint64, text map[string]uint64, ok bool, err error) {
	if !s.wmu.TryLock() {
		return 0, nil, false, nil
	}
	defer s.wmu.Unlock()
	badgerPos, text, err = s.positions()
	return badgerPos, text, true, err
}

// positions is Positions; called with wmu held.
func (s *Store) positions() (badgerPos uint64, text map[string]uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	text = map[string]uint64{}
	for name, c := range s.colls {
		p, err := c.text.Pos()
		if err != nil {
			return 0, nil, err
		}
		text[name] = p
	}
	return s.pos, text, nil
}

// CollectionInfo is a collection with its statistics.
type CollectionInfo struct {
	index.Collection
	Stats        index.Stats
	MetadataKeys []string
}

func (s *Store) get(name string) (*coll, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, index.ErrClosed
	}
	c := s.colls[name]
	if c == nil {
		return nil, fmt.Errorf("collection %q: %w", name, index.ErrNotFound)
	}
	return c, nil
}

func (c *coll) info() CollectionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := slices.Sorted(maps.Keys(c.metaKeys))
	return CollectionInfo{Collection: c.cfg, Stats: c.stats, MetadataKeys: keys}
}

// checkFilter refuses a metadata filter on a key that no document of the
// collection has (a typo would otherwise silently match nothing).
func (c *coll) checkFilter(collection string, f index.Filter) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for key := range f.Metadata {
		if !c.metaKeys[key] {
			return fmt.Errorf("%w: filter on metadata field %q, which no document in %q has", index.ErrInvalid, key, collection)
		}
	}
	return nil
}

// FusionWeights returns a collection's fusion weights (see
// Collection.FusionWeights), without building the rest of its info.
func (s *Store) FusionWeights(name string) (index.FusionWeights, error) {
	c, err := s.get(name)
	if err != nil {
		return index.FusionWeights{}, err
	}
	return c.cfg.FusionWeights(), nil
}

// Collection returns one collection.
func (s *Store) Collection(name string) (CollectionInfo, error) {
	c, err := s.get(name)
	if err != nil {
		return CollectionInfo{}, err
	}
	return c.info(), nil
}

// Collections returns all collections, sorted by name.
func (s *Store) Collections() []CollectionInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CollectionInfo, 0, len(s.colls))
	for _, name := range slices.Sorted(maps.Keys(s.colls)) {
		out = append(out, s.colls[name].info())
	}
	return out
}

// CreateCollection creates a collection; ErrExists if the name is taken.
func (s *Store) CreateCollection(ctx context.Context, cfg index.Collection) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.syncForWrite(ctx); err != nil {
		return err
	}
	if _, err := s.get(cfg.Name); err == nil {
		return fmt.Errorf("collection %q: %w", cfg.Name, index.ErrExists)
	} else if !errors.Is(err, index.ErrNotFound) {
		return err
	}
	recs := []index.Record{{Op: index.OpCreateCollection, Collection: cfg.Name, Config: &cfg}}
	if err := s.checkSpace("creating a collection", writeSize(recs)); err != nil {
		return err
	}
	return s.write(ctx, recs, nil)
}

// loadCollection opens a newly created collection's state.
func (s *Store) loadCollection(ctx context.Context, name string) error {
	var cfg index.Collection
	if err := s.db.View(func(txn *badger.Txn) error { return readJSON(txn, []byte(collectionKeyP+name), &cfg) }); err != nil {
		return err
	}
	c := &coll{cfg: cfg, metaKeys: map[string]bool{}}
	c.learn.want, c.learn.held = 1, -1 // the learner looks for pairs
	c.graph = graph.New(s.an, c.vocab.Load)
	t, err := bm25.Open(filepath.Join(s.dir, "bleve", name), bm25.Options{CacheBytes: s.postingsCache})
	if err != nil {
		return err
	}
	c.text = t
	if err := s.setTextPos(c, s.pos); err != nil {
		return errors.Join(err, t.Close())
	}
	s.mu.Lock()
	s.colls[name] = c
	s.mu.Unlock()
	if s.learnKick != nil {
		s.kickLearner()
	}
	return nil
}

// DeleteCollection removes a collection with all its documents and its index.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.syncForWrite(ctx); err != nil {
		return err
	}
	if _, err := s.get(name); err != nil {
		return err
	}
	return s.write(ctx, []index.Record{{Op: index.OpDeleteCollection, Collection: name}}, nil)
}

// Upsert writes documents into a collection and reports, per document, what the
// write did. Documents must be built (chunks with ids) and pass Validate; Upsert
// seals them (hashes). An unchanged document is not written at all; a document
// whose version is older than the stored one, or than its tombstone, is Stale.
func (s *Store) Upsert(ctx context.Context, collection string, docs []index.Document) ([]index.Outcome, error) {
	c, err := s.getFresh(ctx, collection)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for i := range docs {
		if err := docs[i].Validate(); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if ids[docs[i].ID] {
			return nil, fmt.Errorf("%w: document %q appears twice in one batch", index.ErrInvalid, docs[i].ID)
		}
		ids[docs[i].ID] = true
		docs[i].Seal()
	}
	// A language model's questions come before the documents are decided
	// on: a document whose generated questions are all reused, and equal,
	// is unchanged.
	s.enrich(ctx, collection, docs)
	// Analyse outside the write lock, on every core: segmentation is most of
	// the cost of a write.
	outcomes := make([]index.Outcome, len(docs))
	var todo []int
	for i := range docs {
		if o, err := s.decide(collection, &docs[i], s.applied.Load()); err != nil {
			return nil, err
		} else if o != index.Unchanged && o != index.Stale {
			todo = append(todo, i)
		}
	}
	v := c.vocab.Load()
	terms := s.analyseParallel(v, docs, todo)

	s.wmu.Lock()
	defer s.wmu.Unlock()
	fresh, err := s.syncForDecision(ctx)
	if err != nil {
		return nil, err
	}
	if c, err = s.get(collection); err != nil {
		return nil, err // deleted meanwhile
	}
	if cur := c.vocab.Load(); cur != v {
		// The lexicon changed while the documents were analysed: new
		// chunks are indexed with the lexicon in force.
		v = cur
		terms = s.analyseParallel(v, docs, todo)
	}
	var recs []index.Record
	for i := range docs {
		o, err := s.decide(collection, &docs[i], s.pos)
		if err != nil {
			return nil, err
		}
		outcomes[i] = o
		if o == index.Stale || (o == index.Unchanged && fresh) {
			// Unchanged only as far as this node knows when it could not
			// read the shared log: another node may have written a newer
			// version since, so it is written again.
			continue
		}
		if len(docs[i].Chunks) > 0 {
			if _, ok := terms[index.ChunkVersion(&docs[i].Chunks[0])]; !ok {
				s.analyseDoc(v, &docs[i], terms) // changed by another writer since the first look
			}
		}
		recs = append(recs, index.Record{Op: index.OpUpsert, Collection: collection, Doc: &docs[i]})
	}
	if len(recs) == 0 {
		return outcomes, nil
	}
	return outcomes, s.commit(ctx, recs, terms)
}

// analyseParallel analyses the documents docs[i] for i in which, on up to
// GOMAXPROCS goroutines, and returns their terms keyed by bleve id.
func (s *Store) analyseParallel(v *analysis.Vocab, docs []index.Document, which []int) map[string]bm25.Terms {
	workers := min(runtime.GOMAXPROCS(0), len(which))
	if workers <= 1 {
		terms := map[string]bm25.Terms{}
		for _, i := range which {
			s.analyseDoc(v, &docs[i], terms)
		}
		return terms
	}
	parts := make([]map[string]bm25.Terms, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = map[string]bm25.Terms{}
		wg.Go(func() {
			for j := w; j < len(which); j += workers {
				s.analyseDoc(v, &docs[which[j]], parts[w])
			}
		})
	}
	wg.Wait()
	terms := parts[0]
	for _, p := range parts[1:] {
		maps.Copy(terms, p)
	}
	return terms
}

// analyseDoc analyses a document's chunks into terms (keyed by bleve id) and
// records their field lengths.
func (s *Store) analyseDoc(v *analysis.Vocab, d *index.Document, terms map[string]bm25.Terms) {
	for j := range d.Chunks {
		ch := &d.Chunks[j]
		a := bm25.Analyse(s.an, v, d.Title, ch)
		ch.Lens = a.Lens()
		ch.Keywords = a.Keywords(s.an)
		terms[index.ChunkVersion(ch)] = a
	}
}

// Delete removes documents, leaving tombstones so an older write arriving later
// cannot bring them back. A missing document is reported as Unchanged.
func (s *Store) Delete(ctx context.Context, collection string, ids []string) ([]index.Outcome, error) {
	if _, err := s.getFresh(ctx, collection); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fresh, err := s.syncForDecision(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.get(collection); err != nil {
		return nil, err // deleted meanwhile
	}
	outcomes := make([]index.Outcome, len(ids))
	var recs []index.Record
	for i, id := range ids {
		var exists bool
		err := s.db.View(func(txn *badger.Txn) error {
			_, err := txn.Get(docKey(collection, id))
			exists = err == nil
			if errors.Is(err, badger.ErrKeyNotFound) {
				err = nil
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !exists {
			outcomes[i] = index.Unchanged
			if fresh {
				continue
			}
			// Not here, as far as this node knows when it could not read
			// the shared log: another node may have written it since. The
			// delete is logged all the same (a tombstone), so that write
			// cannot outlive it.
		} else {
			outcomes[i] = index.Deleted
		}
		recs = append(recs, index.Record{Op: index.OpDelete, Collection: collection, DocID: id})
	}
	if len(recs) == 0 {
		return outcomes, nil
	}
	return outcomes, s.commit(ctx, recs, nil)
}

// commit checks for space, then writes records (see write). Called with wmu
// held.
func (s *Store) commit(ctx context.Context, recs []index.Record, terms map[string]bm25.Terms) error {
	if err := s.checkSpace("the write", writeSize(recs)); err != nil {
		return err
	}
	return s.write(ctx, recs, terms)
}

// decide reports what upserting d would do, from Badger's current state at
// position pos (the store's, under wmu; an estimate for the decision before
// the lock, which is made again under it).
func (s *Store) decide(collection string, d *index.Document, pos uint64) (index.Outcome, error) {
	var o index.Outcome
	err := s.db.View(func(txn *badger.Txn) error {
		tomb, err := getUint(txn, tombKey(collection, d.ID))
		if err != nil {
			return err
		}
		// A write without a version takes its log position as its version
		// (above pos): one that a client's version or a tombstone already
		// stands above would be dropped when applied, so it is Stale now.
		v := cmp.Or(d.Version, pos+1)
		if tomb != 0 && v <= tomb {
			o = index.Stale
			return nil
		}
		var old index.Document
		err = readJSON(txn, docKey(collection, d.ID), &old)
		switch {
		case errors.Is(err, index.ErrNotFound):
			o = index.Added
		case err != nil:
			return err
		case v < old.Version:
			o = index.Stale
		case old.Hash == d.Hash && old.Source == d.Source:
			o = index.Unchanged
		default:
			o = index.Updated
		}
		return nil
	})
	return o, err
}

// Document returns a stored document with its chunks (texts included), in
// document order.
func (s *Store) Document(ctx context.Context, collection, id string) (index.Document, error) {
	if _, err := s.get(collection); err != nil {
		return index.Document{}, err
	}
	var d index.Document
	err := s.db.View(func(txn *badger.Txn) error {
		if err := readJSON(txn, docKey(collection, id), &d); err != nil {
			return fmt.Errorf("document %q: %w", id, err)
		}
		for i, ref := range d.Chunks {
			if err := readJSON(txn, chunkKey(collection, ref.ID), &d.Chunks[i]); err != nil {
				return fmt.Errorf("document %q chunk %s: %w", id, ref.ID, err)
			}
		}
		return nil
	})
	return d, err
}

// ListDocuments returns up to limit documents (without chunk texts) whose id is
// greater than after, in id order, and whether more follow.
func (s *Store) ListDocuments(ctx context.Context, collection, after string, limit int) ([]index.Document, bool, error) {
	if _, err := s.get(collection); err != nil {
		return nil, false, err
	}
	var out []index.Document
	more := false
	prefix := []byte(collectionDataP + collection + docKeyInfix)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		start := append(slices.Clone(prefix), after...)
		for it.Seek(start); it.Valid(); it.Next() {
			if string(it.Item().Key()[len(prefix):]) == after && after != "" {
				continue
			}
			if len(out) == limit {
				more = true
				return nil
			}
			var d index.Document
			if err := itemJSON(it.Item(), &d); err != nil {
				return err
			}
			out = append(out, d)
			if len(out)%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, more, err
}

// chunkCacheBytes bounds the cache of chunk versions read for hits.
const chunkCacheBytes = 96 << 20

// cachedChunk is a chunk version with its normalised text (for highlights).
type cachedChunk struct {
	c    index.Chunk
	norm analysis.Normalized
}

// HitChunks returns the stored chunks of search hits and their normalised
// texts (see Analyzer.Normalize), in order, dropping the hits whose chunk is
// gone: while a document is rewritten, bleve can still list a chunk that
// Badger has just replaced. Chunk versions are immutable, so they are served
// from a cache, normalised once, when they can be; the returned chunks are
// the cache's, and callers must not modify them.
func (s *Store) HitChunks(ctx context.Context, collection string, hits []index.Hit) ([]index.Hit, []*index.Chunk, []analysis.Normalized, error) {
	found := make([]*cachedChunk, len(hits))
	missing := false
	for i, h := range hits {
		var ok bool
		if found[i], ok = s.chunks.Get(collection + "\x00" + h.ChunkVersion); !ok {
			missing = true
		}
	}
	if missing { // read the others in one transaction
		err := s.db.View(func(txn *badger.Txn) error {
			for i, h := range hits {
				if found[i] != nil {
					continue
				}
				var c index.Chunk
				err := readJSON(txn, chunkKey(collection, h.ChunkID), &c)
				if errors.Is(err, index.ErrNotFound) {
					continue
				}
				if err != nil {
					return fmt.Errorf("chunk %q: %w", h.ChunkID, err)
				}
				if index.ChunkVersion(&c) != h.ChunkVersion {
					continue // replaced since the search read the index
				}
				cc := &cachedChunk{c: c, norm: s.an.Normalize(c.Text)}
				s.chunks.Set(collection+"\x00"+h.ChunkVersion, cc, int64(2*len(c.Text)+cc.norm.MemBytes()+128))
				found[i] = cc
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	keptHits := make([]index.Hit, 0, len(hits))
	out := make([]*index.Chunk, 0, len(hits))
	norms := make([]analysis.Normalized, 0, len(hits))
	for i, cc := range found {
		if cc != nil {
			keptHits, out, norms = append(keptHits, hits[i]), append(out, &cc.c), append(norms, cc.norm)
		}
	}
	return keptHits, out, norms, nil
}

// Search scores the collection's chunks against analysed query terms with BM25F
// and returns the top k that pass the filter.
func (s *Store) Search(ctx context.Context, collection string, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, index.SearchStats, error) {
	return s.search(ctx, collection, terms, f, k, false)
}

// search is Search; exhaustive scores every posting instead of pruning (the
// reference the pruned search is tested against).
func (s *Store) search(ctx context.Context, collection string, terms []index.QueryTerm, f index.Filter, k int, exhaustive bool) ([]index.Hit, index.SearchStats, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, index.SearchStats{}, err
	}
	c.mu.RLock()
	p := bm25.NewParams(c.cfg, c.stats)
	c.mu.RUnlock()
	if err := c.checkFilter(collection, f); err != nil {
		return nil, index.SearchStats{}, err
	}
	search := c.text.Search
	if exhaustive {
		search = c.text.SearchExhaustive
	}
	hits, st, err := search(ctx, p, terms, f, k)
	if err != nil {
		return nil, st, fmt.Errorf("search %s: %w", collection, err)
	}
	return hits, st, nil
}

// HasTerms reports which terms some chunk of collection holds (see
// bm25.Index.HasTerms).
func (s *Store) HasTerms(collection string, terms []index.QueryTerm) ([]bool, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	return c.text.HasTerms(terms)
}

// ForceMerge merges a collection's bleve segments into one.
func (s *Store) ForceMerge(ctx context.Context, collection string) error {
	c, err := s.get(collection)
	if err != nil {
		return err
	}
	return c.text.ForceMerge(ctx)
}

func readJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return index.ErrNotFound
	}
	if err != nil {
		return err
	}
	return itemJSON(item, v)
}

// itemJSON decodes a Badger item's JSON value (decodeValue).
func itemJSON(item *badger.Item, v any) error {
	return item.Value(func(b []byte) error { return decodeValue(item.Key(), b, v) })
}

// decodeValue decodes a stored JSON value. Badger reads a value-log entry
// that fails its checksum as an empty value (it logs the error and returns
// none, iterator.go yieldItemValue), and no value the store writes is empty,
// so an empty or undecodable value is damage.
func decodeValue(key, b []byte, v any) error { return decodeWith(json.Unmarshal, key, b, v) }

// decodeWith is decodeValue with another JSON decoder of the same behaviour.
func decodeWith(unmarshal func([]byte, any) error, key, b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: the value of %q reads as empty: its value-log entry failed its checksum (see Badger's log line)", index.ErrDamaged, key)
	}
	if err := unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: the value of %q is not what was written: %w", index.ErrDamaged, key, err)
	}
	return nil
}

func writeJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// badgerLogger adapts slog to Badger's Logger.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {}

// Verify checks that a collection's bleve index holds exactly the chunks that
// Badger holds, that the statistics match the stored documents, and, when no
// re-indexing is pending, that every chunk's field lengths are those of its
// analysis under the lexicon in force. It reads
// everything; use it in tests and for diagnosis, not on a hot path.
func (s *Store) Verify(ctx context.Context, collection string) error {
	c, err := s.get(collection)
	if err != nil {
		return err
	}
	s.wmu.Lock() // no writes while comparing
	defer s.wmu.Unlock()
	want := map[string]bool{}
	var st index.Stats
	prefix := []byte(collectionDataP + collection + docKeyInfix)
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d index.Document
			if err := itemJSON(it.Item(), &d); err != nil {
				return err
			}
			st.Docs++
			for i := range d.Chunks {
				ref := &d.Chunks[i]
				var ch index.Chunk
				if err := readJSON(txn, chunkKey(collection, ref.ID), &ch); err != nil {
					return fmt.Errorf("document %q: chunk %s: %w", d.ID, ref.ID, err)
				}
				if ch.Hash != ref.Hash {
					return fmt.Errorf("document %q: chunk %s has hash %s, document says %s", d.ID, ref.ID, ch.Hash, ref.Hash)
				}
				want[index.ChunkVersion(ref)] = true
				addLens(&st, ref, 1)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify %s: %w", collection, err)
	}
	c.mu.RLock()
	have := c.stats
	c.mu.RUnlock()
	if have != st {
		return fmt.Errorf("verify %s: statistics %+v, documents add up to %+v", collection, have, st)
	}
	if err := s.verifyGraph(c); err != nil {
		return fmt.Errorf("verify %s: %w", collection, err)
	}
	got, err := c.text.Versions(ctx)
	if err != nil {
		return err
	}
	for id := range want {
		if !got[id] {
			return fmt.Errorf("verify %s: chunk %s is in badger but not in the bleve index", collection, id)
		}
	}
	for id := range got {
		if !want[id] {
			return fmt.Errorf("verify %s: chunk %s is in the bleve index but not in badger", collection, id)
		}
	}
	return s.verifyLexicon(ctx, c)
}
