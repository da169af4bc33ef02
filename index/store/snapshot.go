package store

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/zhisou/zhisou/index"
)

// Snapshots. A snapshot is a tar archive of the store's backup (file
// snapshotBackup, see Backup) and a copy of each collection's bleve index
// (under snapshotBleve/<collection>/), so that a replica restored from it
// opens without indexing anything: each index catches up from the log from
// its own position, which is never beyond the backup's.

const (
	snapshotBackup = "badger.bak"
	snapshotBleve  = "bleve"
	// snapshotEnd is the archive's last entry: an archive without it was
	// cut short, even at a file's boundary.
	snapshotEnd = "end"
	// snapshotTmp prefixes the working directories snapshots are built in
	// (in the data directory, on its file system); Open removes leftovers.
	snapshotTmp = ".snapshot-"
)

// Snapshot writes a snapshot of the store to w and returns the position
// every part of it holds at least (the backup may hold more).
func (s *Store) Snapshot(w io.Writer) (pos uint64, err error) {
	s.wmu.Lock()
	if err := s.markTextPositions(); err != nil {
		s.logger.Warn("could not mark the bleve indexes current", "err", err)
	}
	pos = s.pos
	s.wmu.Unlock()
	tmp, err := os.MkdirTemp(s.dir, snapshotTmp)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	// The indexes first, then the backup: an index is never ahead of
	// Badger, so each copy is at most where the backup is.
	for _, info := range s.Collections() {
		c, err := s.get(info.Collection.Name)
		if errors.Is(err, index.ErrNotFound) {
			continue // deleted meanwhile
		} else if err != nil {
			return 0, err
		}
		if err := c.text.CopyTo(filepath.Join(tmp, snapshotBleve, info.Collection.Name)); err != nil {
			return 0, fmt.Errorf("snapshot: %w", err)
		}
	}
	f, err := os.Create(filepath.Join(tmp, snapshotBackup))
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	_, err = s.Backup(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tmp, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.WriteHeader(&tar.Header{Name: snapshotEnd, Mode: 0o644, Typeflag: tar.TypeReg})
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	return pos, nil
}

// RestoreSnapshot loads the snapshot read from r into dir, which must not
// exist or be empty; open the store there afterwards with the log the
// snapshot was taken from. A snapshot that is cut short or damaged fails with
// index.ErrDamaged, and dir is removed again.
func RestoreSnapshot(dir string, r io.Reader) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore into %s: %w: the directory is not empty", dir, index.ErrExists)
	}
	tmp := filepath.Clean(dir) + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	tr := tar.NewReader(r)
	for ended := false; ; {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) && ended {
			break
		} else if errors.Is(err, io.EOF) {
			return fmt.Errorf("restore: %w: the snapshot is cut short (no end)", index.ErrDamaged)
		} else if err != nil {
			return fmt.Errorf("restore: %w: the snapshot is not a whole archive: %w", index.ErrDamaged, err)
		}
		if ended {
			return fmt.Errorf("restore: %w: the snapshot goes on after its end", index.ErrDamaged)
		}
		if h.Name == snapshotEnd {
			ended = true
			continue
		}
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !(name == snapshotBackup || strings.HasPrefix(name, snapshotBleve+"/")) || strings.Contains(name, "..") {
			return fmt.Errorf("restore: %w: the snapshot holds %q, which no snapshot has", index.ErrDamaged, h.Name)
		}
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: the snapshot is cut short in %s", index.ErrDamaged, name)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, snapshotBackup)); err != nil {
		return fmt.Errorf("restore: %w: the snapshot has no backup of the store", index.ErrDamaged)
	}
	if _, err := restore(dir, filepath.Join(tmp, snapshotBackup)); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(tmp, snapshotBleve)); err == nil {
		if err := os.Rename(filepath.Join(tmp, snapshotBleve), filepath.Join(dir, snapshotBleve)); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}

// removeSnapshotLeftovers removes the working directories of snapshots a
// crash interrupted.
func removeSnapshotLeftovers(dir string) {
	m, _ := filepath.Glob(filepath.Join(dir, snapshotTmp+"*"))
	for _, p := range m {
		os.RemoveAll(p)
	}
}
