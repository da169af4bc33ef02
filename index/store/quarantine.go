package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
)

// Quarantine. A logged record that Badger can never apply (it refuses the
// transaction, or the record makes no sense to this version) would otherwise
// fail every later open at "catch up badger". Such a record is set aside
// instead: its description goes under "sys/quarantine/", Badger's position
// moves past it in the same transaction, the derived indexes skip it, and an
// error is logged. A write whose record is quarantined as it is committed
// returns an error to its caller: it is never acknowledged. Errors that may
// pass (I/O, a full disk) are not quarantined: they fail the write or the open.

// errUnappliable marks an apply error that no retry can mend.
var errUnappliable = errors.New("record cannot be applied")

var quarantinePrefix = []byte("sys/quarantine/")

func quarantineKey(seq uint64) []byte {
	k := make([]byte, len(quarantinePrefix)+8)
	copy(k, quarantinePrefix)
	binary.BigEndian.PutUint64(k[len(quarantinePrefix):], seq)
	return k
}

// Quarantined describes a log record that could not be applied and was set
// aside.
type Quarantined struct {
	Seq        uint64    `json:"seq"`
	Op         index.Op  `json:"op"`
	Collection string    `json:"collection"`
	DocID      string    `json:"doc_id,omitempty"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
}

// unappliable reports whether an apply error is one that no retry mends.
func unappliable(err error) bool {
	return errors.Is(err, badger.ErrTxnTooBig) || errors.Is(err, errUnappliable)
}

// quarantine sets record r aside after applying it failed with err, moving
// Badger's position past it. Called with wmu held (or during Open).
func (s *Store) quarantine(r *index.Record, err error) error {
	q := Quarantined{Seq: r.Seq, Op: r.Op, Collection: r.Collection, DocID: r.DocID, Error: err.Error(), At: time.Now().UTC()}
	if r.Doc != nil {
		q.DocID = r.Doc.ID
	}
	werr := s.db.Update(func(txn *badger.Txn) error {
		if err := writeJSON(txn, quarantineKey(r.Seq), &q); err != nil {
			return err
		}
		return putUint(txn, posBadgerKey, r.Seq)
	})
	if werr != nil {
		return fmt.Errorf("quarantine record %d: %w", r.Seq, errors.Join(werr, err))
	}
	s.pos = r.Seq
	s.quarantined[r.Seq] = true
	s.logger.Error("log record quarantined: it cannot be applied, and is skipped", "seq", r.Seq, "op", r.Op,
		"collection", r.Collection, "document", q.DocID, "err", err)
	if dl, ok := s.shared.(DeadLetters); ok {
		// Every replica sets the record aside; the dead-letter copy is
		// one (keyed by position), for an operator to look at.
		if err := dl.DeadLetter(r, q.Error); err != nil {
			s.logger.Warn("could not copy the quarantined record to the dead letters", "seq", r.Seq, "err", err)
		}
	}
	return nil
}

// applyOrQuarantine applies a record to Badger, and quarantines it when the
// failure is one no retry mends; quarantined is then true and err says why
// the record was set aside.
func (s *Store) applyOrQuarantine(r *index.Record) (quarantined bool, err error) {
	err = s.applyBadger(r)
	if err == nil || !unappliable(err) {
		return false, err
	}
	if qerr := s.quarantine(r, err); qerr != nil {
		return false, qerr
	}
	return true, err
}

// loadQuarantined reads the sequence numbers of the quarantined records.
func (s *Store) loadQuarantined() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: quarantinePrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			s.quarantined[binary.BigEndian.Uint64(it.Item().Key()[len(quarantinePrefix):])] = true
		}
		return nil
	})
}

// Quarantined lists the log records set aside because they could not be
// applied, oldest first.
func (s *Store) Quarantined() ([]Quarantined, error) {
	var out []Quarantined
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: quarantinePrefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var q Quarantined
			if err := itemJSON(it.Item(), &q); err != nil {
				return fmt.Errorf("read %s: %w", it.Item().Key(), err)
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

// recordDoc names the document of a record, for messages.
func recordDoc(r *index.Record) string {
	if r.Doc != nil {
		return fmt.Sprintf("document %q", r.Doc.ID)
	}
	if r.DocID != "" {
		return fmt.Sprintf("document %q", r.DocID)
	}
	return fmt.Sprintf("collection %q", r.Collection)
}
