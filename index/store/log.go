package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store/wal"
)

// Log is the sequenced write log. Locally it is a directory of checksummed
// segment files beside Badger's (package wal); a replicated log (NATS
// JetStream) can take its place without touching the appliers, which only
// see Records.
type Log interface {
	// Append durably writes the records, assigning increasing sequence
	// numbers (written into recs), and returns the highest. When it returns
	// nil the records survive a crash. The local log numbers them
	// consecutively; a shared log may give other writers' records numbers
	// between them.
	Append(ctx context.Context, recs []index.Record) (uint64, error)
	// Replay calls fn for each record with Seq > after, in order.
	Replay(ctx context.Context, after uint64, fn func(index.Record) error) error
	// Truncate drops records with Seq <= upto, or some of them; they are
	// applied everywhere and in a backup.
	Truncate(upto uint64) error
	// First returns the lowest sequence number the log still holds (or the
	// next one, when it holds none).
	First() uint64
	// Last returns the highest sequence number ever assigned.
	Last() uint64
}

// SharedLog is a write log several stores (nodes) append to, each applying
// every record in sequence order: the records other nodes wrote as well as
// its own. Package natslog implements it on NATS JetStream.
type SharedLog interface {
	Log
	// ID names the log instance (a stream and its creation): a store
	// built from one shared log refuses to open with another.
	ID() string
	// Changed receives a value when records may have been appended by
	// another node; the store also looks on its own every second.
	Changed() <-chan struct{}
	// Bounds is First and Last from one look at the log.
	Bounds() (first, last uint64)
	// Close releases the log; the store calls it when it closes.
	Close() error
}

// DeadLetters is a SharedLog that keeps a copy of the records replicas set
// aside (quarantine), once for all of them.
type DeadLetters interface {
	DeadLetter(r *index.Record, reason string) error
}

// LogDir is the write log's directory in the data directory.
const LogDir = "log"

// fileLog is the local Log: records as JSON in a wal.Log.
type fileLog struct {
	w *wal.Log
}

func (l *fileLog) First() uint64 { return l.w.First() }
func (l *fileLog) Last() uint64  { return l.w.Last() }

func (l *fileLog) Append(ctx context.Context, recs []index.Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	next := l.w.Last() + 1
	payloads := make([][]byte, len(recs))
	for i := range recs {
		recs[i].Seq = next + uint64(i)
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return 0, fmt.Errorf("encode record: %w", err)
		}
		payloads[i] = b
	}
	// Callers serialise appends (Store.wmu), so the numbers given above are
	// the ones the log assigns.
	if _, err := l.w.Append(payloads); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %w", index.ErrNoSpace, err)
		}
		return 0, fmt.Errorf("append to log: %w", err)
	}
	return recs[len(recs)-1].Seq, nil
}

func (l *fileLog) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	n := 0
	err := l.w.Replay(after, func(seq uint64, p []byte) error {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var rec index.Record
		if err := json.Unmarshal(p, &rec); err != nil {
			return fmt.Errorf("%w: write log entry %d: %w", wal.ErrCorrupt, seq, err)
		}
		if rec.Seq != seq {
			return fmt.Errorf("%w: write log entry %d holds record %d", wal.ErrCorrupt, seq, rec.Seq)
		}
		return fn(rec)
	})
	return damaged(err)
}

func (l *fileLog) Truncate(upto uint64) error {
	_, err := l.w.DropBefore(upto)
	return err
}

// LogInfo describes the write log.
type LogInfo struct {
	Dir         string
	First, Last uint64
	Records     int64
	Bytes       int64
	Segments    int
}

// LogStats describes the write log without reading it.
func (s *Store) LogStats() LogInfo {
	if s.shared != nil {
		first, last := s.shared.Bounds()
		return LogInfo{Dir: s.shared.ID(), First: first, Last: last}
	}
	w := s.local.w
	return LogInfo{Dir: filepath.Join(s.dir, LogDir), First: w.First(), Last: w.Last(), Bytes: w.Bytes(), Segments: w.Segments()}
}

// BadgerBytes is the size of Badger's files: its tables (LSM) and its value
// log.
func (s *Store) BadgerBytes() (lsm, vlog int64) { return s.db.Size() }

// CheckLog reads the whole write log, checking every record.
func (s *Store) CheckLog() (LogInfo, error) {
	info := s.LogStats()
	if s.shared != nil {
		return info, nil // the shared log's servers check their own files
	}
	n, err := s.local.w.Check()
	info.Records = n
	if err != nil {
		return info, fmt.Errorf("%w; zhisou repair -backup FILE rebuilds the store from the newest backup and what the log holds after it", damaged(err))
	}
	return info, nil
}

// damaged marks a damaged log as index.ErrDamaged.
func damaged(err error) error {
	if errors.Is(err, wal.ErrCorrupt) && !errors.Is(err, index.ErrDamaged) {
		return fmt.Errorf("%w: %w", index.ErrDamaged, err)
	}
	return err
}

// Badger keys of the log's bookkeeping. logFirstKey holds the position the
// log started from when it was created; its presence says the store has a
// log directory, so a missing one is damage, not a new store.
var (
	logFirstKey  = []byte("sys/log_first")
	backupPosKey = []byte("sys/backup_pos")
	// Up to format 6 the log lived in Badger: records under oldLogPrefix,
	// the last position under oldLogLastKey, the truncation point under
	// oldTruncatedKey. openLog moves them out.
	oldLogPrefix    = []byte("log/")
	oldLogLastKey   = []byte("sys/log_last")
	oldTruncatedKey = []byte("sys/log_truncated")
)

// hasSegments reports whether dir holds any log segment.
func hasSegments(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return len(m) > 0
}

// openLog opens the store's write log and checks it against Badger's
// position: the log must hold every record Badger has not applied, and
// must not end before Badger's position (its numbers would be given again).
// A store whose log still lives in Badger has it moved out first.
func (s *Store) openLog(ctx context.Context) error {
	dir := filepath.Join(s.dir, LogDir)
	var oldLast, oldTrunc uint64
	var hasFirst, hasOld bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if s.pos, err = getUint(txn, posBadgerKey); err != nil {
			return err
		}
		if _, hasFirst, err = lookupUint(txn, logFirstKey); err != nil {
			return err
		}
		if oldLast, hasOld, err = lookupUint(txn, oldLogLastKey); err != nil {
			return err
		}
		oldTrunc, _, err = lookupUint(txn, oldTruncatedKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	fresh := !hasSegments(dir)
	if fresh && hasFirst && s.pos > 0 {
		err := fmt.Errorf("%w: the write log %s is missing, but Badger has applied it up to position %d", index.ErrDamaged, dir, s.pos)
		if !s.acceptDamage {
			return fmt.Errorf("%w; restore the data directory from a backup, or open it anyway with -accept-damage (a new log starts at %d)", err, s.pos+1)
		}
		s.logger.Error("starting a new write log, as -accept-damage asks", "err", err)
	}
	if hasOld && fresh {
		if err := s.moveOldLog(ctx, dir, oldTrunc+1, oldLast); err != nil {
			return err
		}
	}
	w, err := wal.Open(dir, wal.Options{Next: s.pos + 1, Truncate: s.acceptDamage, Logger: s.logger, SegmentBytes: s.segBytes})
	if err != nil {
		return fmt.Errorf("%w; zhisou verify reports the damage, zhisou repair rebuilds from a backup", damaged(err))
	}
	s.local = &fileLog{w: w}
	s.log = s.local
	if hasOld {
		if err := s.dropOldLog(); err != nil {
			return err
		}
	}
	if !hasFirst {
		if err := s.db.Update(func(txn *badger.Txn) error { return putUint(txn, logFirstKey, w.First()) }); err != nil {
			return fmt.Errorf("record the log's start: %w", err)
		}
	}
	switch {
	case w.Last() < s.pos:
		err = fmt.Errorf("%w: the write log %s ends at position %d, but Badger has applied it up to %d: the log lost records",
			index.ErrDamaged, dir, w.Last(), s.pos)
	case w.First() > s.pos+1:
		err = fmt.Errorf("%w: Badger has applied the write log up to position %d, but the log %s starts at %d: Badger lost records the log no longer holds",
			index.ErrDamaged, s.pos, dir, w.First())
	}
	if err == nil {
		return nil
	}
	if !s.acceptDamage {
		return fmt.Errorf("%w; repair it from the newest backup with zhisou repair -backup FILE, or open it anyway with -accept-damage", err)
	}
	s.logger.Error("opening a damaged store, as -accept-damage asks", "err", err)
	if w.Last() >= s.pos {
		return nil
	}
	// The log's numbers must go on from Badger's position, or new records
	// would be taken for applied ones: keep the old log aside, start anew.
	aside := dir + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := errors.Join(w.Close(), os.Rename(dir, aside)); err != nil {
		return fmt.Errorf("set the damaged write log aside: %w", err)
	}
	if w, err = wal.Open(dir, wal.Options{Next: s.pos + 1, Logger: s.logger, SegmentBytes: s.segBytes}); err != nil {
		return err
	}
	s.local = &fileLog{w: w}
	s.log = s.local
	s.logger.Warn("started a new write log; the damaged one is kept", "dir", aside, "first", s.pos+1)
	return nil
}

// moveOldLog copies the records of a log kept in Badger (format 6 and
// before) into a new file log in dir. It builds it beside dir and renames it
// into place, so that a crash leaves either no log or the whole one.
func (s *Store) moveOldLog(ctx context.Context, dir string, first, last uint64) error {
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("move the write log out of Badger: %w", err)
	}
	w, err := wal.Open(tmp, wal.Options{Next: first})
	if err != nil {
		return fmt.Errorf("move the write log out of Badger: %w", err)
	}
	l := &fileLog{w: w}
	var batch []index.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		want := batch[0].Seq
		if _, err := l.Append(ctx, batch); err != nil {
			return err
		}
		if batch[0].Seq != want {
			return fmt.Errorf("record %d became %d", want, batch[0].Seq)
		}
		batch = batch[:0]
		return nil
	}
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: oldLogPrefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec index.Record
			if err := itemJSON(it.Item(), &rec); err != nil {
				return fmt.Errorf("read log record %x: %w", it.Item().Key(), err)
			}
			if batch = append(batch, rec); len(batch) == 256 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err == nil && w.Last() != last {
		err = fmt.Errorf("the log in Badger ended at %d, the moved log at %d", last, w.Last())
	}
	if err = errors.Join(err, w.Close()); err == nil {
		err = os.Rename(tmp, dir)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("move the write log out of Badger: %w", err)
	}
	s.logger.Info("moved the write log out of Badger", "dir", dir, "first", first, "last", last)
	return nil
}

// dropOldLog deletes a log kept in Badger, once moved out.
func (s *Store) dropOldLog() error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: oldLogPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, k := range [][]byte{oldLogLastKey, oldTruncatedKey} {
		err = errors.Join(err, wb.Delete(k))
	}
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fmt.Errorf("drop the old write log from Badger: %w", err)
	}
	return s.db.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// lookupUint reads a uint64 value; ok is false when key is absent.
func lookupUint(txn *badger.Txn, key []byte) (v uint64, ok bool, err error) {
	item, err := txn.Get(key)
	if err == badger.ErrKeyNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("key %s: want 8 bytes, have %d", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err == nil, err
}

// getUint is lookupUint, with 0 for an absent key.
func getUint(txn *badger.Txn, key []byte) (uint64, error) {
	v, _, err := lookupUint(txn, key)
	return v, err
}

func putUint(txn *badger.Txn, key []byte, v uint64) error {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return txn.Set(key, b)
}
