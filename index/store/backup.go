package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/zhisou/zhisou/index"
)

// Backups. A backup is Badger's own backup stream of the whole store (the
// truth: collections, documents, chunks, lexicons, keys and the position;
// not the write log, which has files of its own), read at one timestamp, so it is consistent while the store
// serves and writes; then a footer: the stream's SHA-256, its length and a
// magic word, so that a cut or damaged backup is refused at restore. The
// bleve indexes are not in it: a restored store rebuilds them on open.

var backupMagic = [8]byte{'Z', 'H', 'S', 'B', 'A', 'K', '0', '1'}

const backupFooter = sha256.Size + 8 + 8

// BackupInfo describes a backup written.
type BackupInfo struct {
	// Pos is Badger's applied log position when the backup started.
	Pos   uint64
	Bytes int64
}

// Backup writes a backup of the store to w.
func (s *Store) Backup(w io.Writer) (BackupInfo, error) {
	s.wmu.Lock()
	pos := s.pos
	// Not part of the backup (bleve is rebuilt from it), but a log
	// shortened after it must not cost this store's quiet indexes a
	// rebuild at the next open.
	if err := s.markTextPositions(); err != nil {
		s.logger.Warn("could not mark the bleve indexes current", "err", err)
	}
	s.wmu.Unlock()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	if _, err := s.db.Backup(cw, 0); err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	var foot [backupFooter]byte
	copy(foot[:], h.Sum(nil))
	binary.BigEndian.PutUint64(foot[sha256.Size:], uint64(cw.n))
	copy(foot[sha256.Size+8:], backupMagic[:])
	if _, err := w.Write(foot[:]); err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	info := BackupInfo{Pos: pos, Bytes: cw.n + backupFooter}
	// The log keeps what no backup holds; this one holds everything up to
	// pos. A failure here leaves the log longer, not the backup bad.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return info, nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		old, err := getUint(txn, backupPosKey)
		if err != nil || old >= pos {
			return err
		}
		return putUint(txn, backupPosKey, pos)
	})
	if err == nil {
		err = s.dropLog(s.pos)
	}
	if err != nil {
		s.logger.Warn("backup written, but the write log was not shortened", "err", err)
	}
	return info, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Position is Badger's applied log position; ok is false once the store is
// closed.
func (s *Store) Position() (pos uint64, ok bool) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.pos, !s.isClosed()
}

// Restore loads the backup file into dir, which must not exist or be empty;
// open the store there afterwards (its bleve indexes are rebuilt then). A
// backup that is cut short or damaged fails with index.ErrDamaged, and dir
// is removed again.
func Restore(dir, backupFile string) error {
	_, err := restore(dir, backupFile)
	return err
}

// restore is Restore, returning the backup's position.
func restore(dir, backupFile string) (pos uint64, err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("restore into %s: %w: the directory is not empty", dir, index.ErrExists)
	}
	f, err := os.Open(backupFile)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	var foot [backupFooter]byte
	if fi.Size() < backupFooter {
		return 0, fmt.Errorf("restore: %w: %s is %d bytes, not a zhisou backup", index.ErrDamaged, backupFile, fi.Size())
	}
	if _, err := f.ReadAt(foot[:], fi.Size()-backupFooter); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	n := int64(binary.BigEndian.Uint64(foot[sha256.Size:]))
	if !bytes.Equal(foot[sha256.Size+8:], backupMagic[:]) || n != fi.Size()-backupFooter {
		return 0, fmt.Errorf("restore: %w: %s is not a whole zhisou backup (cut short, or another file)", index.ErrDamaged, backupFile)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil).
		WithMemTableSize(32 << 20).WithValueLogFileSize(256 << 20).
		WithCompression(options.None).WithBlockCacheSize(0)) // as Open writes tables
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	h := sha256.New()
	lerr := db.Load(io.TeeReader(io.NewSectionReader(f, 0, n), h), 256)
	if !bytes.Equal(h.Sum(nil), foot[:sha256.Size]) && lerr == nil {
		lerr = fmt.Errorf("%w: %s does not match its checksum", index.ErrDamaged, backupFile)
	}
	if lerr == nil {
		// The restored store starts a write log of its own at the backup's
		// position when it opens; the original's log is not part of it.
		lerr = db.Update(func(txn *badger.Txn) error {
			var err error
			if pos, err = getUint(txn, posBadgerKey); err != nil {
				return err
			}
			return txn.Delete(logFirstKey)
		})
	}
	if err := errors.Join(lerr, db.Close()); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	return pos, nil
}
