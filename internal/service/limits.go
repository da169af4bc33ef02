package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
)

// Limits on load, for every front door.
//
// Writes in flight: building and analysing a document takes some hundred
// times its text in memory for a moment (a 31 MB file peaked at 4.9 GB), so
// concurrent upserts share a budget of text bytes (Options.MaxWriteBytes). A
// write waits for its share up to writeWait (or its deadline), then is
// refused with ErrResourceExhausted; a write larger than the whole budget
// waits for all of it, alone.
//
// Requests per key: with Options.KeyRate set, each API key may make that many
// calls a second (bursts of KeyBurst); a call over it is refused with
// ErrResourceExhausted saying when to retry.
//
// Bytes per key: with Options.KeyWriteBytes set, each API key may write that
// many bytes of document text a second (bursts of KeyWriteBurst); a write
// over it is refused the same way, before it takes any of the write budget.

// DefaultMaxWriteBytes is the default budget of document text being written
// at once.
const DefaultMaxWriteBytes = 4 << 20

// defaultWriteWait is how long a write waits for its share of the budget.
const defaultWriteWait = 10 * time.Second

// admitWrite takes n bytes of the write budget; release gives them back.
func (s *Service) admitWrite(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), s.writeBudget)
	wctx, cancel := context.WithTimeout(ctx, s.writeWait)
	defer cancel()
	if err := s.writes.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: the server is busy writing (%d MiB of documents in flight, the limit); retry in a few seconds", ErrResourceExhausted, s.writeBudget>>20)
	}
	return func() { s.writes.Release(n) }, nil
}

// inputBytes is the text of a write.
func inputBytes(ins []ingest.Input) int64 {
	var n int64
	for i := range ins {
		n += int64(len(ins[i].Content) + len(ins[i].Title))
	}
	return n
}

// keyLimiter holds a rate limiter per API key, of calls or of bytes.
type keyLimiter struct {
	every rate.Limit
	burst int
	unit  string     // what is counted, for messages: "calls", "bytes"
	mu    sync.Mutex // guards keys
	keys  map[string]*rate.Limiter
}

func newKeyLimiter(every float64, burst int, unit string) *keyLimiter {
	if every <= 0 {
		return nil
	}
	return &keyLimiter{every: rate.Limit(every), burst: max(burst, 1), unit: unit, keys: map[string]*rate.Limiter{}}
}

// take takes n from key k's allowance, or says when to retry.
func (l *keyLimiter) take(k *index.APIKey, n int) error { return l.takeFor(k.ID, "key "+k.ID, n) }

// takeFor takes n from the allowance of id (who, in messages), or says when
// to retry.
func (l *keyLimiter) takeFor(id, who string, n int) error {
	if l == nil {
		return nil
	}
	if n > l.burst {
		return fmt.Errorf("%w: a write of %d %s is more than %s may send at once (%d); split it", ErrResourceExhausted, n, l.unit, who, l.burst)
	}
	l.mu.Lock()
	lim := l.keys[id]
	if lim == nil {
		lim = rate.NewLimiter(l.every, l.burst)
		l.keys[id] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(time.Now(), n)
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return fmt.Errorf("%w: %s is over its rate of %g %s a second; retry after %s", ErrResourceExhausted, who, float64(l.every), l.unit, d.Round(time.Millisecond))
	}
	return nil
}

// DefaultLearnRate is the default of Options.LearnRate: labelled pairs a
// second each API key (on a server without keys, each collection) may send,
// in bursts of two full Learn calls.
const DefaultLearnRate = 2000

// allowLearn takes n pairs from the caller's learning allowance: its key's,
// or the collection's on a server without keys. Feedback flooding from one
// client cannot fill the log and keep the learner rebuilding.
func (s *Service) allowLearn(ctx context.Context, collection string, n int) error {
	if k, ok := KeyFrom(ctx); ok {
		return s.learnLimits.takeFor("k/"+k.ID, "key "+k.ID, n)
	}
	return s.learnLimits.takeFor("c/"+collection, "collection "+collection, n)
}

// allowKey checks the caller's key against its rate of calls; calls without
// a key (an open server) are not limited.
func (s *Service) allowKey(ctx context.Context) error {
	if k, ok := KeyFrom(ctx); ok {
		return s.limits.take(k, 1)
	}
	return nil
}

// allowKeyBytes checks a write of n bytes against the caller's key's rate of
// bytes.
func (s *Service) allowKeyBytes(ctx context.Context, n int64) error {
	if k, ok := KeyFrom(ctx); ok {
		return s.byteLimits.take(k, int(min(n, 1<<40)))
	}
	return nil
}
