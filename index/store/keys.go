package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zhisou/zhisou/index"
)

// API keys. A key is shown once, when it is created: "zsk_" + its id + "_" +
// a 256-bit secret. The store keeps the id, a name, a role, the collections
// the key may reach, and the SHA-256 of the secret, never the secret. Keys
// are written through the write log (index.OpPutKey), like every other
// write, so a store rebuilt from the log keeps them.

// ErrBadKey means a presented key is malformed, unknown or revoked.
var ErrBadKey = errors.New("API key not valid")

var keyPrefix = []byte("sys/keys/")

func keyKey(id string) []byte { return append(append([]byte{}, keyPrefix...), id...) }

// CreateKey creates an API key and returns it (the only time it is shown)
// with its description.
func (s *Store) CreateKey(name, role string, collections []string) (string, index.APIKey, error) {
	switch {
	case name == "" || len(name) > 64 || strings.ContainsAny(name, "\x00\n"):
		return "", index.APIKey{}, fmt.Errorf("%w: key name %q: want 1 to 64 bytes, no NUL or newline", index.ErrInvalid, name)
	case index.RoleRank(role) == 0:
		return "", index.APIKey{}, fmt.Errorf("%w: key role %q: want read, write or admin", index.ErrInvalid, role)
	case len(collections) == 0:
		return "", index.APIKey{}, fmt.Errorf("%w: a key needs the collections it may reach (or %q for all)", index.ErrInvalid, index.AllCollections)
	}
	for _, c := range collections {
		if c == index.AllCollections {
			continue
		}
		if err := index.DefaultCollection(c).Validate(); err != nil {
			return "", index.APIKey{}, fmt.Errorf("key collections: %w", err)
		}
	}
	id, sec, err := newKeyParts()
	if err != nil {
		return "", index.APIKey{}, err
	}
	k := index.APIKey{ID: id, Name: name, Role: role, Collections: slices.Clone(collections), Created: time.Now().UTC()}
	sum := sha256.Sum256([]byte(sec))
	k.Hash = hex.EncodeToString(sum[:])
	if err := s.putKey(&k); err != nil {
		return "", index.APIKey{}, err
	}
	return "zsk_" + k.ID + "_" + sec, k, nil
}

// putKey writes k through the log. Called without wmu.
func (s *Store) putKey(k *index.APIKey) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	recs := []index.Record{{Op: index.OpPutKey, Key: k}}
	if err := s.checkSpace("writing a key", writeSize(recs)); err != nil {
		return err
	}
	if err := s.write(context.Background(), recs, nil); err != nil {
		return fmt.Errorf("write key %s: %w", k.ID, err)
	}
	return nil
}

// putKeyBadger applies an OpPutKey record.
func putKeyBadger(txn *badger.Txn, r *index.Record) error {
	if r.Key == nil || r.Key.ID == "" {
		return fmt.Errorf("%w: a key record without a key", errUnappliable)
	}
	return writeJSON(txn, keyKey(r.Key.ID), r.Key)
}

// Keys lists the API keys, revoked ones included, by id.
func (s *Store) Keys() ([]index.APIKey, error) {
	var out []index.APIKey
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: keyPrefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var k index.APIKey
			if err := itemJSON(it.Item(), &k); err != nil {
				return fmt.Errorf("read %s: %w", it.Item().Key(), err)
			}
			out = append(out, k)
		}
		return nil
	})
	return out, err
}

// HasKeys reports whether any key that is not revoked exists.
func (s *Store) HasKeys() (bool, error) {
	keys, err := s.Keys()
	for _, k := range keys {
		if k.Revoked == nil {
			return true, err
		}
	}
	return false, err
}

// RevokeKey revokes the key with this id; it fails with index.ErrNotFound for
// an unknown id.
func (s *Store) RevokeKey(id string) (index.APIKey, error) {
	var k index.APIKey
	err := s.db.View(func(txn *badger.Txn) error { return readJSON(txn, keyKey(id), &k) })
	if errors.Is(err, index.ErrNotFound) {
		return index.APIKey{}, fmt.Errorf("%w: no key with id %q", index.ErrNotFound, id)
	}
	if err != nil {
		return index.APIKey{}, err
	}
	if k.Revoked == nil {
		now := time.Now().UTC()
		k.Revoked = &now
		if err := s.putKey(&k); err != nil {
			return index.APIKey{}, err
		}
	}
	return k, nil
}

// KeyByToken returns the key that token (as CreateKey returned it) is; it
// fails with ErrBadKey when the token is malformed, unknown or revoked.
func (s *Store) KeyByToken(token string) (index.APIKey, error) {
	rest, ok := strings.CutPrefix(token, "zsk_")
	id, sec, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 {
		return index.APIKey{}, fmt.Errorf("%w: not a zhisou key (want zsk_<id>_<secret>)", ErrBadKey)
	}
	var k index.APIKey
	err := s.db.View(func(txn *badger.Txn) error { return readJSON(txn, keyKey(id), &k) })
	if errors.Is(err, index.ErrNotFound) {
		return index.APIKey{}, fmt.Errorf("%w: unknown key %s", ErrBadKey, id)
	}
	if err != nil {
		return index.APIKey{}, err
	}
	sum := sha256.Sum256([]byte(sec))
	want, err := hex.DecodeString(k.Hash)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return index.APIKey{}, fmt.Errorf("%w: wrong secret for key %s", ErrBadKey, id)
	}
	if k.Revoked != nil {
		return index.APIKey{}, fmt.Errorf("%w: key %s was revoked at %s", ErrBadKey, id, k.Revoked.Format(time.RFC3339))
	}
	return k, nil
}

// NewKeyToken returns a fresh key token (zsk_<id>_<secret>) that no store
// holds yet, for AdoptFirstKey.
func NewKeyToken() (string, error) {
	id, sec, err := newKeyParts()
	return "zsk_" + id + "_" + sec, err
}

// newKeyParts returns a new key's id (48 random bits, in hex) and secret
// (256 random bits, base64).
func newKeyParts() (id, secret string, err error) {
	idb, secb := make([]byte, 6), make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(secb); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(idb), base64.RawURLEncoding.EncodeToString(secb), nil
}

// AdoptFirstKey makes token (as NewKeyToken or CreateKey made it) an admin
// key reaching every collection, named name, when the store has never had a
// key: a server in a container, or each node of a cluster, can then start
// beyond loopback with a key its operator already holds. A store that has or
// had any key (a revoked one too) is left alone, and adopted reports false.
func (s *Store) AdoptFirstKey(token, name string) (adopted bool, err error) {
	rest, ok := strings.CutPrefix(token, "zsk_")
	id, sec, ok2 := strings.Cut(rest, "_")
	if _, herr := hex.DecodeString(id); !ok || !ok2 || len(id) != 12 || herr != nil || len(sec) < 32 {
		return false, fmt.Errorf("%w: the admin key is not a zhisou key: want zsk_<12 hex digits>_<a secret of 32 or more characters> (zhisou keys token makes one)", index.ErrInvalid)
	}
	keys, err := s.Keys()
	if err != nil || len(keys) > 0 {
		return false, err
	}
	sum := sha256.Sum256([]byte(sec))
	k := index.APIKey{ID: id, Name: name, Role: index.RoleAdmin, Collections: []string{index.AllCollections},
		Created: time.Now().UTC(), Hash: hex.EncodeToString(sum[:])}
	if err := s.putKey(&k); err != nil {
		return false, err
	}
	return true, nil
}
