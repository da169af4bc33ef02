package store

import (
	"math"
	"runtime/debug"
	"sync"
)

// The collector is paused while saved keyword graphs decode (ReadSavedGraphs):
// nearly all they allocate stays live, so collecting meanwhile only costs
// time. At a million chunks the collector took about 1.2 s of a 3.3 s start
// on two cores. While paused, a memory limit still makes the runtime
// collect should the heap pass pauseSlack plus pauseFactor times the bytes
// being decoded (or the limit already set, -memory's, when that is lower):
// whatever else runs meanwhile cannot grow the heap without bound.
const (
	pauseFactor = 16
	pauseSlack  = 1 << 30
)

var gcPause struct {
	sync.Mutex
	n       int   // pauses in force
	bytes   int64 // the bytes they decode
	percent int   // GOGC before the first
	limit   int64 // the memory limit before the first
}

// pauseGC pauses the collector while bytes of saved graphs decode; the
// returned function ends the pause (once). Pauses nest: the collector resumes,
// with the settings it had, when the last one ends.
func pauseGC(bytes int64) (resume func()) {
	gcPause.Lock()
	defer gcPause.Unlock()
	if gcPause.n == 0 {
		gcPause.limit = debug.SetMemoryLimit(-1)
		gcPause.percent = debug.SetGCPercent(-1)
	}
	gcPause.n++
	gcPause.bytes += bytes
	setPauseLimit()
	var once sync.Once
	return func() {
		once.Do(func() {
			gcPause.Lock()
			defer gcPause.Unlock()
			gcPause.n--
			gcPause.bytes -= bytes
			if gcPause.n > 0 {
				setPauseLimit()
				return
			}
			debug.SetGCPercent(gcPause.percent)
			debug.SetMemoryLimit(gcPause.limit)
		})
	}
}

// setPauseLimit sets the memory limit for the pauses in force. Called with
// gcPause held.
func setPauseLimit() {
	limit := int64(math.MaxInt64)
	if gcPause.bytes < (math.MaxInt64-pauseSlack)/pauseFactor {
		limit = pauseSlack + pauseFactor*gcPause.bytes
	}
	debug.SetMemoryLimit(min(limit, gcPause.limit))
}
