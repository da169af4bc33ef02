package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// The fault suite for the write log and Badger's files: each test damages a
// copy of a store as a disk or a crash would, and checks that the store
// either heals itself with every acknowledged document, or refuses to open
// with ErrDamaged and a message naming what to do, and that the repair it
// names brings every acknowledged document back.

// checkFixture checks that collection c holds the fixture's documents,
// whole, and that Verify passes.
func checkFixture(t *testing.T, s *Store, c string, extra ...string) {
	t.Helper()
	for _, d := range indextest.Fixture() {
		got, err := s.Document(t.Context(), c, d.ID)
		if err != nil {
			t.Errorf("document %s: %v", d.ID, err)
			continue
		}
		if g, w := chunkTexts(got), chunkTexts(d); g != w {
			t.Errorf("document %s: text %q, want %q", d.ID, g, w)
		}
	}
	for _, id := range extra {
		if _, err := s.Document(t.Context(), c, id); err != nil {
			t.Errorf("document %s: %v", id, err)
		}
	}
	info, err := s.Collection(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(indextest.Fixture()) + len(extra)); info.Stats.Docs != want {
		t.Errorf("collection %s has %d documents, want %d", c, info.Stats.Docs, want)
	}
	if err := s.Verify(t.Context(), c); err != nil {
		t.Error(err)
	}
}

func chunkTexts(d index.Document) string {
	var b strings.Builder
	for _, c := range d.Chunks {
		b.WriteString(c.Text)
		b.WriteByte('|')
	}
	return b.String()
}

// smallSegments opens stores whose log starts a new segment every 4 KiB, so
// that a backup lets it drop some.
var smallSegments = Options{LogSegmentBytes: 4 << 10}

// writeMany upserts the fixture one document at a time, then n filler
// documents, so that the log spans several segments.
func writeMany(t *testing.T, s *Store, c string, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		d := indextest.Doc(fmt.Sprintf("%s%03d", prefix, i), "填充", strings.Repeat("培训材料的正文。", 60))
		if _, err := s.Upsert(t.Context(), c, []index.Document{d}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func openOpts(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), dir, testAnalyzer(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLogDroppedAfterBackup: a backup lets the log drop the records it
// holds. Badger lost after that (its MANIFEST cut) cannot heal from the log
// alone: the open refuses, naming zhisou repair; a repair without the backup
// says it needs one; with it, every document comes back, those written
// after the backup too.
func TestLogDroppedAfterBackup(t *testing.T) {
	dir := t.TempDir()
	s := openOpts(t, dir, smallSegments)
	if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	for _, d := range indextest.Fixture() {
		if _, err := s.Upsert(t.Context(), "c", []index.Document{d}); err != nil {
			t.Fatal(err)
		}
	}
	before := writeMany(t, s, "c", "a", 20)
	backup := filepath.Join(t.TempDir(), "b.zhb")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	segs := s.local.w.Segments()
	bi, err := s.Backup(f)
	if err = errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	if s.log.First() <= 1 || s.local.w.Segments() >= segs {
		t.Fatalf("after a backup at %d the log still starts at %d (%d segments, were %d)", bi.Pos, s.log.First(), s.local.w.Segments(), segs)
	}
	after := writeMany(t, s, "c", "b", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Truncate(filepath.Join(dir, "badger", "MANIFEST"), 8); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), dir, testAnalyzer(t), smallSegments)
	if !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), "zhisou repair -backup") {
		t.Fatalf("Open = %v; want ErrDamaged naming zhisou repair -backup", err)
	}
	if _, err := Repair(t.Context(), dir, "", testAnalyzer(t), smallSegments); !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "-backup") {
		t.Fatalf("Repair without the backup = %v; want ErrInvalid asking for -backup", err)
	}
	info, err := Repair(t.Context(), dir, backup, testAnalyzer(t), smallSegments)
	if err != nil {
		t.Fatal(err)
	}
	if info.BackupPos != bi.Pos || info.Pos != info.LogLast {
		t.Errorf("repair: %+v, backup at %d", info, bi.Pos)
	}
	if _, err := os.Stat(filepath.Join(info.Aside, "badger", "MANIFEST")); err != nil {
		t.Errorf("the damaged files were not kept: %v", err)
	}
	s = openOpts(t, dir, smallSegments)
	checkFixture(t, s, "c", slices.Concat(before, after)...)
}

// TestRepairFromTheWholeLog: a flipped block in a Badger table makes the
// open refuse (TestStateFlippedTableBlock); with the whole log still there,
// zhisou repair rebuilds Badger from it alone.
func TestRepairFromTheWholeLog(t *testing.T) {
	dir := damagedStore(t, func(dir string) {
		for _, p := range tableFiles(t, dir) {
			flipRange(t, p, 0.25, 64)
		}
	})
	if _, err := Open(t.Context(), dir, testAnalyzer(t), Options{}); !errors.Is(err, index.ErrDamaged) {
		t.Fatalf("Open = %v; want ErrDamaged", err)
	}
	info, err := Repair(t.Context(), dir, "", testAnalyzer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LogFirst != 1 || info.BackupPos != 0 {
		t.Errorf("repair: %+v", info)
	}
	// The graph saved at the last clean close is derived from the damaged
	// store: set aside with it, never read by the rebuilt one.
	if _, err := os.Stat(filepath.Join(info.Aside, graphDir, "c")); err != nil {
		t.Errorf("the saved graph was not set aside with the damaged files: %v", err)
	}
	checkFixture(t, openTestStore(t, dir), "c")
}

// flipRange inverts n bytes of the file at path, from the fraction at of
// its length.
func flipRange(t *testing.T, path string, at float64, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	from := int(float64(len(b)) * at)
	for i := from; i < from+n && i < len(b); i++ {
		b[i] ^= 0xFF
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// crashImage copies the data directory of an open store, as a kill -9
// would leave it: what the process had written is in the files (the
// page cache survives a process), nothing was closed.
func crashImage(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(to, "badger", "LOCK"))
	return to
}

// TestDamagedMemtableAfterCrash: Badger keeps its newest writes in .mem
// files; a damaged one after a crash made Badger drop writes that had been
// acknowledged, silently. The log holds them, and the open replays them.
func TestDamagedMemtableAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, dir)
	mems, _ := filepath.Glob(filepath.Join(img, "badger", "*.mem"))
	if len(mems) == 0 {
		t.Fatal("no memtable file in the crash image")
	}
	for _, p := range mems {
		// Every entry past the first few hundred bytes fails its checksum.
		b, _ := os.ReadFile(p)
		for i := 300; i < 4096 && i < len(b); i += 7 {
			b[i] ^= 0x5A
		}
		os.WriteFile(p, b, 0o644)
	}
	checkFixture(t, openTestStore(t, img), "c")
}

// TestEmptyBadgerFilesAfterCrash: a kill between Badger creating a .mem or
// .vlog file and sizing it leaves it empty, and Badger then refused to open
// the directory at all ("Create a new file"), which the ingest kill matrix
// hit. The empty files hold nothing; the open removes them and goes on.
func TestEmptyBadgerFilesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, dir)
	for _, name := range []string{"00099.mem", "00099.vlog"} {
		if err := os.WriteFile(filepath.Join(img, "badger", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// Badger alone refuses this directory: the defect worked around.
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(img, "badger")).WithLogger(nil))
		if err == nil {
			db.Close()
			t.Fatalf("badger opened a directory with an empty %s; the workaround may be obsolete", name)
		}
		os.Remove(filepath.Join(img, "badger", name))
	}
	for _, name := range []string{"00099.mem", "00099.vlog"} {
		os.WriteFile(filepath.Join(img, "badger", name), nil, 0o644)
	}
	checkFixture(t, openTestStore(t, img), "c")
}

// TestDamagedLog covers the log's own files.
func TestDamagedLog(t *testing.T) {
	t.Run("flipped byte in a sealed segment", func(t *testing.T) {
		// The open replays only what Badger lacks; CheckLog (zhisou verify)
		// reads it all and names the file.
		dir := t.TempDir()
		s := openOpts(t, dir, smallSegments)
		if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
			t.Fatal(err)
		}
		writeMany(t, s, "c", "a", 12)
		first := filepath.Join(dir, LogDir, fmt.Sprintf("%020d.wal", 1))
		flipRange(t, first, 0.5, 1)
		_, err := s.CheckLog()
		if !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), first) {
			t.Fatalf("CheckLog = %v; want ErrDamaged naming %s", err, first)
		}
	})
	t.Run("flipped byte in the last record", func(t *testing.T) {
		// The end of the log fails its checksum: that is damage, not a
		// torn write, so the open refuses; accepting the damage starts a
		// new log after Badger's position, and later writes are kept.
		dir := damagedStore(t, func(dir string) {
			segs, _ := filepath.Glob(filepath.Join(dir, LogDir, "*.wal"))
			p := segs[len(segs)-1]
			fi, _ := os.Stat(p)
			flipRange(t, p, float64(fi.Size()-3)/float64(fi.Size()), 1)
		})
		s := openDamaged(t, dir, "checksum", "zhisou repair")
		checkFixture(t, s, "c")
		d := indextest.Doc("later", "后来", "之后写入的文档。")
		if _, err := s.Upsert(t.Context(), "c", []index.Document{d}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checkFixture(t, openTestStore(t, dir), "c", "later")
	})
	t.Run("log directory deleted", func(t *testing.T) {
		dir := damagedStore(t, func(dir string) {
			if err := os.RemoveAll(filepath.Join(dir, LogDir)); err != nil {
				t.Fatal(err)
			}
		})
		s := openDamaged(t, dir, "write log", "missing")
		checkFixture(t, s, "c")
	})
	t.Run("torn last write", func(t *testing.T) {
		// A crash in the middle of an append (never acknowledged): the
		// open cuts it off and keeps the rest.
		dir := damagedStore(t, func(dir string) {
			segs, _ := filepath.Glob(filepath.Join(dir, LogDir, "*.wal"))
			f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0, 0, 1, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 99, '{'})
			f.Close()
		})
		s := openTestStore(t, dir)
		checkFixture(t, s, "c")
		if _, err := s.Upsert(t.Context(), "c", []index.Document{indextest.Doc("x", "x", "新的文档。")}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOldLogMovedOut: a store from before the log had files of its own
// kept the log in Badger; opening it moves the records Badger or bleve
// still need into the file log, and drops them from Badger.
func TestOldLogMovedOut(t *testing.T) {
	dir := damagedStore(t, func(string) {})
	// Make it look like the old format: the log back in Badger (records
	// 3.. as the old truncation would have left them), no log directory.
	s := openTestStore(t, dir)
	var recs [][]byte
	err := s.local.w.Replay(2, func(_ uint64, p []byte) error { recs = append(recs, slices.Clone(p)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	last := s.log.Last()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	putOldLog(t, dir, 2, last, recs)
	if err := os.RemoveAll(filepath.Join(dir, LogDir)); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if s.log.First() != 3 || s.log.Last() != last {
		t.Errorf("moved log holds %d..%d, want 3..%d", s.log.First(), s.log.Last(), last)
	}
	if n := countOldLog(t, s); n != 0 {
		t.Errorf("%d old log keys left in Badger", n)
	}
	checkFixture(t, s, "c")
}

// putOldLog writes records first+1.. into Badger as the old format kept
// them.
func putOldLog(t *testing.T, dir string, truncated, last uint64, recs [][]byte) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for i, r := range recs {
			k := binaryKey(oldLogPrefix, truncated+1+uint64(i))
			if err := txn.Set(k, r); err != nil {
				return err
			}
		}
		if err := txn.Delete(logFirstKey); err != nil {
			return err
		}
		return errors.Join(putUint(txn, oldLogLastKey, last), putUint(txn, oldTruncatedKey, truncated))
	})
	if err = errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
}

func binaryKey(prefix []byte, seq uint64) []byte {
	k := slices.Clone(prefix)
	return append(k, byte(seq>>56), byte(seq>>48), byte(seq>>40), byte(seq>>32), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
}

func countOldLog(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: oldLogPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		for _, k := range [][]byte{oldLogLastKey, oldTruncatedKey} {
			if _, err := txn.Get(k); err == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKeysSurviveARebuild: API keys go through the write log, so a Badger
// rebuilt from the log (here: its directory deleted) still knows them, and
// still knows which were revoked.
func TestKeysSurviveARebuild(t *testing.T) {
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	token, _, err := s.CreateKey("app", index.RoleRead, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, rk, err := s.CreateKey("old", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(rk.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "badger")); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if k, err := s.KeyByToken(token); err != nil || k.Name != "app" || !k.Covers("c") || k.Covers("d") {
		t.Errorf("key after the rebuild: %+v, %v", k, err)
	}
	if _, err := s.KeyByToken(revoked); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked key after the rebuild: %v", err)
	}
}

// TestDamagedValueLog: Badger keeps values over 1 MB in its value log. A
// damaged entry there fails its checksum when read: the document read is an
// error (never other text), zhisou verify reports it, and a repair from the
// log brings it back.
func TestDamagedValueLog(t *testing.T) {
	dir := t.TempDir()
	s := openWithCollection(t, dir, "c")
	big := indextest.Doc("big", "大文档", strings.Repeat("价值日志里的长文本。", 40_000)) // 1.2 MB in one chunk
	if _, err := s.Upsert(t.Context(), "c", append(indextest.Fixture(), big)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vlogs, _ := filepath.Glob(filepath.Join(dir, "badger", "*.vlog"))
	damagedOne := false
	for _, p := range vlogs {
		if fi, _ := os.Stat(p); fi.Size() > 1<<20 {
			flipRange(t, p, 0.5, 16)
			damagedOne = true
		}
	}
	if !damagedOne {
		t.Fatal("no value log entry to damage")
	}
	s, err := Open(t.Context(), dir, testAnalyzer(t), Options{})
	if err == nil {
		_, derr := s.Document(t.Context(), "c", "big")
		verr := s.Verify(t.Context(), "c")
		s.Close()
		t.Logf("Document: %v; Verify: %v", derr, verr)
		if !errors.Is(derr, index.ErrDamaged) || !errors.Is(verr, index.ErrDamaged) {
			t.Fatalf("damaged value log: Document = %v, Verify = %v; want both to fail with ErrDamaged", derr, verr)
		}
	} else if !errors.Is(err, index.ErrDamaged) {
		t.Fatalf("Open = %v", err)
	}
	if _, err := Repair(t.Context(), dir, "", testAnalyzer(t), Options{}); err != nil {
		t.Fatal(err)
	}
	checkFixture(t, openTestStore(t, dir), "c", "big")
}

// TestDamagedBleveSegment: bleve's files are derived, and bleve never
// checks the CRC-32 that ends each segment file: a flipped block read as
// other postings. The store checks every segment file as it opens and
// rebuilds an index that fails from Badger.
func TestDamagedBleveSegment(t *testing.T) {
	var damaged []string
	dir := damagedStore(t, func(dir string) {
		damaged, _ = filepath.Glob(filepath.Join(dir, "bleve", "c", "store", "*.zap"))
		if len(damaged) == 0 {
			t.Fatal("no bleve segment to damage")
		}
		for _, p := range damaged {
			flipRange(t, p, 0.3, 32)
		}
	})
	var logs strings.Builder
	s := openOpts(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "fails its checksum") || !strings.Contains(logs.String(), "rebuilt from badger") {
		t.Errorf("the open did not report and rebuild the damaged index; its log:\n%s", logs.String())
	}
	for _, p := range damaged {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("damaged segment %s is still there", p)
		}
	}
	checkFixture(t, s, "c")
}
