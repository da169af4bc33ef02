package store

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/graph"
	"github.com/zhisou/zhisou/index/indextest"
)

// logBuffer holds log lines; the store's goroutines write while a test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openLogged opens the store at dir with its log lines (debug and up) in
// the returned buffer.
func openLogged(t *testing.T, dir string) (*Store, *logBuffer) {
	t.Helper()
	return openLoggedWith(t, dir, Options{})
}

// openLoggedWith is openLogged with options (their Logger replaced).
func openLoggedWith(t *testing.T, dir string, opts Options) (*Store, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(t.Context(), dir, testAnalyzer(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, buf
}

// savedGraphStore is a closed store at dir with one collection "c" of the
// fixture (one document removed), and the saved graph its close wrote.
func savedGraphStore(t *testing.T) (dir string, saved []byte) {
	t.Helper()
	dir = t.TempDir()
	s := openWithCollection(t, dir, "c")
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(t.Context(), "c", []string{"leader"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(savedGraphPath(dir, "c"))
	if err != nil {
		t.Fatalf("no saved graph after a clean close: %v", err)
	}
	return dir, saved
}

// TestSavedGraph: a cleanly closed store's next open reads each graph from
// its saved form instead of rebuilding it, and the graph it reads is the one
// the documents give (Verify rebuilds one and compares); the file stays (a
// .tmp file a kill during a save left is ignored). A store without one
// rebuilds.
func TestSavedGraph(t *testing.T) {
	dir, _ := savedGraphStore(t)
	// A kill while a graph is being saved leaves a .tmp file: ignored.
	if err := os.WriteFile(savedGraphPath(dir, "c")+".tmp", []byte("zhisou graph\x00cut"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, logs := openLogged(t, dir)
	if !strings.Contains(logs.String(), "keyword graph read from its saved form") {
		t.Errorf("open after a clean close did not read the saved graph; its log:\n%s", logs)
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Errorf("Verify after reading the saved graph: %v", err)
	}
	if _, err := os.Stat(savedGraphPath(dir, "c")); err != nil {
		t.Errorf("the saved graph is gone after the open (a crash would rebuild): %v", err)
	}
	if _, err := os.Stat(savedGraphPath(dir, "c") + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("a save's leftover .tmp is still there after the open: %v", err)
	}
	hits, err := s.GraphSearch(t.Context(), "c", []index.QueryTerm{{Term: "预算", Weight: 1}}, index.Filter{}, 10)
	if err != nil || len(hits) == 0 {
		t.Errorf("GraphSearch(预算) after the load = %v, %v; want the sales chunk", hits, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, graphDir)); err != nil { // as if killed before the close
		t.Fatal(err)
	}
	s, logs = openLogged(t, dir)
	defer s.Close()
	if strings.Contains(logs.String(), "keyword graph read") {
		t.Errorf("open after a crash read a saved graph; its log:\n%s", logs)
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Errorf("Verify after a rebuild: %v", err)
	}
}

// TestSavedGraphRefused: a saved graph that is damaged, cut short, newer
// than the store, from another dictionary, or that disagrees with the
// collection's counts is not used: the open says why, rebuilds the graph
// from the documents, and the graph is right.
func TestSavedGraphRefused(t *testing.T) {
	dir, saved := savedGraphStore(t)
	// reseal rewrites the header's analyzer fingerprint to fp (when set)
	// and the body to body (when set), with a checksum that fits.
	header := len(graphMagic) + 3 // format, position, lexicon: one byte each here
	reseal := func(fp uint64, body []byte) []byte {
		b := bytes.Clone(saved[:header+8])
		if fp != 0 {
			binary.LittleEndian.PutUint64(b[header:], fp)
		}
		if body == nil {
			body = saved[header+8 : len(saved)-4]
		}
		b = append(b, body...)
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	an := testAnalyzer(t)
	partial := graph.New(an, func() *analysis.Vocab { return nil })
	d := indextest.Fixture()[0]
	d.Seal()
	partial.Put(d.ID, &d)

	// older: the saved graph of this store before one more write.
	older := t.TempDir()
	if err := os.CopyFS(older, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s, _ := openLogged(t, older)
	if _, err := s.Delete(t.Context(), "c", []string{"sales"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newer, err := os.ReadFile(savedGraphPath(older, "c"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, why string
		file      []byte
		dir       string
	}{
		{"flipped byte", "checksum mismatch", func() []byte { b := bytes.Clone(saved); b[len(b)/2] ^= 0x10; return b }(), dir},
		{"cut short", "checksum mismatch", saved[:len(saved)*2/3], dir},
		{"empty", "not a saved graph", nil, dir},
		{"another dictionary", "another segmentation dictionary", reseal(an.Fingerprint()+1, nil), dir},
		{"other counts", "the collection has 4 and 8", reseal(0, partial.AppendBinary(nil)), dir},
		{"newer than the store", "saved at position 8; the store is at 7", newer, dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(tc.dir, graphDir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(savedGraphPath(tc.dir, "c"), tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			s, logs := openLogged(t, tc.dir)
			defer s.Close()
			if !strings.Contains(logs.String(), "saved keyword graph not used") || !strings.Contains(logs.String(), tc.why) {
				t.Errorf("open with a saved graph (%s) did not refuse it saying %q; its log:\n%s", tc.name, tc.why, logs)
			}
			if err := s.Verify(t.Context(), "c"); err != nil {
				t.Errorf("Verify after the rebuild: %v", err)
			}
		})
	}
}

// TestSavedGraphCaughtUp: after a crash, the graph saved at the last clean
// close is brought up to date from the write log: the documents written,
// edited and deleted since are read again, and the graph equals the one the
// documents give. Too many records since, or one that changed the collection
// beyond its documents, and the open rebuilds instead.
func TestSavedGraphCaughtUp(t *testing.T) {
	dir, _ := savedGraphStore(t)
	s := openTestStore(t, dir)
	fx := indextest.Fixture()
	edited := fx[0]
	edited.Chunks = nil
	edited.Title += "（修订）"
	for i := range fx[0].Chunks {
		ch := fx[0].Chunks[i]
		ch.Text += " 新增的预算审批流程说明。"
		edited.Chunks = append(edited.Chunks, ch)
	}
	added := indextest.Doc("budget", "季度预算编制", "预算编制要先收集各部门的需求，再按优先级排序。")
	if _, err := s.Upsert(t.Context(), "c", []index.Document{edited, added}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(t.Context(), "c", []string{"safety"}); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, dir)
	// The same crash, then the collection deleted and made again.
	recreated := crashImage(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, logs := openLogged(t, img)
	if !strings.Contains(logs.String(), "saved keyword graph brought up to date") || !strings.Contains(logs.String(), "documents=3") {
		t.Errorf("open after a crash did not bring the saved graph up to date (3 documents); its log:\n%s", logs)
	}
	if err := s2.Verify(t.Context(), "c"); err != nil {
		t.Errorf("Verify after catching up: %v", err)
	}
	hits, err := s2.GraphSearch(t.Context(), "c", []index.QueryTerm{{Term: "优先级", Weight: 1}}, index.Filter{}, 10)
	if err != nil || len(hits) == 0 || !strings.HasPrefix(hits[0].ChunkID, "budget") {
		t.Errorf("GraphSearch(优先级) after catching up = %v, %v; want the added document", hits, err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	// Too many records since: rebuilt.
	img = crashImage(t, dir)
	if err := os.MkdirAll(filepath.Join(img, graphDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// (the clean close above saved the caught-up graph: put the old one back)
	old, err := os.ReadFile(savedGraphPath(recreated, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(savedGraphPath(img, "c"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	// refused opens dir, wants the saved graph refused saying why, and the
	// rebuilt graph right.
	refused := func(dir string, opts Options, why, what string) {
		t.Helper()
		s, logs := openLoggedWith(t, dir, opts)
		defer s.Close()
		if !strings.Contains(logs.String(), "saved keyword graph not used") || !strings.Contains(logs.String(), why) {
			t.Errorf("%s was not refused; its log:\n%s", what, logs)
		}
		if err := s.Verify(t.Context(), "c"); err != nil {
			t.Errorf("Verify after the rebuild: %v", err)
		}
	}
	refused(img, Options{maxGraphCatchUp: 2}, "records later", "a graph 3 records behind, with at most 2 followed,")

	s4 := openTestStore(t, recreated)
	if err := s4.DeleteCollection(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s4.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s4.Upsert(t.Context(), "c", []index.Document{added}); err != nil {
		t.Fatal(err)
	}
	img = crashImage(t, recreated)
	s4.Close()
	if err := os.WriteFile(savedGraphPath(img, "c"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	refused(img, Options{}, "changes the collection", "a graph saved before the collection was deleted and made again")
}

// TestSavedGraphWhileIdle: between clean closes, the graph is saved again
// once writes have paused and it is far enough behind, so a crash later
// finds it current; while writes go on (here: a pause never long enough) it
// is not.
func TestSavedGraphWhileIdle(t *testing.T) {
	dir := t.TempDir()
	s, logs := openLogged(t, dir)
	defer s.Close()
	s.wmu.Lock()
	s.graphSaveRecords, s.graphSaveIdle = 3, time.Hour
	s.wmu.Unlock()
	if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // two ticks of the state loop
	if _, err := os.Stat(savedGraphPath(dir, "c")); !os.IsNotExist(err) {
		t.Fatalf("the graph was saved before writes had paused long enough: %v", err)
	}
	s.wmu.Lock()
	s.graphSaveIdle = 0
	s.wmu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(savedGraphPath(dir, "c"))
		if err == nil {
			sg := &savedGraph{}
			if err := sg.decode(b); err != nil {
				t.Fatalf("the graph saved while idle does not decode: %v", err)
			}
			if pos, _, _ := s.Positions(); sg.pos == pos {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no graph saved at the store's position 10 s after writes paused; log:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "keyword graphs saved while writes paused") {
		t.Errorf("the save was not logged; log:\n%s", logs)
	}
	img := crashImage(t, dir)
	s2, logs2 := openLogged(t, img)
	defer s2.Close()
	if !strings.Contains(logs2.String(), "keyword graph read from its saved form") || strings.Contains(logs2.String(), "brought up to date") {
		t.Errorf("after a crash, the graph saved while idle was not read as current; its log:\n%s", logs2)
	}
	if err := s2.Verify(t.Context(), "c"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestSavedGraphNotWritable: a graph that cannot be saved (here the path
// its directory needs is taken by a file) costs the next start a rebuild,
// nothing else: the close succeeds, warning, and the store opens whole.
func TestSavedGraphNotWritable(t *testing.T) {
	dir := t.TempDir()
	s, logs := openLogged(t, dir)
	if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(t.Context(), "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, graphDir), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close when the graph cannot be saved: %v", err)
	}
	if !strings.Contains(logs.String(), "cannot save the keyword graphs") {
		t.Errorf("no warning that the graph was not saved; log:\n%s", logs.String())
	}
	s, logs2 := openLogged(t, dir)
	defer s.Close()
	if strings.Contains(logs2.String(), "keyword graph read") {
		t.Errorf("a graph was read; log:\n%s", logs2.String())
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Errorf("Verify after the rebuild: %v", err)
	}
	checkFixture(t, s, "c")
}
