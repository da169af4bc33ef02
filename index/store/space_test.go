package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// smallDisk mounts a tmpfs of size MiB for the test, or skips it where the
// test may not mount (not root, no CAP_SYS_ADMIN).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("mounts a filesystem")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small filesystem here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestFullDisk: on a filesystem that fills up, writes are refused with
// ErrNoSpace naming the directory and the free space, before Badger's mapped
// files can take the process down with SIGBUS (which a full disk did);
// reads go on, also after reopening; below the reserve the store does not
// open; once space is freed, it opens with every acknowledged document and
// takes writes again.
func TestFullDisk(t *testing.T) {
	mnt := smallDisk(t, 64)
	dir := filepath.Join(mnt, "store")
	const reserve = 24 << 20
	s, logs := openLoggedWith(t, dir, Options{MinFreeBytes: reserve})
	defer s.Close()
	if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	// Most of the disk taken by something else, to be freed later.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var refused error
	for i := 0; i < 2000 && refused == nil; i++ {
		d := bigDoc(fmt.Sprintf("d%04d", i), 40, i)
		if _, err := s.Upsert(t.Context(), "c", []index.Document{d}); err != nil {
			refused = err
			break
		}
		acked = append(acked, d.ID)
	}
	if !errors.Is(refused, index.ErrNoSpace) || !strings.Contains(refused.Error(), dir) || !strings.Contains(refused.Error(), "MiB free") {
		t.Fatalf("after %d documents, Upsert = %v; want ErrNoSpace naming %s and its free space", len(acked), refused, dir)
	}
	if len(acked) == 0 {
		t.Fatal("no document was written before the disk was full")
	}
	t.Logf("%d documents acknowledged, then: %v", len(acked), refused)
	hits, _, err := s.Search(t.Context(), "c", []index.QueryTerm{{Term: "客户", Weight: 1}}, index.Filter{}, 3)
	if err != nil || len(hits) == 0 {
		t.Errorf("search on a full disk = %d hits, %v; want reads to go on", len(hits), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The keyword graph is not saved into the reserve either.
	if !strings.Contains(logs.String(), "cannot save the keyword graphs") || !strings.Contains(logs.String(), "kept in reserve") {
		t.Errorf("the close on a full disk did not decline to save the keyword graph; its log:\n%s", logs)
	}
	// fillTo leaves about free bytes on the disk, with a file removed later
	// (or by shrinking the first filler, when the close took the disk
	// below the mark: it flushes a memtable).
	var fillers []string
	fillTo := func(free uint64) {
		t.Helper()
		have, err := freeBytes(mnt)
		if err != nil {
			t.Fatal(err)
		}
		if have < free {
			fi, err := os.Stat(filler)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filler, max(0, fi.Size()-int64(free-have))); err != nil {
				t.Fatal(err)
			}
			return
		}
		if have == free {
			return
		}
		f := filepath.Join(mnt, fmt.Sprintf("filler%d", len(fillers)+1))
		if err := os.WriteFile(f, make([]byte, have-free), 0o644); err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, f)
	}
	// Just above the reserve, the store opens for reading; a write of a few
	// MiB is refused.
	fillTo(reserve + 256<<10)
	s, err = Open(t.Context(), dir, testAnalyzer(t), Options{MinFreeBytes: reserve})
	if err != nil {
		t.Fatalf("Open with the reserve free: %v", err)
	}
	fillTo(reserve + 256<<10) // opening may have taken or freed some
	if _, err := s.Upsert(t.Context(), "c", []index.Document{bigDoc("more", 2000, 0)}); !errors.Is(err, index.ErrNoSpace) {
		t.Errorf("Upsert after reopening on a full disk = %v; want ErrNoSpace", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Below the reserve, it does not open at all.
	fillTo(reserve - 4<<20)
	if s, err := Open(t.Context(), dir, testAnalyzer(t), Options{MinFreeBytes: reserve}); !errors.Is(err, index.ErrNoSpace) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open below the reserve = %v; want ErrNoSpace", err)
	}
	for _, f := range fillers {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	// And what the closes took meanwhile (a flushed memtable, the saved
	// keyword graph, which stays on disk between opens).
	fillTo(reserve + 4<<20)
	s, err = Open(t.Context(), dir, testAnalyzer(t), Options{MinFreeBytes: reserve})
	if err != nil {
		t.Fatalf("Open after freeing space: %v", err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Document(t.Context(), "c", id); err != nil {
			t.Fatalf("acknowledged document %s after reopening: %v", id, err)
		}
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Error(err)
	}
	if _, err := s.Upsert(t.Context(), "c", []index.Document{indextest.Fixture()[0]}); err != nil {
		t.Errorf("a write after freeing space: %v", err)
	}
}
