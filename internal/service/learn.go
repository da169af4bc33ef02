package service

import (
	"context"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// Learn adds labelled questions to a collection (replace: they replace all of
// them). More than store.MaxPairsPerWrite pairs is INVALID_ARGUMENT; each pair
// the store cannot learn is reported, not an error. Calls count against the
// key's request rate like any other, and their pairs against the key's (on a
// server without keys, the collection's) rate of pairs (Options.LearnRate);
// the model's rebuilds coalesce, so a flood of one-pair calls costs one
// rebuild at a time, not one each.
func (s *Service) Learn(ctx context.Context, collection string, pairs []index.Pair, replace, noWait bool) (store.LearnReport, error) {
	if err := checkName("collection", collection); err != nil {
		return store.LearnReport{}, err
	}
	if err := s.allow(ctx, index.RoleWrite, "learn", collection); err != nil {
		return store.LearnReport{}, err
	}
	if len(pairs) > store.MaxPairsPerWrite {
		return store.LearnReport{}, Invalid("pairs", "%d pairs, over the limit of %d per call: send them in batches", len(pairs), store.MaxPairsPerWrite)
	}
	if err := s.allowLearn(ctx, collection, max(len(pairs), 1)); err != nil {
		return store.LearnReport{}, err
	}
	rep, err := s.store.Learn(ctx, collection, pairs, replace, noWait)
	if err != nil {
		return rep, classify(err)
	}
	s.audit(ctx, "learn", collection, rep.Added, "refused", len(rep.Refused), "replace", replace)
	return rep, nil
}

// GetLearned describes a collection's learned model.
func (s *Service) GetLearned(ctx context.Context, collection string) (store.LearnInfo, error) {
	if err := checkName("collection", collection); err != nil {
		return store.LearnInfo{}, err
	}
	if err := s.allow(ctx, index.RoleRead, "read learned models", collection); err != nil {
		return store.LearnInfo{}, err
	}
	info, err := s.store.LearnInfo(collection)
	return info, classify(err)
}
