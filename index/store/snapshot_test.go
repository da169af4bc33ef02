package store

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/indextest"
)

// A snapshot holds the backup and the bleve indexes: restored, the store
// opens with the same documents and chunks, its indexes taken from the
// snapshot (at the store's position), not rebuilt. One cut short, or one
// holding a file no snapshot has, is refused and leaves no directory.
func TestSnapshotRoundTrip(t *testing.T) {
	s := openWithCollection(t, t.TempDir(), "kb")
	ctx := t.Context()
	if _, err := s.Upsert(ctx, "kb", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	pos, err := s.Snapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if pos != s.Pos() {
		t.Fatalf("snapshot at %d; the store is at %d", pos, s.Pos())
	}
	want, _, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if err := RestoreSnapshot(dir, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	idx, err := bm25.Open(filepath.Join(dir, "bleve", "kb"), bm25.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := idx.Pos(); err != nil || p != pos {
		t.Fatalf("the restored index is at %d (%v); want the snapshot's %d", p, err, pos)
	}
	idx.Close()
	r := openTestStore(t, dir)
	got, _, err := r.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("restored digest %s; the store's %s", got, want)
	}
	if err := r.Verify(ctx, "kb"); err != nil {
		t.Fatal(err)
	}

	cut := filepath.Join(t.TempDir(), "cut")
	if err := RestoreSnapshot(cut, bytes.NewReader(buf.Bytes()[:buf.Len()/2])); !errors.Is(err, index.ErrDamaged) {
		t.Fatalf("restore of half a snapshot: %v; want ErrDamaged", err)
	}
	if _, err := os.Stat(cut); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left %s behind", cut)
	}
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../../etc/x", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if err := RestoreSnapshot(filepath.Join(t.TempDir(), "evil"), &evil); !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), "etc/x") {
		t.Fatalf("restore of an archive with a path outside: %v; want ErrDamaged naming it", err)
	}
}
