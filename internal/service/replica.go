package service

import (
	"context"
	"fmt"
	"time"

	"github.com/zhisou/zhisou/index"
)

// DefaultReadWait is how long a read naming a log position waits for this
// node to apply it (Options.ReadWait).
const DefaultReadWait = 2 * time.Second

// Position returns the log position this node has applied: a write's
// response carries it, so that a read naming it (min_position) sees the
// write on any node.
func (s *Service) Position() uint64 { return s.store.Pos() }

// AwaitPosition returns when this node has applied the log up to pos (0:
// at once). A node further behind than it can catch up in Options.ReadWait
// (or before ctx ends) answers ErrUnavailable with its lag, so that the
// client can ask another.
func (s *Service) AwaitPosition(ctx context.Context, pos uint64) error {
	if pos == 0 || s.store.Pos() >= pos {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.readWait)
	defer cancel()
	if err := s.store.WaitPos(wctx, pos); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		have := s.store.Pos()
		return fmt.Errorf("%w: this node has applied the write log up to position %d, %d behind the requested min_position %d, and did not catch up within %v; retry, or ask another node",
			ErrUnavailable, have, pos-min(pos, have), pos, s.readWait)
	}
	return nil
}

// Status is a node's place in the write log.
type Status struct {
	Log              string
	Position         uint64
	LogLast, Lag     uint64
	Quarantined      int
	Digest           string
	DigestedPosition uint64
}

// Status reports the node's position, the log's last one and the lag
// between them; with digest, also a sum of its whole state (admin keys only:
// it reads every document). It concerns every collection, so a key needs to
// reach them all.
func (s *Service) Status(ctx context.Context, digest bool) (Status, error) {
	role, what := index.RoleRead, "read the node's status"
	if digest {
		role, what = index.RoleAdmin, "sum the node's state"
	}
	if err := s.allow(ctx, role, what, index.AllCollections); err != nil {
		return Status{}, err
	}
	ls := s.store.LogStats()
	st := Status{Log: "local", Position: s.store.Pos(), LogLast: ls.Last}
	if s.store.Shared() {
		st.Log = ls.Dir
	}
	st.Lag = st.LogLast - min(st.LogLast, st.Position)
	q, err := s.store.Quarantined()
	if err != nil {
		return Status{}, classify(err)
	}
	st.Quarantined = len(q)
	if digest {
		d, pos, err := s.store.Digest(ctx)
		if err != nil {
			return Status{}, classify(err)
		}
		st.Digest, st.DigestedPosition = d, pos
	}
	return st, nil
}
