package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
	"google.golang.org/protobuf/proto"

	"github.com/zhisou/zhisou/index"
)

// Damaged Badger files must fail the open with an error, but badger v4.9.6
// panics on some of them in goroutines of its own, where nothing can recover:
// a table file cut short (its footer gone) makes OpenTable read past the end.
// So the store checks the table files before Badger opens: their footers and
// indexes (checkTableFiles), then every block (verifyTableBlocks).

// removeEmptyLogFiles deletes the empty .mem and .vlog files a kill leaves
// in dir when it lands between Badger creating such a file and sizing it:
// badger v4.9.6 refuses to open a directory holding one ("while opening
// memtables ... Create a new file", dgraph-io/badger#2207). An empty file
// holds no entry, so nothing is lost. Called under Badger's directory lock
// (checkBadgerDir), so it never touches the files of a live server.
func removeEmptyLogFiles(dir string, logger *slog.Logger) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if ext := filepath.Ext(e.Name()); ext != ".mem" && ext != ".vlog" {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return err
		}
		logger.Warn("removed an empty Badger file left by a crash", "file", p)
	}
	return nil
}

// checkBadgerDir prepares and checks Badger's directory before Badger opens
// it, under its directory lock (so never the files of a live server, which
// could delete a table while it is read): it removes what a crash leaves
// (removeEmptyLogFiles), checks each table's footer and index
// (checkTableFiles) and every block (verifyTableBlocks), and returns the
// tables the MANIFEST lists. damaged is the
// error of a block that fails its check, which acceptDamage lets the open go
// on with; any other error fails it.
func checkBadgerDir(dir string, logger *slog.Logger) (tables map[uint64]badger.TableManifest, damaged, err error) {
	unlock, err := lockBadgerDir(dir)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	if err := removeEmptyLogFiles(dir, logger); err != nil {
		return nil, nil, err
	}
	t, err := checkTableFiles(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w; restore the data directory from a backup", err)
	}
	return t, verifyTableBlocks(dir, t), nil
}

// checkTableFiles checks the footer and index of every table file that
// Badger's MANIFEST lists, as Table.initIndex reads them (table/table.go):
// the checksum length in the last 4 bytes, the checksum before it, the index
// length before that, and the index's checksum. A file that fails is named in
// the error. Table files the MANIFEST does not list are left alone: a kill
// during a flush or compaction leaves such a file, empty or half written,
// and Badger deletes it when it opens. A MANIFEST that cannot be read is left
// to Badger to refuse.
func checkTableFiles(dir string) (map[uint64]badger.TableManifest, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a new store
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mf, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir))
	if err != nil {
		return nil, nil
	}
	for id := range mf.Tables {
		p := table.NewFilename(id, dir)
		if err := checkTableFile(p); err != nil {
			return nil, fmt.Errorf("%w: table file %s: %w", index.ErrDamaged, p, err)
		}
	}
	return mf.Tables, nil
}

func checkTableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	// The footer, read from the end: only the index and its checksum are
	// read, not the blocks (Badger's own check reads those).
	tail := func(end int64, n int) ([]byte, error) {
		b := make([]byte, n)
		if end < int64(n) {
			return nil, fmt.Errorf("%d bytes, shorter than its footer", size)
		}
		if _, err := f.ReadAt(b, end-int64(n)); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := tail(size, 4)
	if err != nil {
		return err
	}
	pos := size - 4
	chkLen := int64(binary.BigEndian.Uint32(b))
	if pos -= chkLen; chkLen > 1<<10 || pos < 4 {
		return fmt.Errorf("checksum length %d does not fit in %d bytes: cut short or overwritten", chkLen, size)
	}
	b, err = tail(pos+chkLen, int(chkLen))
	if err != nil {
		return err
	}
	var chk pb.Checksum
	if err := proto.Unmarshal(b, &chk); err != nil {
		return fmt.Errorf("checksum unreadable: %w", err)
	}
	if b, err = tail(pos, 4); err != nil {
		return err
	}
	pos -= 4
	idxLen := int64(binary.BigEndian.Uint32(b))
	if idxLen > pos {
		return fmt.Errorf("index length %d does not fit in %d bytes: cut short or overwritten", idxLen, size)
	}
	if b, err = tail(pos, int(idxLen)); err != nil {
		return err
	}
	if err := y.VerifyChecksum(b, &chk); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// verifyTableBlocks checks the checksum of every block of the tables that
// checkTableFiles found, before Badger opens them: each table file is opened
// read-only on its own, without a block cache (the check fills none, and a
// table's blocks are garbage once it is checked), the tables spread over the
// cores. In badger v4.9.6 a block that fails the check makes
// Table.VerifyChecksum dereference the nil block it got (table/table.go:711)
// instead of returning the error; that panic is recovered here as the failure
// it reports. (For the same reason the store does not let Badger verify tables
// as it opens them, in goroutines of its own.) The first failure, by table id,
// is returned, naming its file.
func verifyTableBlocks(dir string, tables map[uint64]badger.TableManifest) error {
	ids := slices.Sorted(maps.Keys(tables))
	errs := make([]error, len(ids))
	next := make(chan int, len(ids))
	for i := range ids {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ids)) {
		wg.Go(func() {
			for i := range next {
				p := table.NewFilename(ids[i], dir)
				if err := verifyTableFile(p, tables[ids[i]].Compression); err != nil {
					errs[i] = fmt.Errorf("%w: table file %s failed its checksum: %w", index.ErrDamaged, p, err)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// anyCompressed reports whether any of the tables was written compressed.
func anyCompressed(tables map[uint64]badger.TableManifest) bool {
	for _, t := range tables {
		if t.Compression != options.None {
			return true
		}
	}
	return false
}

func verifyTableFile(path string, compression options.CompressionType) (err error) {
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	// OpenTable closes the file when it fails; Close (not DecrRef, which
	// deletes a table's file at its last reference) when it does not.
	t, err := table.OpenTable(mf, table.Options{ReadOnly: true, ChkMode: options.OnBlockRead, Compression: compression, BlockSize: 4 << 10})
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("badger: %v", r)
		}
		err = errors.Join(err, t.MmapFile.Close(-1))
	}()
	return t.VerifyChecksum()
}
