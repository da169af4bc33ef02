package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index/store/storetest"
)

// TestDamagedStoreExitCode: a command on a data directory whose Badger files
// lost what it had applied refuses it with exit status 3 and says how to go
// on; with -accept-damage it opens what is left.
func TestDamagedStoreExitCode(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Seeded(t, dir, "default")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Badger keeps the MANIFEST's header and forgets every table.
	if err := os.Truncate(filepath.Join(dir, "badger", "MANIFEST"), 8); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
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
