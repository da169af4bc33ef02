package store

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// Pauses nest, each bounded by a memory limit, and the last one to end
// restores the collector's settings, a limit set before (-memory's) included.
func TestPauseGC(t *testing.T) {
	percent, limit := gcPercent(), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	debug.SetMemoryLimit(math.MaxInt64)
	a := pauseGC(100 << 20)
	if got := gcPercent(); got != -1 {
		t.Fatalf("paused: GOGC %d, want -1 (off)", got)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(pauseSlack+pauseFactor*(100<<20)); got != want {
		t.Errorf("paused for 100 MiB: memory limit %d, want %d", got, want)
	}
	b := pauseGC(50 << 20)
	if got, want := debug.SetMemoryLimit(-1), int64(pauseSlack+pauseFactor*(150<<20)); got != want {
		t.Errorf("two pauses: memory limit %d, want %d", got, want)
	}
	a()
	a() // once
	if got := gcPercent(); got != -1 {
		t.Fatalf("one pause left: GOGC %d, want -1", got)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(pauseSlack+pauseFactor*(50<<20)); got != want {
		t.Errorf("one pause left: memory limit %d, want %d", got, want)
	}
	b()
	if got := gcPercent(); got != percent {
		t.Errorf("resumed: GOGC %d, want %d as before", got, percent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("resumed: memory limit %d, want none", got)
	}

	// A budget lower than the pause's bound stays in force, and is restored.
	debug.SetMemoryLimit(512 << 20)
	c := pauseGC(1 << 30)
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("paused under a 512 MiB budget: memory limit %d, want the budget", got)
	}
	c()
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("resumed: memory limit %d, want the 512 MiB budget", got)
	}
}

// Reading saved graphs pauses the collector until they are decoded, even
// when no store takes them; a directory without any does not pause it.
func TestSavedGraphsPauseGC(t *testing.T) {
	percent := gcPercent()
	dir := t.TempDir()
	ReadSavedGraphs(dir).wait()
	if got := gcPercent(); got != percent {
		t.Fatalf("no saved graphs: GOGC %d, want %d", got, percent)
	}
	if err := os.MkdirAll(filepath.Join(dir, graphDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, graphDir, "c"), []byte("not a graph"), 0o644); err != nil {
		t.Fatal(err)
	}
	sgs := ReadSavedGraphs(dir)
	sgs.wait()
	if got := gcPercent(); got != percent {
		t.Errorf("after the graphs decoded: GOGC %d, want %d", got, percent)
	}
	if sgs.graphs["c"].err == nil {
		t.Error("a file that is no graph decoded")
	}
}
