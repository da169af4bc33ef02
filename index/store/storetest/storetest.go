// Package storetest opens Stores for the tests of the packages that use one:
// on a temporary (or given) data directory, with the shared test Analyzer
// (indextest.Analyzer), closed when the test ends. The store's own tests
// cannot import it (it imports the store) and open theirs in-package.
package storetest

import (
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
)

// Open opens a store in a new temporary directory.
func Open(t testing.TB) *store.Store {
	t.Helper()
	return OpenDir(t, t.TempDir())
}

// OpenDir opens the store in dir; the test's cleanup closes it and reports
// a close error.
func OpenDir(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dir, indextest.Analyzer(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// WithCollections opens a store in a new temporary directory with the named
// collections created (default settings).
func WithCollections(t testing.TB, names ...string) *store.Store {
	t.Helper()
	s := Open(t)
	for _, name := range names {
		if err := s.CreateCollection(t.Context(), index.DefaultCollection(name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Seeded opens the store in dir with collection holding indextest.Fixture
// (five documents, ten chunks); the test's cleanup closes it.
func Seeded(t testing.TB, dir, collection string) *store.Store {
	t.Helper()
	s := OpenDir(t, dir)
	if err := s.CreateCollection(t.Context(), index.DefaultCollection(collection)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(t.Context(), collection, indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	return s
}
