package service

import (
	"context"
	"fmt"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// CollectionSpec is a collection to create; nil and zero fields take the
// defaults of index.DefaultCollection.
type CollectionSpec struct {
	Name        string
	Description string
	K1, B       *float64
	Weights     *index.FieldWeights
	Fusion      *index.FusionWeights
}

// CreateCollection creates a collection with defaults for unset parameters
// and returns it.
func (s *Service) CreateCollection(ctx context.Context, spec CollectionSpec) (store.CollectionInfo, error) {
	if err := checkName("collection.name", spec.Name); err != nil {
		return store.CollectionInfo{}, err
	}
	if err := s.allow(ctx, index.RoleAdmin, "create collections", spec.Name); err != nil {
		return store.CollectionInfo{}, err
	}
	if err := checkUTF8("collection.description", spec.Description); err != nil {
		return store.CollectionInfo{}, err
	}
	cfg := index.DefaultCollection(spec.Name)
	cfg.Description = spec.Description
	if spec.K1 != nil {
		cfg.K1 = *spec.K1
	}
	if spec.B != nil {
		cfg.B = *spec.B
	}
	if spec.Weights != nil {
		cfg.Weights = *spec.Weights
	}
	if spec.Fusion != nil {
		cfg.Fusion = *spec.Fusion
		if err := cfg.Fusion.Validate(); err != nil {
			return store.CollectionInfo{}, classify(fmt.Errorf("collection.fusion: %w", err))
		}
	}
	if err := s.store.CreateCollection(ctx, cfg); err != nil {
		return store.CollectionInfo{}, classify(err)
	}
	s.audit(ctx, "create collection", cfg.Name, 0)
	info, err := s.store.Collection(cfg.Name)
	return info, classify(err)
}

// ListCollections returns a page of collections by name, and the token of
// the next page ("" after the last).
func (s *Service) ListCollections(ctx context.Context, pageSize int, pageToken string) ([]store.CollectionInfo, string, error) {
	if err := s.allow(ctx, index.RoleRead, "list collections", ""); err != nil {
		return nil, "", err
	}
	size, after, err := pageParams(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	var out []store.CollectionInfo
	for _, c := range s.store.Collections() {
		if c.Name <= after && after != "" || !s.visible(ctx, c.Name) {
			continue
		}
		if len(out) == size {
			return out, encodePageToken(out[size-1].Name), nil
		}
		out = append(out, c)
	}
	return out, "", nil
}

// GetCollection returns one collection.
func (s *Service) GetCollection(ctx context.Context, name string) (store.CollectionInfo, error) {
	if err := checkName("name", name); err != nil {
		return store.CollectionInfo{}, err
	}
	if err := s.allow(ctx, index.RoleRead, "read collections", name); err != nil {
		return store.CollectionInfo{}, err
	}
	info, err := s.store.Collection(name)
	return info, classify(err)
}

// DeleteCollection deletes a collection and its documents.
func (s *Service) DeleteCollection(ctx context.Context, name string) error {
	if err := checkName("name", name); err != nil {
		return err
	}
	if err := s.allow(ctx, index.RoleAdmin, "delete collections", name); err != nil {
		return err
	}
	if err := s.store.DeleteCollection(ctx, name); err != nil {
		return classify(err)
	}
	s.audit(ctx, "delete collection", name, 0)
	return nil
}
