package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zhisou/zhisou/index"
)

// Snapshots. A snapshot is a store's backup (store.Backup: Badger's state at a
// log position) kept in the JetStream object store beside the log, so that a
// new or wiped replica restores it and then follows the log from its
// position, instead of replaying the log from its first record, and so that
// the log can drop the records a snapshot holds. Only the latest is kept.

// snapshotObject is the object name of the latest snapshot.
const snapshotObject = "latest"

// Manifest describes a snapshot: what a replica must match to load it.
type Manifest struct {
	// Log is the ID of the log the snapshot was taken from.
	Log string `json:"log"`
	// Position is the log position the snapshot holds every record up to.
	Position uint64 `json:"position"`
	// Format is the snapshot's format (the store's backup format and the
	// log records' schema): a replica reading another refuses it.
	Format int `json:"format"`
	// Dict names the segmentation dictionary the snapshot's chunks were
	// analysed with: a replica with another one rebuilds instead.
	Dict string `json:"dict"`
	// Taken is when the snapshot was taken; Bytes its size.
	Taken time.Time `json:"taken"`
	Bytes int64     `json:"bytes"`
}

// ErrNoSnapshot means the log has no snapshot yet.
var ErrNoSnapshot = errors.New("no snapshot")

func (l *Log) snapshots(ctx context.Context, create bool) (jetstream.ObjectStore, error) {
	bucket := l.cfg.Stream + "_SNAPSHOTS"
	if !create {
		return l.js.ObjectStore(ctx, bucket)
	}
	return l.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket,
		Description: "zhisou snapshots of the log " + l.cfg.Stream, Storage: jetstream.FileStorage, Replicas: l.cfg.Replicas})
}

// bucket opens the snapshot bucket to read it: ErrNoSnapshot when there is
// none yet.
func (l *Log) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	os, err := l.snapshots(ctx, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, ErrNoSnapshot
	} else if err != nil {
		return nil, fmt.Errorf("%w: the snapshot bucket of %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	return os, nil
}

// PutSnapshot stores the snapshot read from r under m (Log is set to this
// log's ID), replacing the previous one once it is whole, and returns the
// manifest stored.
func (l *Log) PutSnapshot(ctx context.Context, m Manifest, r io.Reader) (Manifest, error) {
	os, err := l.snapshots(ctx, true)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: the snapshot bucket of %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	m.Log = l.ID()
	b, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, err
	}
	info, err := os.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: map[string]string{"manifest": string(b)}}, r)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: store the snapshot in %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	m.Bytes = int64(info.Size)
	return m, nil
}

// LatestSnapshot returns the manifest of the latest snapshot; ErrNoSnapshot
// when there is none.
func (l *Log) LatestSnapshot(ctx context.Context) (Manifest, error) {
	os, err := l.bucket(ctx)
	if err != nil {
		return Manifest{}, err
	}
	info, err := os.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Manifest{}, ErrNoSnapshot
	} else if err != nil {
		return Manifest{}, fmt.Errorf("%w: read the snapshot of %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	return manifestOf(info)
}

func manifestOf(info *jetstream.ObjectInfo) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal([]byte(info.Metadata["manifest"]), &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: the snapshot %s has no readable manifest: %v", index.ErrDamaged, info.Name, err)
	}
	m.Bytes = int64(info.Size)
	return m, nil
}

// GetSnapshot writes the latest snapshot to w and returns its manifest. The
// object store checks the snapshot's digest as it reads it: a damaged one
// is an error, never a short file taken for whole.
func (l *Log) GetSnapshot(ctx context.Context, w io.Writer) (Manifest, error) {
	os, err := l.bucket(ctx)
	if err != nil {
		return Manifest{}, err
	}
	res, err := os.Get(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Manifest{}, ErrNoSnapshot
	} else if err != nil {
		return Manifest{}, fmt.Errorf("%w: read the snapshot of %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return Manifest{}, err
	}
	m, err := manifestOf(info)
	if err != nil {
		return Manifest{}, err
	}
	if _, err := io.Copy(w, res); err != nil {
		return Manifest{}, fmt.Errorf("read the snapshot of %s: %w", l.cfg.Stream, err)
	}
	return m, nil
}

// DropBefore drops the log's records before the position pos: a snapshot
// holds them. A replica that has not applied them must then start from a
// snapshot.
func (l *Log) DropBefore(ctx context.Context, pos uint64) error {
	if pos <= 1 {
		return nil
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSequence(pos)); err != nil {
		return fmt.Errorf("%w: drop the records of %s before %d: %v", index.ErrUnavailable, l.cfg.Stream, pos, err)
	}
	l.refresh()
	return nil
}

// SnapshotTaken returns when the latest snapshot was taken; ErrNoSnapshot
// when there is none.
func (l *Log) SnapshotTaken(ctx context.Context) (time.Time, error) {
	m, err := l.LatestSnapshot(ctx)
	return m.Taken, err
}

// RecordTime returns when the record at the position seq was stored.
func (l *Log) RecordTime(ctx context.Context, seq uint64) (time.Time, error) {
	m, err := l.stream.GetMsg(ctx, seq)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: read record %d of %s: %v", index.ErrUnavailable, seq, l.cfg.Stream, err)
	}
	return m.Time, nil
}
