// Package servicetest holds the test fixtures shared by the service, its
// front doors, the eval harness and the command: the gse analyzer, loaded
// once per test binary, and a temporary store.
package servicetest

import (
	"context"
	"sync"
	"testing"

	"github.com/zhisou/zhisou/index"
)

var (
	anOnce sync.Once
	an     *index.Analyzer
	anErr  error
)

// Analyzer returns the default analyzer, loaded once per test binary (the
// dictionary takes a second to load).
func Analyzer(tb testing.TB) *index.Analyzer {
	tb.Helper()
	anOnce.Do(func() { an, anErr = index.NewAnalyzer(index.AnalyzerOptions{}) })
	if anErr != nil {
		tb.Fatal(anErr)
	}
	return an
}

// Store opens a store in a temporary directory, closed when the test ends.
func Store(tb testing.TB) *index.Store {
	tb.Helper()
	st, err := index.Open(context.Background(), tb.TempDir(), Analyzer(tb), index.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
