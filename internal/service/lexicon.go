package service

import (
	"context"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// GetLexicon returns a collection's lexicon and its re-indexing state.
func (s *Service) GetLexicon(ctx context.Context, collection string) (store.LexiconInfo, error) {
	if err := checkName("collection", collection); err != nil {
		return store.LexiconInfo{}, err
	}
	if err := s.allow(ctx, index.RoleRead, "read lexicons", collection); err != nil {
		return store.LexiconInfo{}, err
	}
	info, err := s.store.Lexicon(collection)
	return info, classify(err)
}

// ReplaceLexicon replaces a collection's lexicon (the store validates and
// normalises the entries, naming a bad one); the chunks it affects are
// re-indexed in the background, PendingReindex of them. lex is required: an
// empty lexicon, not nil, clears it.
func (s *Service) ReplaceLexicon(ctx context.Context, collection string, lex *index.Lexicon) (store.LexiconInfo, error) {
	if err := checkName("collection", collection); err != nil {
		return store.LexiconInfo{}, err
	}
	if err := s.allow(ctx, index.RoleWrite, "replace lexicons", collection); err != nil {
		return store.LexiconInfo{}, err
	}
	if lex == nil {
		return store.LexiconInfo{}, Invalid("lexicon", "lexicon is required (an empty lexicon clears it)")
	}
	info, err := s.store.ReplaceLexicon(ctx, collection, *lex)
	if err != nil {
		return info, classify(err)
	}
	s.audit(ctx, "replace lexicon", collection, 0)
	return info, nil
}
