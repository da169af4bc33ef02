package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/zhisou/zhisou/index"
)

// Log is the sequenced write log. Locally it lives in the store's Badger; a
// replicated log (NATS JetStream) can take its place without touching the
// appliers, which only see Records.
type Log interface {
	// Append durably writes the records, assigning consecutive sequence numbers
	// (written into recs), and returns the last one. When it returns nil the
	// records survive a crash.
	Append(ctx context.Context, recs []index.Record) (uint64, error)
	// Replay calls fn for each record with Seq > after, in order.
	Replay(ctx context.Context, after uint64, fn func(index.Record) error) error
	// Truncate drops records with Seq <= upto; they are applied everywhere.
	Truncate(upto uint64) error
	// Last returns the highest sequence number ever assigned.
	Last() uint64
}

// badgerLog keeps records under the "log/" prefix of the store's Badger.
type badgerLog struct {
	db   *badger.DB
	last uint64 // guarded by the Store's write mutex
}

var (
	logPrefix  = []byte("log/")
	logLastKey = []byte("sys/log_last")
)

func logKey(seq uint64) []byte {
	k := make([]byte, len(logPrefix)+8)
	copy(k, logPrefix)
	binary.BigEndian.PutUint64(k[len(logPrefix):], seq)
	return k
}

func openBadgerLog(db *badger.DB) (*badgerLog, error) {
	l := &badgerLog{db: db}
	err := db.View(func(txn *badger.Txn) error {
		last, err := getUint(txn, logLastKey)
		l.last = last
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read log position: %w", err)
	}
	return l, nil
}

func (l *badgerLog) Last() uint64 { return l.last }

func (l *badgerLog) Append(ctx context.Context, recs []index.Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	seq := l.last
	err := l.db.Update(func(txn *badger.Txn) error {
		for i := range recs {
			seq++
			recs[i].Seq = seq
			b, err := json.Marshal(&recs[i])
			if err != nil {
				return fmt.Errorf("encode record: %w", err)
			}
			if err := txn.Set(logKey(seq), b); err != nil {
				return err
			}
		}
		return putUint(txn, logLastKey, seq)
	})
	if err != nil {
		return 0, fmt.Errorf("append to log: %w", err)
	}
	// The store runs Badger without per-write fsync; syncing here makes this
	// append, and every transaction before it, durable before we acknowledge.
	if err := l.db.Sync(); err != nil {
		return 0, fmt.Errorf("sync log: %w", err)
	}
	l.last = seq
	return seq, nil
}

func (l *badgerLog) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	return l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: logPrefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		n := 0
		for it.Seek(logKey(after + 1)); it.Valid(); it.Next() {
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var rec index.Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return fmt.Errorf("read log record %x: %w", it.Item().Key(), err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *badgerLog) Truncate(upto uint64) error {
	wb := l.db.NewWriteBatch()
	defer wb.Cancel()
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: logPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if binary.BigEndian.Uint64(k[len(logPrefix):]) > upto {
				break
			}
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("truncate log: %w", err)
	}
	return wb.Flush()
}

func getUint(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err == badger.ErrKeyNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("key %s: want 8 bytes, have %d", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func putUint(txn *badger.Txn, key []byte, v uint64) error {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return txn.Set(key, b)
}
