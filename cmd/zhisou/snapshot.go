package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/store"
)

// snapshotFormat is the format of the snapshots this version writes and
// reads: a tar of the store's backup (ZHSBAK01) and its bleve indexes
// (store.Snapshot), of log records of natslog.Schema.
const snapshotFormat = 2

// dictID names the segmentation dictionary: "embedded", or a hash of the
// -dict files' contents.
func dictID(dict string) (string, error) {
	if dict == "" {
		return "embedded", nil
	}
	h := sha256.New()
	for _, f := range strings.Split(dict, ",") {
		b, err := os.ReadFile(strings.TrimSpace(f))
		if err != nil {
			return "", fmt.Errorf("dictionary: %w", err)
		}
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// isEmptyDir reports whether dir is missing or holds nothing.
func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0)
}

// bootstrap restores the latest snapshot of the log into the data directory
// dir when dir is empty and the snapshot matches this node (its log, format
// and dictionary); the store then follows the log from the snapshot's
// position. A snapshot that does not match is not loaded: the node replays
// the log instead, which works while the log still holds its first record.
func bootstrap(ctx context.Context, l *natslog.Log, dir, dict string, logger *slog.Logger) error {
	if !isEmptyDir(dir) {
		return nil
	}
	m, err := l.LatestSnapshot(ctx)
	if errors.Is(err, natslog.ErrNoSnapshot) {
		return nil
	} else if err != nil {
		return err
	}
	var why string
	switch {
	case m.Log != l.ID():
		why = fmt.Sprintf("it was taken from the log %s, not %s", m.Log, l.ID())
	case m.Format != snapshotFormat:
		why = fmt.Sprintf("its format is %d; this version reads %d", m.Format, snapshotFormat)
	case m.Dict != dict:
		why = fmt.Sprintf("its chunks were segmented with the dictionary %s, and this node has %s", m.Dict, dict)
	}
	if why != "" {
		logger.Warn("not loading the latest snapshot: "+why+"; replaying the log from its start instead", "position", m.Position)
		return nil
	}
	start := time.Now()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := store.RestoreSnapshot(dir, pr)
		pr.CloseWithError(err)
		done <- err
	}()
	_, gerr := l.GetSnapshot(ctx, pw)
	pw.CloseWithError(gerr)
	if err := errors.Join(gerr, <-done); err != nil {
		return fmt.Errorf("bootstrap from a snapshot: %w", err)
	}
	logger.Info("restored the latest snapshot; following the log from its position", "position", m.Position,
		"bytes", m.Bytes, "taken", m.Taken.Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// takeSnapshot stores a snapshot of st in the log's object store, unless the
// latest one is as new, then drops from the log the records the previous
// snapshot held: a replica at least that far along still catches up from the
// log; one further behind starts again from the snapshot.
func takeSnapshot(ctx context.Context, st *store.Store, l *natslog.Log, dict string, logger *slog.Logger) error {
	prev, err := l.LatestSnapshot(ctx)
	if err != nil && !errors.Is(err, natslog.ErrNoSnapshot) {
		return err
	}
	pos := st.Pos() // the backup holds at least this much
	if err == nil && prev.Log == l.ID() && prev.Format == snapshotFormat && prev.Dict == dict && prev.Position >= pos {
		return nil // nothing new, or another node took a newer one
	}
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		_, err := st.Snapshot(pw)
		pw.CloseWithError(err)
	}()
	m, err := l.PutSnapshot(ctx, natslog.Manifest{Position: pos, Format: snapshotFormat, Dict: dict, Taken: time.Now().UTC()}, pr)
	pr.CloseWithError(err) // stops the backup if the put failed
	if err != nil {
		return err
	}
	logger.Info("snapshot stored", "position", m.Position, "bytes", m.Bytes, "took", time.Since(start).Round(time.Millisecond))
	if prev.Log == l.ID() && prev.Position > 0 {
		if err := l.DropBefore(ctx, prev.Position+1); err != nil {
			return err
		}
		logger.Info("the log dropped the records the previous snapshot held", "before", prev.Position+1)
	}
	return nil
}

// snapshotLoop takes a snapshot every interval until ctx ends.
func snapshotLoop(ctx context.Context, st *store.Store, l *natslog.Log, every time.Duration, dict string, logger *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := takeSnapshot(ctx, st, l, dict, logger); err != nil && ctx.Err() == nil {
			logger.Error("snapshot failed; trying again at the next interval", "err", err)
		}
	}
}
