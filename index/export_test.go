package index

import "context"

// SearchExhaustive scores every posting (the reference the pruned search must
// equal); exported for the benchmarks in package index_test.
func (s *Store) SearchExhaustive(ctx context.Context, collection string, terms []QueryTerm, f Filter, k int) ([]Hit, SearchStats, error) {
	return s.search(ctx, collection, terms, f, k, true)
}
