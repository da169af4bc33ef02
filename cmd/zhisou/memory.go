package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"

	"github.com/dustin/go-humanize"
)

// memoryBudget is -memory: the memory the server may use, "" or "0" for no
// limit. It sets the Go runtime's soft limit (GOMEMLIMIT), so the collector
// works harder near it instead of letting the heap double between cycles.
type memoryBudget struct{ bytes uint64 }

func (m *memoryBudget) String() string {
	if m.bytes == 0 {
		return ""
	}
	return humanize.IBytes(m.bytes)
}

func (m *memoryBudget) Set(s string) error {
	if s == "" || s == "0" {
		m.bytes = 0
		return nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("want a size such as 800MiB or 2GiB: %w", err)
	}
	if n < minMemoryBudget {
		return fmt.Errorf("%s is below the %s the dictionary and an empty store need", humanize.IBytes(n), humanize.IBytes(minMemoryBudget))
	}
	m.bytes = n
	return nil
}

// minMemoryBudget is below what any server runs in: the segmentation
// dictionary alone is about 90 MB.
const minMemoryBudget = 128 << 20

// budgetShare is the share of -memory that the live heap may fill once the
// store is open; the rest is room for searches, writes and the collector.
const budgetShare = 0.7

// apply sets the runtime's soft limit before the store opens, so that the
// load is bounded too.
func (m *memoryBudget) apply(logger *slog.Logger) {
	if m.bytes == 0 {
		return
	}
	debug.SetMemoryLimit(int64(m.bytes))
	logger.Debug("memory budget", "limit", humanize.IBytes(m.bytes))
}

// settle checks the live heap against the budget once the store is open: a
// budget too small for the collections is refused at start with what they
// need, instead of a server whose collector runs without pause. It collects
// the garbage the open left and returns it to the operating system first
// (a second on a 100 000-chunk store, so only when there is a budget).
func (m *memoryBudget) settle(logger *slog.Logger) error {
	if m.bytes == 0 {
		return nil
	}
	debug.FreeOSMemory() // runs a collection first
	live := liveHeap()
	logger.Debug("store opened", "live_heap", humanize.IBytes(live))
	if float64(live) > budgetShare*float64(m.bytes) {
		need := uint64(float64(live)/budgetShare) + 1<<20
		return fmt.Errorf("serve: -memory %s is too small for this data directory: its collections take %s once open (the live heap), and searches and writes need room besides; give at least -memory %s, or serve fewer collections",
			humanize.IBytes(m.bytes), humanize.IBytes(live), humanize.IBytes(need))
	}
	return nil
}

// liveHeap is the heap the last collection found live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
