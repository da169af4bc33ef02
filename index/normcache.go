package index

import "github.com/dgraph-io/ristretto/v2"

// normCacheBytes bounds the cache of normalised chunk texts.
const normCacheBytes = 64 << 20

func newNormCache() (*ristretto.Cache[string, *Normalized], error) {
	return ristretto.NewCache(&ristretto.Config[string, *Normalized]{NumCounters: 200_000, MaxCost: normCacheBytes, BufferItems: 64})
}

// NormalizedText returns the normalised text of a stored chunk (see
// Analyzer.Normalize), cached by chunk version: highlighting a hit needs it,
// and normalising every hit's text again costs more than the search itself.
func (s *Store) NormalizedText(collection string, c *Chunk) Normalized {
	key := collection + "\x00" + bleveID(c)
	if n, ok := s.norms.Get(key); ok {
		return *n
	}
	n := s.an.Normalize(c.Text)
	s.norms.Set(key, &n, int64(len(n.Text)+8*len(n.orig)+64))
	return n
}
