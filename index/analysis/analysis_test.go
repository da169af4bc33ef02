package analysis

import (
	"sync"
	"testing"
)

// sharedAnalyzer is loaded once per test binary. It is indextest.Analyzer
// for this package alone: indextest imports analysis, so analysis's own
// tests cannot import it.
var sharedAnalyzer = sync.OnceValues(func() (*Analyzer, error) { return New(Options{}) })

func testAnalyzer(t testing.TB) *Analyzer {
	t.Helper()
	an, err := sharedAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	return an
}
