package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// TestBackupRestore: a backup taken while the store serves restores into a
// new directory that opens with the same documents, keys and position, its
// bleve index rebuilt and verified; a backup cut short, or with a byte
// changed, is refused and leaves nothing behind; a non-empty target is
// refused.
func TestBackupRestore(t *testing.T) {
	ctx := t.Context()
	s := openWithCollection(t, t.TempDir(), "c")
	defer s.Close()
	if _, err := s.Upsert(ctx, "c", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	token, _, err := s.CreateKey("app", index.RoleRead, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Backup(f)
	if err = errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	if info.Pos != s.pos || info.Bytes == 0 {
		t.Errorf("backup info = %+v, want position %d", info, s.pos)
	}
	// A write after the backup is not in it.
	if _, err := s.Upsert(ctx, "c", []index.Document{indextest.Doc("later", "后来", "备份之后写入。")}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, file); err != nil {
		t.Fatal(err)
	}
	r := openTestStore(t, dir)
	if err := r.Verify(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for _, d := range indextest.Fixture() {
		if _, err := r.Document(ctx, "c", d.ID); err != nil {
			t.Errorf("restored store lacks %s: %v", d.ID, err)
		}
	}
	if _, err := r.Document(ctx, "c", "later"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("a document written after the backup is in it: %v", err)
	}
	if _, err := r.KeyByToken(token); err != nil {
		t.Errorf("the key does not work in the restored store: %v", err)
	}
	if err := Restore(dir, file); !errors.Is(err, index.ErrExists) {
		t.Errorf("Restore into a non-empty directory = %v, want ErrExists", err)
	}

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"cut short": b[:len(b)/2],
		"one byte changed": func() []byte {
			c := append([]byte{}, b...)
			c[len(c)/3] ^= 1
			return c
		}(),
		"not a backup": []byte("hello"),
	} {
		p := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(t.TempDir(), "r")
		if err := Restore(d, p); err == nil {
			t.Errorf("Restore of a backup %s succeeded", name)
		} else if !errors.Is(err, index.ErrDamaged) {
			t.Logf("Restore of a backup %s: %v", name, err)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("Restore of a backup %s left %s behind", name, d)
		}
	}
}
