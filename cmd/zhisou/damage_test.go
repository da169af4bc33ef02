package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/index/store/storetest"
)

// TestDamagedStoreExitCode: Badger losing what it had applied (a MANIFEST
// cut to its header makes it forget every table) heals from the write log
// as the store opens. With the log gone too, a command refuses the directory
// with exit status 3 and says how to go on; with -accept-damage it opens
// what is left.
func TestDamagedStoreExitCode(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Seeded(t, dir, "default")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "badger", "MANIFEST"), 8); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"search", "-store", dir, "价格"}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "价格") {
		t.Fatalf("search after Badger lost its tables = %v, output %q; want the store healed from its log", err, out.String())
	}
	if err := os.Truncate(filepath.Join(dir, "badger", "MANIFEST"), 8); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, store.LogDir)); err != nil {
		t.Fatal(err)
	}
	err := runT(t, []string{"search", "-store", dir, "价格"}, envOf(nil), &out, &errOut)
	if code := exitCode(err); code != exitDamaged || !strings.Contains(err.Error(), "-accept-damage") {
		t.Fatalf("search on a damaged store = %v (exit %d); want exit %d naming -accept-damage", err, code, exitDamaged)
	}
	// Accepted, the store opens with what is left: nothing, so the search
	// fails on the missing collection, not on the damage.
	err = runT(t, []string{"search", "-store", dir, "-accept-damage", "价格"}, envOf(nil), &out, &errOut)
	if err == nil || exitCode(err) == exitDamaged || !strings.Contains(err.Error(), `"default"`) {
		t.Fatalf("search -accept-damage = %v; want the store opened and the collection reported missing", err)
	}
}

// TestRepairCommand: zhisou repair rebuilds a store from its write log,
// reports what it replayed and where the old files went, and the store then
// verifies and answers; on a directory with no log it says so.
func TestRepairCommand(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Seeded(t, dir, "default")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"repair", "-store", dir}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("repair: %v (%s)", err, errOut.String())
	}
	for _, want := range []string{"replayed the write log (records 1 to", "default: 5 documents", "damaged-"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("repair output %q does not say %q", out.String(), want)
		}
	}
	out.Reset()
	if err := runT(t, []string{"verify", "-store", dir}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "ok   write log") {
		t.Fatalf("verify after repair = %v, output %q", err, out.String())
	}
	out.Reset()
	if err := runT(t, []string{"search", "-store", dir, "价格"}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "价格") {
		t.Fatalf("search after repair = %v, output %q", err, out.String())
	}
	if err := runT(t, []string{"repair", "-store", t.TempDir()}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "no write log") {
		t.Fatalf("repair of a directory with no log = %v", err)
	}
}
