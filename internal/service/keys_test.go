package service

import (
	"errors"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store/storetest"
)

// TestKeysThroughTheService: on a server that took calls without keys,
// the first key created through the service makes every later call need
// one; the key it returns works, lists without its secret, and once revoked
// is refused; an admin key scoped to some collections may not manage keys.
func TestKeysThroughTheService(t *testing.T) {
	st := storetest.WithCollections(t, "c")
	svc, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	token, k, err := svc.CreateKey(t.Context(), "ops", index.RoleAdmin, []string{index.AllCollections})
	if err != nil {
		t.Fatal(err)
	}
	if !svc.AuthRequired() {
		t.Fatal("auth is still off after the first key")
	}
	if _, err := svc.GetCollection(t.Context(), "c"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a call without a key after the first key = %v, want ErrUnauthenticated", err)
	}
	key, err := svc.Authenticate(t.Context(), token)
	if err != nil || key.ID != k.ID {
		t.Fatalf("Authenticate(new token) = %+v, %v", key, err)
	}
	admin := WithKey(t.Context(), key)
	_, scoped, err := svc.CreateKey(admin, "team-c", index.RoleAdmin, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ListKeys(WithKey(t.Context(), &scoped)); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("ListKeys with an admin key scoped to c = %v, want ErrPermissionDenied", err)
	}
	if _, _, err := svc.CreateKey(WithKey(t.Context(), &scoped), "wider", index.RoleAdmin, []string{index.AllCollections}); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("a scoped admin key made a wider key: %v", err)
	}
	keys, err := svc.ListKeys(admin)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys = %d keys, %v", len(keys), err)
	}
	if _, err := svc.RevokeKey(admin, scoped.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeKey(admin, "ffffffffffff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown key = %v, want ErrNotFound", err)
	}
	if _, _, err := svc.CreateKey(admin, "", "boss", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a key with no name and a bad role = %v, want ErrInvalid", err)
	}
}
