package store

import (
	"context"

	"github.com/zhisou/zhisou/index"
)

// SearchExhaustive scores every posting (the reference the pruned search must
// equal); exported for the benchmarks in package index_test.
func (s *Store) SearchExhaustive(ctx context.Context, collection string, terms []index.QueryTerm, f index.Filter, k int) ([]index.Hit, index.SearchStats, error) {
	return s.search(ctx, collection, terms, f, k, true)
}
