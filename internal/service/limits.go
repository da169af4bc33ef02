package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

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

// keyLimiter holds a rate limiter per API key.
type keyLimiter struct {
	every rate.Limit
	burst int
	mu    sync.Mutex // guards keys
	keys  map[string]*rate.Limiter
}

// allowKey checks the caller's key against its rate; calls without a key
// (an open server) are not limited.
func (s *Service) allowKey(ctx context.Context) error {
	if s.limits == nil {
		return nil
	}
	k, ok := KeyFrom(ctx)
	if !ok {
		return nil
	}
	l := s.limits
	l.mu.Lock()
	lim := l.keys[k.ID]
	if lim == nil {
		lim = rate.NewLimiter(l.every, l.burst)
		l.keys[k.ID] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return fmt.Errorf("%w: key %s is over its rate of %g calls a second; retry after %s", ErrResourceExhausted, k.ID, float64(l.every), d.Round(time.Millisecond))
	}
	return nil
}
