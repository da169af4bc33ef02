package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMemoryBudget: a -memory budget too small for the data directory is
// refused at start with what it needs, not served with a collector that
// never rests; a budget that fits serves; a malformed one names the format.
func TestMemoryBudget(t *testing.T) {
	bin := zhisouBinary(t)
	st := filepath.Join(t.TempDir(), "store")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("ingest", "-store", st, "-quiet", "../../testdata/courses"); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	// The dictionary alone is about 90 MB: 128 MiB leaves too little room.
	out, err := run("serve", "-store", st, "-addr", freeAddr(t), "-http-addr", "", "-memory", "128MiB")
	if err == nil || !strings.Contains(out, "-memory 128 MiB is too small") || !strings.Contains(out, "give at least -memory") {
		t.Fatalf("serve -memory 128MiB: err %v, want a refusal naming what it needs:\n%s", err, out)
	}
	out, err = run("serve", "-store", st, "-memory", "lots")
	if err == nil || !strings.Contains(out, "800MiB") {
		t.Fatalf("serve -memory lots: err %v, want the format named:\n%s", err, out)
	}
	startServer(t, st, freeAddr(t), "-memory", "1GiB").kill()
}
