package main

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/internal/service"
)

// TestKeysCommand: keys create prints a key that the store accepts, list
// shows it without the secret, revoke ends it; bad arguments are refused.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"keys", "create", "-store", dir, "-name", "crm", "-role", "write", "-collections", "sales, service"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "zsk_") || !strings.Contains(errOut.String(), "shown only now") {
		t.Fatalf("keys create printed %q (stderr %q)", token, errOut.String())
	}
	id := token[4:16]
	out.Reset()
	if err := runT(t, []string{"keys", "list", "-store", dir}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "sales,service") || strings.Contains(out.String(), token[17:]) {
		t.Errorf("keys list = %q; want the key's id and collections, not its secret", out.String())
	}
	if err := runT(t, []string{"keys", "revoke", "-store", dir, id}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenDir(t, dir)
	if _, err := s.KeyByToken(token); err == nil {
		t.Error("the revoked key still authenticates")
	}
	s.Close()
	for _, args := range [][]string{
		{"keys", "create", "-store", dir, "-name", "x", "-role", "owner", "-collections", "*"},
		{"keys", "create", "-store", dir, "-name", "x", "-role", "read"},
		{"keys", "revoke", "-store", dir},
		{"keys", "rotate"},
	} {
		if err := runT(t, args, envOf(nil), &out, &errOut); err == nil {
			t.Errorf("%q succeeded; want an error", args)
		}
	}
}

// TestServeAuthMode: beyond loopback a store without keys is refused unless
// -insecure; a store with keys always asks for them; loopback without keys
// is open.
func TestServeAuthMode(t *testing.T) {
	s := storetest.Open(t)
	logger := slog.New(slog.DiscardHandler)
	any := &net.TCPAddr{IP: net.IPv4zero, Port: 7700}
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7700}
	if _, err := authMode(s, any, false, logger); err == nil || !strings.Contains(err.Error(), "-insecure") || !strings.Contains(err.Error(), "keys create") {
		t.Errorf("authMode(0.0.0.0, no keys) = %v; want a refusal naming keys create and -insecure", err)
	}
	if req, err := authMode(s, any, true, logger); err != nil || req {
		t.Errorf("authMode(0.0.0.0, -insecure) = %v, %v; want open", req, err)
	}
	if req, err := authMode(s, lo, false, logger); err != nil || req {
		t.Errorf("authMode(loopback, no keys) = %v, %v; want open", req, err)
	}
	if _, _, err := s.CreateKey("k", index.RoleRead, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []net.Addr{lo, any} {
		if req, err := authMode(s, a, false, logger); err != nil || !req {
			t.Errorf("authMode(%v, with keys) = %v, %v; want keys required", a, req, err)
		}
	}
}

// TestMetricsNeedAdminKey: with keys required, /metrics answers an admin
// key only.
func TestMetricsNeedAdminKey(t *testing.T) {
	s := storetest.Open(t)
	svc, err := service.New(s, service.Options{RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, _ := s.CreateKey("ops", index.RoleAdmin, []string{"*"})
	reader, _, _ := s.CreateKey("app", index.RoleRead, []string{"*"})
	h := adminOnly(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) }))
	for _, tt := range []struct {
		name, auth string
		want       int
	}{{"no key", "", http.StatusUnauthorized}, {"read key", "Bearer " + reader, http.StatusForbidden}, {"bad key", "Bearer zsk_x", http.StatusUnauthorized}, {"admin key", "Bearer " + admin, http.StatusOK}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: /metrics = %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
}

// TestKeysCommandRemote: with -addr the commands manage a running server's
// keys: the first key on a server without keys needs none and turns its auth
// on; from then on list and revoke need an admin key.
func TestKeysCommandRemote(t *testing.T) {
	lis, _ := serveTCP(t)
	addr := lis.Addr().String()
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"keys", "create", "-addr", addr, "-name", "ops", "-role", "admin", "-collections", "*"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("keys create -addr: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "zsk_") {
		t.Fatalf("keys create -addr printed %q", token)
	}
	if err := runT(t, []string{"keys", "list", "-addr", addr}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("keys list without a key after the first one = %v; want Unauthenticated", err)
	}
	out.Reset()
	if err := runT(t, []string{"keys", "create", "-addr", addr, "-api-key", token, "-name", "app", "-role", "read", "-collections", "kb"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	app := strings.TrimSpace(out.String())
	out.Reset()
	if err := runT(t, []string{"keys", "list", "-addr", addr}, envOf(map[string]string{"ZHISOU_API_KEY": token}), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ops") || !strings.Contains(out.String(), "app") || strings.Contains(out.String(), token[17:]) {
		t.Errorf("keys list -addr = %q; want both keys, no secret", out.String())
	}
	if err := runT(t, []string{"keys", "list", "-addr", addr, "-api-key", app}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("keys list with a read key = %v; want PermissionDenied", err)
	}
	if err := runT(t, []string{"keys", "revoke", "-addr", addr, "-api-key", token, app[4:16]}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if err := runT(t, []string{"search", "-addr", addr, "-api-key", app, "-collection", "kb", "价格"}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("search with the revoked key = %v; want it refused as revoked", err)
	}
}
