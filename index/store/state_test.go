package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// damagedStore writes the fixture into a store in a new directory and closes
// it, so that the state file records it; then damage changes the directory.
func damagedStore(t *testing.T, damage func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damage(dir)
	return dir
}

// openDamaged opens dir, expecting ErrDamaged with a message that says
// each of want; then opens it with AcceptDamage.
func openDamaged(t *testing.T, dir string, want ...string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dir, testAnalyzer(t), Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a damaged store succeeded; want ErrDamaged")
	}
	if !errors.Is(err, index.ErrDamaged) {
		t.Fatalf("Open = %v; want ErrDamaged", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Open error %q does not say %q", err, w)
		}
	}
	s, err = Open(t.Context(), dir, testAnalyzer(t), Options{AcceptDamage: true})
	if err != nil {
		t.Fatalf("Open with AcceptDamage: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStateTruncatedManifest: a MANIFEST truncated after its header makes
// Badger open with no tables, so the store was served empty. Now the write
// log, in files of its own, still holds every record, and the store rebuilds
// Badger from it as it opens (TestLogDroppedAfterBackup covers a log that no
// longer does). (Truncated to nothing, Badger itself refuses it.)
func TestStateTruncatedManifest(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		if err := os.Truncate(filepath.Join(dir, "badger", "MANIFEST"), 8); err != nil {
			t.Fatal(err)
		}
	})
	s := openTestStore(t, dir)
	checkFixture(t, s, "c")
}

// TestStateLostCollection: the collection catalog lost (as when a damaged
// table drops out at compaction) while the position stays: the open names
// the missing collection.
func TestStateLostCollection(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(collectionKeyP + "c")) })
		if err = errors.Join(err, db.Close()); err != nil {
			t.Fatal(err)
		}
	})
	s := openDamaged(t, dir, `collection "c" (5 documents) is missing`)
	if len(s.Collections()) != 0 {
		t.Errorf("collections after accepting the damage: %v", s.Collections())
	}
}

// TestStateUnreadable: a state file that is not JSON is damage too.
func TestStateUnreadable(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := Open(t.Context(), dir, testAnalyzer(t), Options{}); !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), StateFile) {
		t.Fatalf("Open = %v; want ErrDamaged naming %s", err, StateFile)
	}
}

// TestStateAllowsDeletesSinceItWasWritten: a state file older than the last
// writes (a crash within the second before it is rewritten) is no damage when
// those writes deleted a collection it lists, or added documents.
func TestStateAllowsDeletesSinceItWasWritten(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if err := s.CreateCollection(ctx, index.DefaultCollection("gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()[:2]); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	err := s.saveState()
	s.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCollection(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()[2:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.Verify(ctx, "c"); err != nil {
		t.Error(err)
	}
}

// tableFiles flattens the store's Badger so that its data is in table files
// (Badger writes a table on close only when a memtable holds enough), and
// returns their paths.
func tableFiles(t *testing.T, dir string) []string {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err = errors.Join(db.Flatten(1), db.Close()); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "badger", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file to damage")
	}
	return ssts
}

// TestStateFlippedTableBlock: one flipped block in a Badger table is found
// by the table's checksum when the store opens, instead of reading as absent
// keys (which is what a failed block check does in Badger's lookups).
func TestStateFlippedTableBlock(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		ssts := tableFiles(t, dir)
		for _, p := range ssts {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for i := len(b) / 4; i < len(b)/4+64 && i < len(b); i++ {
				b[i] ^= 0xFF
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	s, err := Open(t.Context(), dir, testAnalyzer(t), Options{})
	if err == nil {
		verr := s.Verify(t.Context(), "c")
		s.Close()
		t.Fatalf("the store opened with a flipped table block (Verify: %v)", verr)
	}
	if !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("Open = %v; want ErrDamaged, a checksum error", err)
	}
	// Opened anyway, the store neither reads the graph its last clean
	// close saved nor saves the one it builds from the damaged tables.
	var logs bytes.Buffer
	s, err = Open(t.Context(), dir, testAnalyzer(t), Options{AcceptDamage: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open with AcceptDamage: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "badger's tables are damaged") {
		t.Errorf("the saved graph was not refused for the damaged tables; log:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, graphDir)); !os.IsNotExist(err) {
		t.Errorf("a store opened with damaged tables saved its graph: %v", err)
	}
}

// TestStateTruncatedTable: a table file cut short used to panic Badger in a
// goroutine of its own, killing the process; the store names the file.
func TestStateTruncatedTable(t *testing.T) {
	var cut string
	dir := damagedStore(t, func(dir string) {
		cut = tableFiles(t, dir)[0]
		fi, err := os.Stat(cut)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(cut, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	})
	_, err := Open(t.Context(), dir, testAnalyzer(t), Options{})
	if !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), cut) {
		t.Fatalf("Open = %v; want ErrDamaged naming %s", err, cut)
	}
}

// TestStateOrphanTables: a kill during a memtable flush or a compaction
// leaves a table file that the MANIFEST does not list, empty or half written
// (TestKillMatrix met one). It is no damage: the store opens, and Badger
// deletes it.
func TestStateOrphanTables(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		for name, b := range map[string][]byte{"000900.sst": nil, "000901.sst": make([]byte, 1<<20)} {
			if err := os.WriteFile(filepath.Join(dir, "badger", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	s := openTestStore(t, dir)
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Error(err)
	}
}

// TestCheckTableFile: the footer check names what is wrong with a table
// file whose end is damaged, reading only its end.
func TestCheckTableFile(t *testing.T) {
	var ssts []string
	damagedStore(t, func(dir string) { ssts = tableFiles(t, dir) })
	good, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTableFile(ssts[0]); err != nil {
		t.Fatalf("checkTableFile of a whole table: %v", err)
	}
	chkLen := int(binary.BigEndian.Uint32(good[len(good)-4:]))
	for _, tc := range []struct {
		name, want string
		b          []byte
	}{
		{"two bytes", "shorter than its footer", good[:2]},
		{"checksum length overwritten", "checksum length", append(bytes.Clone(good[:len(good)-4]), 0xFF, 0xFF, 0xFF, 0xFF)},
		{"index byte flipped", "index", func() []byte {
			b := bytes.Clone(good)
			b[len(b)-4-chkLen-4-1] ^= 0x55 // the index's last byte
			return b
		}()},
	} {
		p := filepath.Join(t.TempDir(), "000001.sst")
		if err := os.WriteFile(p, tc.b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkTableFile(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkTableFile(%s) = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestTablesUncompressed: the store writes Badger's tables uncompressed
// (each block is checked at every open and read for each hit), and a store
// whose tables are all uncompressed runs without Badger's block cache.
func TestTablesUncompressed(t *testing.T) {
	dir := damagedStore(t, func(string) {}) // a closed store with the fixture
	tables, err := checkTableFiles(filepath.Join(dir, "badger"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables = %v, %v; want some", tables, err)
	}
	for id, tm := range tables {
		if tm.Compression != options.None {
			t.Errorf("table %d is compressed (%v)", id, tm.Compression)
		}
	}
	s := openTestStore(t, dir)
	if got := s.db.Opts().BlockCacheSize; got != 0 {
		t.Errorf("block cache of a store without compressed tables: %d bytes, want none", got)
	}
	checkFixture(t, s, "c")
}
