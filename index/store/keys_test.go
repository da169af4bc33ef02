package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
)

// TestKeys: a created key authenticates with its role and collections, a
// wrong secret, an unknown id or a malformed token does not, a revoked key no
// longer does, bad arguments are refused, and the secret is nowhere in the
// data directory.
func TestKeys(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if has, err := s.HasKeys(); err != nil || has {
		t.Fatalf("HasKeys on a new store = %v, %v", has, err)
	}
	token, k, err := s.CreateKey("app-a", index.RoleRead, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.KeyByToken(token)
	if err != nil || got.ID != k.ID || got.Role != index.RoleRead || !got.Covers("a") || got.Covers("b") {
		t.Fatalf("KeyByToken = %+v, %v; want the read key of collection a", got, err)
	}
	if has, _ := s.HasKeys(); !has {
		t.Error("HasKeys after CreateKey = false")
	}
	for _, bad := range []string{"", "zsk_", token + "x", strings.Replace(token, k.ID, "000000000000", 1), "Bearer " + token} {
		if _, err := s.KeyByToken(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("KeyByToken(%q) = %v, want ErrBadKey", bad, err)
		}
	}
	for _, args := range []struct {
		name, role string
		colls      []string
	}{{"", index.RoleRead, []string{"a"}}, {"x", "owner", []string{"a"}}, {"x", index.RoleRead, nil}, {"x", index.RoleRead, []string{"Bad Name"}}} {
		if _, _, err := s.CreateKey(args.name, args.role, args.colls); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("CreateKey(%q, %q, %q) = %v, want ErrInvalid", args.name, args.role, args.colls, err)
		}
	}
	if _, err := s.RevokeKey(k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByToken(token); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("KeyByToken(revoked) = %v, want ErrBadKey saying revoked", err)
	}
	if _, err := s.RevokeKey("nope"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	secret := token[len("zsk_")+len(k.ID)+1:]
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error {
				if bytes.Contains(v, []byte(secret)) {
					t.Errorf("the key's secret is stored under %s", it.Item().Key())
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store that never had a key adopts the operator's token as its first
// admin key, once; one that has or had keys ignores it; a malformed token is
// refused.
func TestAdoptFirstKey(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	tok, err := NewKeyToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdoptFirstKey("zsk_short_x", "boot"); !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "zhisou keys token") {
		t.Fatalf("a malformed token: %v; want ErrInvalid naming zhisou keys token", err)
	}
	if ok, err := s.AdoptFirstKey(tok, "boot"); !ok || err != nil {
		t.Fatalf("first adoption: %v, %v", ok, err)
	}
	k, err := s.KeyByToken(tok)
	if err != nil || k.Role != index.RoleAdmin || !k.Covers("anything") {
		t.Fatalf("the adopted key: %+v, %v; want an admin key over every collection", k, err)
	}
	if _, err := s.RevokeKey(k.ID); err != nil {
		t.Fatal(err)
	}
	// Revoked, it stays revoked: a restart with the same token does not
	// bring it back.
	if ok, err := s.AdoptFirstKey(tok, "boot"); ok || err != nil {
		t.Fatalf("adoption on a store that had a key: %v, %v; want nothing done", ok, err)
	}
	if _, err := s.KeyByToken(tok); !errors.Is(err, ErrBadKey) {
		t.Fatalf("the revoked bootstrap key after a second adoption: %v; want ErrBadKey", err)
	}
}
