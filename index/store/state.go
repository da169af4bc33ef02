package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zhisou/zhisou/index"
)

// The state file. Badger holds the truth and the write log, so when its files
// are damaged (a truncated MANIFEST makes it drop every table; a lost table
// takes the collection catalog with it) it opens without a word, emptier
// than what was acknowledged. STATE.json, beside badger/, records what the
// store had applied: Badger's log position and each collection's documents
// and chunks. It is written atomically (a temporary file, fsync, rename) when
// the store opens, about once a second while writes come in, and on Close.
// On open, after Badger has caught up from its log, the store compares:
//
//   - Badger's position below the recorded one: Badger lost applied writes;
//   - a recorded collection missing, and not deleted by a record since;
//   - at the same position, other document or chunk counts;
//
// and refuses to open with ErrDamaged, naming what differs, unless
// Options.AcceptDamage is set (the operator's explicit repair flag). A
// missing state file (a new store, or one from before it existed) is not
// damage; an unreadable one is.

// StateFile is the name of the state file in the data directory.
const StateFile = "STATE.json"

// stateInterval is how often, at most, a stream of writes rewrites the state
// file.
const stateInterval = time.Second

type diskState struct {
	Version     int                   `json:"version"`
	Pos         uint64                `json:"pos"`
	Written     time.Time             `json:"written"`
	Collections map[string]stateCount `json:"collections"`
}

type stateCount struct {
	Docs   int64 `json:"docs"`
	Chunks int64 `json:"chunks"`
}

// snapshotState reads what the state file records. Called with wmu held.
func (s *Store) snapshotState() diskState {
	st := diskState{Version: 1, Pos: s.pos, Written: time.Now().UTC(), Collections: map[string]stateCount{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, c := range s.colls {
		c.mu.RLock()
		st.Collections[name] = stateCount{Docs: c.stats.Docs, Chunks: c.stats.Chunks}
		c.mu.RUnlock()
	}
	return st
}

// writeState writes the state file atomically and durably.
func writeState(dir string, st diskState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileDurably(filepath.Join(dir, StateFile), b)
}

// writeFileDurably writes b to path through a temporary file beside it,
// synced and renamed into place, and syncs the directory: path then holds
// either what it held before or all of b.
func writeFileDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", tmp, err), os.Remove(tmp))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if d, err := os.Open(dir); err == nil { // make the rename durable
		err = errors.Join(d.Sync(), d.Close())
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// readState reads the state file; ok is false when there is none.
func readState(dir string) (st diskState, ok bool, err error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("%w: %s is unreadable: %w", index.ErrDamaged, path, err)
	}
	return st, true, nil
}

// checkState compares Badger, caught up from its log, with the state file
// (see above). Called during Open, before the log is truncated.
func (s *Store) checkState(ctx context.Context) error {
	st, ok, err := readState(s.dir)
	if err != nil || !ok {
		return err
	}
	path := filepath.Join(s.dir, StateFile)
	var problems []string
	if s.pos < st.Pos {
		problems = append(problems, fmt.Sprintf("Badger has applied the write log up to position %d, but had applied %d", s.pos, st.Pos))
	} else {
		deleted, err := s.collectionsDeletedSince(ctx, st.Pos)
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(st.Collections)) {
			want := st.Collections[name]
			c := s.colls[name]
			switch {
			case c == nil && !deleted[name]:
				problems = append(problems, fmt.Sprintf("collection %q (%d documents) is missing", name, want.Docs))
			case c != nil && s.pos == st.Pos && (c.stats.Docs != want.Docs || c.stats.Chunks != want.Chunks):
				problems = append(problems, fmt.Sprintf("collection %q has %d documents and %d chunks, but had %d and %d",
					name, c.stats.Docs, c.stats.Chunks, want.Docs, want.Chunks))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err = fmt.Errorf("%w: %s, recorded in %s at %s; the files under %s may be damaged or replaced. "+
		"Rebuild it with zhisou repair (from the write log, on top of the newest backup when the log was shortened), or open it anyway, accepting the loss, with -accept-damage",
		index.ErrDamaged, joinProblems(problems), path, st.Written.Format(time.RFC3339), filepath.Join(s.dir, "badger"))
	if !s.acceptDamage {
		return err
	}
	s.logger.Error("opening a damaged store, as -accept-damage asks", "err", err)
	return nil
}

func joinProblems(ps []string) string {
	if len(ps) > 3 {
		ps = append(ps[:3:3], fmt.Sprintf("and %d more", len(ps)-3))
	}
	out := ps[0]
	for _, p := range ps[1:] {
		out += "; " + p
	}
	return out
}

// collectionsDeletedSince lists the collections that log records after
// position after delete.
func (s *Store) collectionsDeletedSince(ctx context.Context, after uint64) (map[string]bool, error) {
	deleted := map[string]bool{}
	err := s.replayCaught(ctx, after, func(r index.Record) error {
		if r.Op == index.OpDeleteCollection {
			deleted[r.Collection] = true
		}
		return nil
	})
	return deleted, err
}

// saveState writes the state file now. Called with wmu held.
func (s *Store) saveState() error {
	st := s.snapshotState()
	if err := writeState(s.dir, st); err != nil {
		return err
	}
	s.statePos = st.Pos
	return nil
}

// stateLoop rewrites the state file about once a second while the position
// moves, until stop is closed. The file is written outside the write lock.
// Once writes pause, it saves the keyword graphs when they are far enough
// behind (maybeSaveGraphs).
func (s *Store) stateLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(stateInterval)
	defer t.Stop()
	seen, moved := uint64(0), time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.wmu.Lock()
		if s.pos != seen {
			seen, moved = s.pos, time.Now()
		}
		if s.pos == s.statePos {
			s.wmu.Unlock()
			s.maybeSaveGraphs(moved)
			continue
		}
		st := s.snapshotState()
		s.wmu.Unlock()
		if err := writeState(s.dir, st); err != nil {
			s.logger.Error("write the state file", "err", err)
			continue
		}
		s.wmu.Lock()
		s.statePos = max(s.statePos, st.Pos)
		s.wmu.Unlock()
	}
}
