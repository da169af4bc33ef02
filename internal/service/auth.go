package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// Authentication and authorisation, for every front door. A door reads the
// caller's API key (gRPC metadata, an HTTP Authorization header), calls
// Authenticate, and puts the key in the context with WithKey; each Service
// method then checks that the key's role and collections allow the call.
// With Options.RequireAuth unset (a loopback server without keys) every call
// is allowed.

// Errors of authentication and authorisation.
var (
	// ErrUnauthenticated means the call carried no valid API key.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied means the call's key may not do what it asked.
	ErrPermissionDenied = errors.New("permission denied")
)

type keyCtx struct{}

// WithKey returns ctx carrying the caller's authenticated key.
func WithKey(ctx context.Context, k *index.APIKey) context.Context {
	return context.WithValue(ctx, keyCtx{}, k)
}

// KeyFrom returns the key WithKey put in ctx.
func KeyFrom(ctx context.Context) (*index.APIKey, bool) {
	k, ok := ctx.Value(keyCtx{}).(*index.APIKey)
	return k, ok && k != nil
}

// TokenFromHeader returns the API key of an HTTP request's header:
// "Authorization: Bearer zsk_…" or "X-Api-Key: zsk_…"; "" when there is
// none. bad says what is wrong with an Authorization header that is not a
// Bearer token.
func TokenFromHeader(h http.Header) (token, bad string) {
	if a := h.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", "the Authorization header must be 'Bearer <API key>'"
		}
		return strings.TrimSpace(tok), ""
	}
	return strings.TrimSpace(h.Get("X-Api-Key")), ""
}

// AuthRequired reports whether calls need a key.
func (s *Service) AuthRequired() bool { return s.requireAuth.Load() }

// Authenticate returns the key that token is, or ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (*index.APIKey, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no API key (send it as 'authorization: Bearer zsk_…')", ErrUnauthenticated)
	}
	k, err := s.store.KeyByToken(token)
	if errors.Is(err, store.ErrBadKey) {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// allow admits one call: the caller's key has role (index.RoleRead,
// RoleWrite or RoleAdmin), may reach collection (when not ""), and is within
// its rate (limits.go). Every Service method calls it once, first.
func (s *Service) allow(ctx context.Context, role, action, collection string) error {
	if err := s.authorize(ctx, role, action, collection); err != nil {
		return err
	}
	return s.allowKey(ctx)
}

// authorize is allow without the rate.
func (s *Service) authorize(ctx context.Context, role, action, collection string) error {
	if !s.requireAuth.Load() {
		return nil
	}
	k, ok := KeyFrom(ctx)
	if !ok {
		return fmt.Errorf("%w: %s needs an API key (send it as 'authorization: Bearer zsk_…')", ErrUnauthenticated, action)
	}
	if index.RoleRank(k.Role) < index.RoleRank(role) {
		return fmt.Errorf("%w: key %s (%s, role %s) may not %s: that needs role %s", ErrPermissionDenied, k.ID, k.Name, k.Role, action, role)
	}
	if collection != "" && !k.Covers(collection) {
		return fmt.Errorf("%w: key %s (%s) may not reach collection %q", ErrPermissionDenied, k.ID, k.Name, collection)
	}
	return nil
}

// visible reports whether the caller may see collection name.
func (s *Service) visible(ctx context.Context, name string) bool {
	return s.authorize(ctx, index.RoleRead, "list collections", name) == nil
}

// audit logs a write or an administrative action: who (the key), what, on
// which collection, how many items. Never key material or document text.
func (s *Service) audit(ctx context.Context, action, collection string, n int, extra ...any) {
	attrs := append([]any{"action", action, "collection", collection}, extra...)
	if n > 0 {
		attrs = append(attrs, "items", n)
	}
	if k, ok := KeyFrom(ctx); ok {
		attrs = append(attrs, "key", k.ID, "key_name", k.Name)
	} else {
		attrs = append(attrs, "key", "none")
	}
	s.logger.Info("audit", attrs...)
}
