package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
)

// A store on a shared log (Options.Log) is one replica of a collection set
// that several nodes write: every node appends its writes to the log and
// applies every record of the log, its own and the others', in sequence
// order, into its own Badger and bleve. Ranking on every replica is therefore
// that of one node fed the same writes.
//
// A write appends its records, then applies the log up to them (catchUp)
// before it returns, so a node reads its own writes. A follower goroutine
// applies what other nodes append (woken by SharedLog.Changed, and every
// second): it reads the log without the write lock and applies under it. All
// applying runs under wmu, so records are applied one at a time and in
// order; Badger records the applied position in each record's transaction as
// it does on the local log.

// logIDKey holds the ID of the shared log a store was built from.
var logIDKey = []byte("sys/log_id")

// syncWait bounds the look at the shared log before a write (syncForWrite).
const syncWait = 2 * time.Second

// followEvery is how often the follower looks for new records when no
// notice came.
const followEvery = time.Second

// openShared checks a store against its shared log at open: the store must
// have been built from this log (or be empty), and the log must still hold
// every record after the store's position.
func (s *Store) openShared() error {
	var id string
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if s.pos, err = getUint(txn, posBadgerKey); err != nil {
			return err
		}
		id, err = readLogID(txn)
		return err
	})
	if err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	want := s.shared.ID()
	first, last := s.shared.Bounds()
	switch {
	case id == "" && s.pos > 0:
		return fmt.Errorf("%w: this data directory was built from its own write log (position %d), not from the shared log %s; start the replica on an empty data directory",
			index.ErrInvalid, s.pos, want)
	case id != "" && id != want:
		return fmt.Errorf("%w: this data directory is a replica of the shared log %s, not of %s; start the replica on an empty data directory",
			index.ErrInvalid, id, want)
	case s.pos > last:
		return fmt.Errorf("%w: this replica has applied the shared log %s up to position %d, but the log ends at %d",
			index.ErrDamaged, want, s.pos, last)
	case first > s.pos+1:
		return fmt.Errorf("%w: this replica has applied the shared log %s up to position %d, but the log now starts at %d (a snapshot holds the records between): move this data directory aside and start the replica on an empty one, which restores the latest snapshot",
			index.ErrDamaged, want, s.pos, first)
	}
	if id == "" {
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(logIDKey, []byte(want)) }); err != nil {
			return fmt.Errorf("record the shared log's id: %w", err)
		}
	}
	s.log = s.shared
	return nil
}

// sharedOpenWait bounds how long an open waits for a shared log that does
// not answer (its servers restarting, a leader being elected).
const sharedOpenWait = 2 * time.Minute

// caughtUp keeps the records Badger's catch-up read from a shared log while
// the store opens, so that a bleve index behind by as much takes them from
// memory instead of reading the stream a second time: on a replica restarted
// in the cluster test, that second reading was 6 of its 11.7 s to healthy
// (each of its consumers waiting 2 s for a first record). It keeps at most
// caughtMaxRecords records and caughtMaxBytes of their text; past either it
// keeps none, and the indexes read the log as before.
type caughtUp struct {
	from  uint64 // the records after it
	recs  []index.Record
	bytes int
	keep  bool // false: none kept (a local log, or past a bound)
}

const (
	caughtMaxRecords = 50_000
	caughtMaxBytes   = 64 << 20
)

func (c *caughtUp) add(r index.Record) {
	if !c.keep {
		return
	}
	if r.Doc != nil {
		for i := range r.Doc.Chunks {
			c.bytes += len(r.Doc.Chunks[i].Text)
		}
	}
	if len(c.recs) >= caughtMaxRecords || c.bytes > caughtMaxBytes {
		*c = caughtUp{}
		return
	}
	c.recs = append(c.recs, r)
}

// through is the position up to which c holds every record.
func (c *caughtUp) through() uint64 {
	if len(c.recs) == 0 {
		return c.from
	}
	return c.recs[len(c.recs)-1].Seq
}

// replayCaught is replayRetry from after, taking the records from what
// Badger's catch-up read when it holds every one since after up to the
// store's position.
func (s *Store) replayCaught(ctx context.Context, after uint64, fn func(index.Record) error) error {
	c := &s.caught
	if !c.keep || after < c.from || c.through() < s.pos {
		return s.replayRetry(ctx, after, fn)
	}
	for i := range c.recs {
		if c.recs[i].Seq <= after {
			continue
		}
		if err := fn(c.recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// replayRetry is Replay for the open: on a shared log it goes on until a
// replay delivers nothing more (a replay may deliver part of what is there),
// and when the log does not answer it tries again from the last record fn
// took, for up to sharedOpenWait.
func (s *Store) replayRetry(ctx context.Context, after uint64, fn func(index.Record) error) error {
	if s.shared == nil {
		return s.log.Replay(ctx, after, fn)
	}
	start := time.Now()
	for {
		n := 0
		err := s.shared.Replay(ctx, after, func(r index.Record) error {
			if err := fn(r); err != nil {
				return err
			}
			after = r.Seq
			n++
			return nil
		})
		if err == nil && n == 0 {
			return nil
		} else if err == nil {
			continue
		}
		if !errors.Is(err, index.ErrUnavailable) || time.Since(start) > sharedOpenWait || ctx.Err() != nil {
			return err
		}
		s.logger.Warn("the shared log does not answer; trying again", "log", s.shared.ID(), "after", after, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// refuseShared is the local log's side of openShared: a replica of a shared
// log does not open on a log of its own.
func (s *Store) refuseShared() error {
	return s.db.View(func(txn *badger.Txn) error {
		id, err := readLogID(txn)
		if err == nil && id != "" {
			err = fmt.Errorf("%w: this data directory is a replica of the shared log %s; serve it with that log (-nats)", index.ErrInvalid, id)
		}
		return err
	})
}

// readLogID reads the ID of the shared log the store was built from ("" for
// none).
func readLogID(txn *badger.Txn) (string, error) {
	item, err := txn.Get(logIDKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

// write appends records to the log and applies them (and, on a shared log,
// every record before them) to Badger and bleve. terms holds the analysed
// chunks of the records' documents, by bleve id (missing ones are analysed
// again). Records that can never be applied are quarantined and their errors
// returned, the others applied. Called with wmu held.
func (s *Store) write(ctx context.Context, recs []index.Record, terms map[string]bm25.Terms) error {
	if _, err := s.log.Append(ctx, recs); err != nil {
		return err
	}
	// From here the write is durable: a failure below is repaired by the
	// catch-up at the next open (or the follower's next pass), so apply even
	// if ctx is cancelled.
	ctx = context.WithoutCancel(ctx)
	if s.shared == nil {
		failed, err := s.applyRecords(ctx, recs, terms, nil)
		return errors.Join(append(failed, err)...)
	}
	own := map[uint64]bool{}
	var last uint64
	for i := range recs {
		own[recs[i].Seq] = true
		last = max(last, recs[i].Seq)
	}
	var failed []error
	var err error
	for {
		before := s.pos
		var f []error
		f, err = s.catchUp(ctx, own, terms)
		failed = append(failed, f...)
		if err != nil || s.pos >= last || s.pos == before {
			break // a replay may deliver part of what is there
		}
	}
	if err == nil && s.pos < last {
		err = fmt.Errorf("%w: the shared log %s acknowledged record %d, but reading it back ended at %d; the write will be applied when the log delivers it",
			index.ErrUnavailable, s.shared.ID(), last, s.pos)
	}
	return errors.Join(append(failed, err)...)
}

// catchUp applies the shared log's records after the store's position. own
// marks the records the caller wrote, whose quarantine errors it returns.
// Called with wmu held.
func (s *Store) catchUp(ctx context.Context, own map[uint64]bool, terms map[string]bm25.Terms) (failed []error, err error) {
	if s.shared == nil {
		return nil, nil
	}
	var batch []index.Record
	// Reading the log stops when ctx ends; applying what was read does not:
	// Badger and the bleve indexes must not part between two records.
	actx := context.WithoutCancel(ctx)
	flush := func() error {
		f, err := s.applyRecords(actx, batch, terms, own)
		failed = append(failed, f...)
		batch = batch[:0]
		return err
	}
	err = s.shared.Replay(ctx, s.pos, func(r index.Record) error {
		if batch = append(batch, r); len(batch) >= 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return failed, fmt.Errorf("apply the shared log %s: %w", s.shared.ID(), err)
	}
	return failed, nil
}

// markTextPositions records in every collection's bleve index that it holds
// every record up to the store's position. applyRecords applies each record
// to bleve before it returns, so between writes an index is as current as
// Badger even when its own position was last moved by an older record (a
// quiet collection); marking it spares the next open a replay from that old
// position, or a rebuild when the log no longer goes back that far. Not
// after a failed bleve write (textBehind): the next open must replay.
// Called with wmu held.
func (s *Store) markTextPositions() error {
	if s.textBehind {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.colls {
		p, err := c.text.Pos()
		if err != nil {
			return err
		}
		if p < s.pos {
			if err := s.setTextPos(c, s.pos); err != nil {
				return err
			}
		}
	}
	return nil
}

// sync applies what the shared log holds beyond the store's position, so
// that a write decides from the newest state: everything the log held when
// sync was called. A replay may deliver part of what is there (what one
// consumer delivered before it went quiet), so sync replays again until a
// pass finds nothing or the store reaches the end the log had after the
// first pass (not chasing later writes). Called with wmu held.
func (s *Store) sync(ctx context.Context) error {
	var end uint64
	for {
		before := s.pos
		if _, err := s.catchUp(ctx, nil, nil); err != nil {
			return err
		}
		if s.pos == before {
			return nil
		}
		if end == 0 {
			_, end = s.shared.Bounds()
		}
		if s.pos >= end {
			return nil
		}
	}
}

// syncForWrite is sync before a write decides what to write. When the log
// does not answer, the write goes on from local state (its records are
// checked again as they are applied), and its own append says whether the
// log takes it. Called with wmu held.
func (s *Store) syncForWrite(ctx context.Context) error {
	_, err := s.syncForDecision(ctx)
	return err
}

// syncForDecision is syncForWrite for a write decided from local state
// (skipped as unchanged, or a delete of a document not found): fresh is
// false when the shared log did not answer, and local state may lack
// writes other nodes have acknowledged. Such a write must then be logged
// all the same; its apply decides (versions, tombstones).
func (s *Store) syncForDecision(ctx context.Context) (fresh bool, err error) {
	if s.shared == nil {
		return true, nil
	}
	// Bounded: a log without a leader must not hold the write up twice
	// (here, then in its append).
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	err = s.sync(ctx)
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w: %w", index.ErrUnavailable, err)
	}
	if errors.Is(err, index.ErrUnavailable) {
		s.logger.Debug("the shared log did not answer before a write; deciding from local state", "err", err)
		return false, nil
	}
	return err == nil, err
}

// applyRecords applies records in order: each to Badger (quarantining one
// that can never be applied), then the collections' bleve indexes, a batch
// per collection. Collections the records create or delete are opened or
// removed. It returns the errors of the quarantined records own marks (all of
// them, when own is nil). Called with wmu held.
func (s *Store) applyRecords(ctx context.Context, recs []index.Record, terms map[string]bm25.Terms, own map[uint64]bool) (failed []error, err error) {
	texts := map[string][]index.Record{}
	kick := false
	for i := range recs {
		r := &recs[i]
		if r.Seq <= s.pos {
			continue // applied already (a replay, or a read-back of our own)
		}
		if r.Op == index.OpDeleteCollection {
			delete(texts, r.Collection)
			if c, err := s.get(r.Collection); err == nil {
				s.mu.Lock()
				delete(s.colls, r.Collection)
				s.mu.Unlock()
				if err := c.text.Remove(); err != nil {
					return failed, err
				}
			}
		}
		quarantined, err := s.applyOrQuarantine(r)
		if err != nil && !quarantined {
			return failed, err
		}
		if quarantined {
			if own == nil || own[r.Seq] {
				failed = append(failed, fmt.Errorf("%w: %s %s: %w", index.ErrInvalid, r.Op, recordDoc(r), err))
			}
			continue
		}
		switch r.Op {
		case index.OpCreateCollection:
			if _, err := s.get(r.Collection); errors.Is(err, index.ErrNotFound) {
				if err := s.loadCollection(ctx, r.Collection); err != nil {
					return failed, err
				}
			}
		case index.OpUpsert, index.OpDelete, index.OpReindex:
			texts[r.Collection] = append(texts[r.Collection], *r)
		case index.OpLexicon:
			kick = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(texts)) {
		c, err := s.get(name)
		if errors.Is(err, index.ErrNotFound) {
			continue
		} else if err != nil {
			return failed, err
		}
		if err := s.applyText(ctx, c, texts[name], terms); err != nil {
			s.textBehind = true // until the next open catches it up
			return failed, err
		}
	}
	if kick {
		s.kickReindex()
	}
	s.notePos()
	return failed, nil
}

// follow applies what other nodes append to the shared log until stop is
// closed.
func (s *Store) follow(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	var failing bool
	for {
		select {
		case <-stop:
			return
		case <-s.shared.Changed():
		case <-tick.C:
		}
		err := s.followOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.logger.Error("cannot apply the shared log; retrying every second", "log", s.shared.ID(), "pos", s.Pos(), "err", err)
			failing = true
		case err == nil && failing:
			s.logger.Info("applying the shared log again", "log", s.shared.ID(), "pos", s.Pos())
			failing = false
		}
	}
}

// SharedLog returns the store's shared write log (nil on a local log).
func (s *Store) SharedLog() SharedLog { return s.shared }

// errEnough stops a follower's read of the log once it holds a batch.
var errEnough = errors.New("enough for one batch")

// followOnce reads what the shared log holds after the store's position,
// up to a batch, without the write lock (a slow read must not hold writes
// up), then applies it under the lock: the records a write applied
// meanwhile are skipped, the rest follow on from them. It returns when the
// store has applied the whole log, or on an error.
func (s *Store) followOnce(ctx context.Context) error {
	for {
		var recs []index.Record
		err := s.shared.Replay(ctx, s.Pos(), func(r index.Record) error {
			if recs = append(recs, r); len(recs) >= 256 {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		s.wmu.Lock()
		if s.isClosed() {
			s.wmu.Unlock()
			return nil
		}
		_, aerr := s.applyRecords(context.WithoutCancel(ctx), recs, nil, nil)
		s.wmu.Unlock()
		if aerr != nil {
			return fmt.Errorf("apply the shared log %s: %w", s.shared.ID(), aerr)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Shared reports whether the store's write log is shared with other nodes.
func (s *Store) Shared() bool { return s.shared != nil }

// Pos returns the log position the store has applied.
func (s *Store) Pos() uint64 { return s.applied.Load() }

// notePos publishes s.pos to Pos and WaitPos. Called with wmu held.
func (s *Store) notePos() {
	if s.applied.Load() == s.pos {
		return
	}
	s.applied.Store(s.pos)
	s.posMu.Lock()
	close(s.posMoved)
	s.posMoved = make(chan struct{})
	s.posMu.Unlock()
}

// WaitPos returns when the store has applied the log up to pos, or with
// ctx's error when ctx is done first.
func (s *Store) WaitPos(ctx context.Context, pos uint64) error {
	for {
		s.posMu.Lock()
		moved := s.posMoved
		s.posMu.Unlock()
		if s.applied.Load() >= pos {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Digest sums the store's state in four parts, joined by '-', so that a
// difference says where it is: the collections' settings and documents (id,
// version, content hash), the tombstones, the chunks Badger holds, and the
// chunk versions in the bleve indexes. Replicas that applied the same records
// have the same digest. It returns the position it was taken at.
func (s *Store) Digest(ctx context.Context) (digest string, pos uint64, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	docs, tombs, chunks, text := sha256.New(), sha256.New(), sha256.New(), sha256.New()
	for _, info := range s.Collections() {
		name := info.Collection.Name
		cfg := info.Collection
		cfg.CreatedSeq = 0 // differs only when replicas were built differently
		b, err := json.Marshal(cfg)
		if err != nil {
			return "", 0, err
		}
		fmt.Fprintf(docs, "collection %s\n", b)
		p := collectionDataP + name
		err = s.db.View(func(txn *badger.Txn) error {
			return errors.Join(
				eachItem(txn, p+docKeyInfix, true, func(item *badger.Item) error {
					var d index.Document
					err := itemJSON(item, &d)
					fmt.Fprintf(docs, "%s %d %s\n", d.ID, d.Version, d.Hash)
					return err
				}),
				eachItem(txn, p+tombKeyInfix, true, func(item *badger.Item) error {
					v, err := item.ValueCopy(nil)
					fmt.Fprintf(tombs, "%s %x\n", item.Key(), v)
					return err
				}),
				eachItem(txn, p+chunkKeyInfix, false, func(item *badger.Item) error {
					fmt.Fprintf(chunks, "%s\n", item.Key())
					return nil
				}),
				// Learned pairs: a key names the question's hash and the chunk.
				eachItem(txn, p+learnKeyInfix, false, func(item *badger.Item) error {
					fmt.Fprintf(docs, "pair %s\n", item.Key())
					return nil
				}))
		})
		if err != nil {
			return "", 0, err
		}
		c, err := s.get(name)
		if err != nil {
			return "", 0, err
		}
		vs, err := c.text.Versions(ctx)
		if err != nil {
			return "", 0, err
		}
		fmt.Fprintf(text, "collection %s\n", name)
		for _, v := range slices.Sorted(maps.Keys(vs)) {
			fmt.Fprintf(text, "%s\n", v)
		}
	}
	var parts []string
	for _, h := range []hash.Hash{docs, tombs, chunks, text} {
		parts = append(parts, hex.EncodeToString(h.Sum(nil))[:12])
	}
	return strings.Join(parts, "-"), s.pos, nil
}

// eachItem calls fn for each key under prefix, in order, stopping at its
// first error; values says whether to fetch values ahead.
func eachItem(txn *badger.Txn, prefix string, values bool, fn func(*badger.Item) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: values})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := fn(it.Item()); err != nil {
			return err
		}
	}
	return nil
}

// getFresh is get, but on a shared log it first applies what the log holds
// when the collection is unknown: another node may just have created it.
func (s *Store) getFresh(ctx context.Context, name string) (*coll, error) {
	c, err := s.get(name)
	if !errors.Is(err, index.ErrNotFound) || s.shared == nil {
		return c, err
	}
	s.wmu.Lock()
	err = s.sync(ctx)
	s.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.get(name)
}
