package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store/storetest"
)

// TestVerifyCommand: verify passes on a whole store; when a chunk is lost
// from the bleve index it fails with exit status 3 naming the collection and
// the chunk; -repair rebuilds the index from Badger and passes.
func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Seeded(t, dir, "kb")
	first, err := s.Document(t.Context(), "kb", indextest.Fixture()[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	lost := index.ChunkVersion(&first.Chunks[0])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"verify", "-store", dir}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "ok   kb: 5 documents, 10 chunks") {
		t.Fatalf("verify on a whole store = %v; output %q", err, out.String())
	}
	idx, err := bleve.Open(filepath.Join(dir, "bleve", "kb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(idx.Delete(lost), idx.Close()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runT(t, []string{"verify", "-store", dir}, envOf(nil), &out, &errOut)
	if exitCode(err) != exitDamaged || !strings.Contains(out.String(), "FAIL kb") || !strings.Contains(out.String(), lost) {
		t.Fatalf("verify with a chunk lost from bleve = %v (exit %d); output %q", err, exitCode(err), out.String())
	}
	out.Reset()
	if err := runT(t, []string{"verify", "-store", dir, "-repair"}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "repair kb") {
		t.Fatalf("verify -repair = %v; output %q", err, out.String())
	}
	out.Reset()
	if err := runT(t, []string{"verify", "-store", dir}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("verify after the repair = %v; output %q", err, out.String())
	}
	if err := runT(t, []string{"verify", "-store", dir, "-collection", "nope"}, envOf(nil), &out, &errOut); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("verify -collection nope = %v, want ErrNotFound", err)
	}
}
