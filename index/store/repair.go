package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/store/wal"
)

// Repairs. The write log has files of its own, checksummed, and keeps every
// record that no backup holds (see dropLog). So when Badger's files are
// damaged beyond what opening repairs by itself, the store can be rebuilt:
// Badger from the newest backup (or from nothing, when the log still starts
// at its first record), then every log record after the backup's position
// replayed into it, and the bleve indexes rebuilt from that.

// RepairInfo describes a repair.
type RepairInfo struct {
	// Aside is the directory the damaged Badger and bleve files (and the
	// saved graphs) were moved to; delete it once the repaired store is
	// checked.
	Aside string
	// BackupPos is the position of the backup restored, 0 when none was.
	BackupPos uint64
	// LogFirst and LogLast are the records the log held.
	LogFirst, LogLast uint64
	// Pos is the repaired store's position.
	Pos         uint64
	Collections []CollectionInfo
}

// Repair rebuilds the store in dir, which no process may hold, from its
// write log, on top of the backup in backupFile when that is not "". The
// log must be whole, and hold every record after the backup's position (or
// every record, when there is no backup). The damaged files are kept in
// RepairInfo.Aside.
func Repair(ctx context.Context, dir, backupFile string, an *analysis.Analyzer, opts Options) (RepairInfo, error) {
	var info RepairInfo
	unlock, err := lockBadgerDir(filepath.Join(dir, "badger"))
	if err != nil {
		return info, fmt.Errorf("repair %s: %w", dir, err)
	}
	defer unlock()
	logDir := filepath.Join(dir, LogDir)
	if !hasSegments(logDir) {
		return info, fmt.Errorf("repair %s: %w: there is no write log in %s to rebuild from; restore a backup with zhisou restore", dir, index.ErrNotFound, logDir)
	}
	w, err := wal.Open(logDir, wal.Options{Logger: opts.Logger})
	if err != nil {
		return info, fmt.Errorf("repair %s: %w", dir, damaged(err))
	}
	info.LogFirst, info.LogLast = w.First(), w.Last()
	_, err = w.Check()
	if err = errors.Join(err, w.Close()); err != nil {
		return info, fmt.Errorf("repair %s: %w; the log cannot be replayed past the damage, so restore the newest backup with zhisou restore", dir, damaged(err))
	}
	if backupFile == "" && info.LogFirst > 1 {
		return info, fmt.Errorf("repair %s: %w: the write log starts at record %d (records before it were dropped once a backup held them); give the newest backup with -backup FILE",
			dir, index.ErrInvalid, info.LogFirst)
	}
	staged := filepath.Join(dir, "repair.new")
	if err := os.RemoveAll(staged); err != nil {
		return info, fmt.Errorf("repair %s: %w", dir, err)
	}
	if backupFile != "" {
		if info.BackupPos, err = restore(staged, backupFile); err != nil {
			return info, fmt.Errorf("repair %s: %w", dir, err)
		}
		if info.BackupPos+1 < info.LogFirst {
			os.RemoveAll(staged)
			return info, fmt.Errorf("repair %s: %w: the backup %s holds records up to %d, but the write log starts at %d; records %d to %d are in neither, so give a newer backup",
				dir, index.ErrInvalid, backupFile, info.BackupPos, info.LogFirst, info.BackupPos+1, info.LogFirst-1)
		}
	}
	info.Aside = filepath.Join(dir, "damaged-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := setAside(dir, info.Aside, staged); err != nil {
		return info, fmt.Errorf("repair %s: %w", dir, err)
	}
	unlock()
	s, err := Open(ctx, dir, an, opts)
	if err != nil {
		return info, fmt.Errorf("repair %s: the rebuild failed (the damaged files are in %s): %w", dir, info.Aside, err)
	}
	info.Pos, _ = s.Position()
	info.Collections = s.Collections()
	return info, s.Close()
}

// setAside moves dir's badger and bleve directories and its saved graphs
// into aside, and a restored Badger from staged (when there is one) into
// their place.
func setAside(dir, aside, staged string) error {
	if err := os.MkdirAll(aside, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"badger", "bleve", graphDir} {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if _, err := os.Stat(staged); err == nil {
		if err := os.Rename(filepath.Join(staged, "badger"), filepath.Join(dir, "badger")); err != nil {
			return err
		}
		if err := os.RemoveAll(staged); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// lockBadgerDir takes the lock Badger takes on its directory, so that a
// repair never runs under a live server.
func lockBadgerDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is in use (stop the server first)", index.ErrLocked, dir)
	}
	done := false
	return func() {
		if !done {
			done = true
			f.Close()
		}
	}, nil
}
