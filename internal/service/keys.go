package service

import (
	"context"
	"strings"

	"github.com/zhisou/zhisou/index"
)

// API keys managed while the server runs. Each call needs an admin key that
// reaches every collection: a key scoped to some collections could
// otherwise make itself a wider one. Keys are written through the write
// log, like documents.

// allowKeyAdmin admits a key-management call.
func (s *Service) allowKeyAdmin(ctx context.Context, action string) error {
	return s.allow(ctx, index.RoleAdmin, action, index.AllCollections)
}

// CreateKey creates an API key and returns its token (shown only now) with
// its description. From then on every call needs a key, even on a server
// that started without any.
func (s *Service) CreateKey(ctx context.Context, name, role string, collections []string) (string, index.APIKey, error) {
	if err := s.allowKeyAdmin(ctx, "create keys"); err != nil {
		return "", index.APIKey{}, err
	}
	token, k, err := s.store.CreateKey(name, role, collections)
	if err != nil {
		return "", index.APIKey{}, classify(err)
	}
	s.requireAuth.Store(true)
	s.audit(ctx, "create key", strings.Join(k.Collections, ","), 0, "new_key", k.ID, "new_key_name", k.Name, "new_key_role", k.Role)
	return token, k, nil
}

// ListKeys lists the API keys, revoked ones included, by id.
func (s *Service) ListKeys(ctx context.Context) ([]index.APIKey, error) {
	if err := s.allowKeyAdmin(ctx, "list keys"); err != nil {
		return nil, err
	}
	keys, err := s.store.Keys()
	return keys, classify(err)
}

// RevokeKey revokes the key with this id at once; ErrNotFound for an unknown
// one.
func (s *Service) RevokeKey(ctx context.Context, id string) (index.APIKey, error) {
	if err := s.allowKeyAdmin(ctx, "revoke keys"); err != nil {
		return index.APIKey{}, err
	}
	if id == "" {
		return index.APIKey{}, Invalid("key_id", "key_id: empty")
	}
	k, err := s.store.RevokeKey(id)
	if err != nil {
		return index.APIKey{}, classify(err)
	}
	s.audit(ctx, "revoke key", "", 0, "revoked_key", k.ID, "revoked_key_name", k.Name)
	return k, nil
}
