package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/internal/service"
)

// TestBackupCommands: a backup of a closed directory and one taken from a
// running server's admin listener (with an admin key; a read key is
// refused) both restore into directories that verify and hold the
// documents; restore refuses a damaged file.
func TestBackupCommands(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Seeded(t, dir, "kb")
	admin, _, _ := s.CreateKey("ops", index.RoleAdmin, []string{"*"})
	reader, _, _ := s.CreateKey("app", index.RoleRead, []string{"*"})
	svc, err := service.New(s, service.Options{RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(adminOnly(svc, backupHandler(s, svc)))
	defer srv.Close()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	online := filepath.Join(out, "online.bak")
	if err := runT(t, []string{"backup", "-from", srv.URL, "-api-key", reader, "-out", online}, envOf(nil), &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("backup with a read key = %v, want 403", err)
	}
	if err := runT(t, []string{"backup", "-from", srv.URL, "-api-key", admin, "-out", online}, envOf(nil), &stdout, &stderr); err != nil {
		t.Fatalf("backup from the server: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	offline := filepath.Join(out, "offline.bak")
	if err := runT(t, []string{"backup", "-store", dir, "-out", offline}, envOf(nil), &stdout, &stderr); err != nil {
		t.Fatalf("backup of a directory: %v", err)
	}
	for _, b := range []string{online, offline} {
		to := filepath.Join(t.TempDir(), "restored")
		if err := runT(t, []string{"restore", "-in", b, "-store", to}, envOf(nil), &stdout, &stderr); err != nil {
			t.Fatalf("restore %s: %v", b, err)
		}
		stdout.Reset()
		if err := runT(t, []string{"verify", "-store", to}, envOf(nil), &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "ok   kb: 5 documents") {
			t.Errorf("verify the store restored from %s = %v; output %q", filepath.Base(b), err, stdout.String())
		}
	}
	b, _ := os.ReadFile(offline)
	cut := filepath.Join(out, "cut.bak")
	os.WriteFile(cut, b[:len(b)-10], 0o644)
	if err := runT(t, []string{"restore", "-in", cut, "-store", filepath.Join(t.TempDir(), "x")}, envOf(nil), &stdout, &stderr); exitCode(err) != exitDamaged {
		t.Errorf("restore of a cut backup = %v (exit %d), want exit %d", err, exitCode(err), exitDamaged)
	}
}
