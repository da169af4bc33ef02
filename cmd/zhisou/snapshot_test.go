package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/natslog/natstest"
	"github.com/zhisou/zhisou/index/store"
)

// A replica takes snapshots into the log's object store, and the log drops
// what the previous one held; a new replica on an empty directory restores
// the latest and converges with the first; one whose dictionary differs does
// not load it, and is refused (the log no longer starts at 1), naming what to
// do.
func TestSnapshotBootstrap(t *testing.T) {
	srv := natstest.Server(t)
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	open := func(dir string) (*natslog.Log, *store.Store, error) {
		l, err := natslog.Open(ctx, natstest.Conn(t, srv), natslog.Config{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, dir, indextest.Analyzer(t), store.Options{Log: l})
		if err == nil {
			t.Cleanup(func() { st.Close() })
		}
		return l, st, err
	}
	root := t.TempDir()
	l, a, err := open(filepath.Join(root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", indextest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if err := takeSnapshot(ctx, a, l, "embedded", logger); err != nil {
		t.Fatal(err)
	}
	m1, err := l.LatestSnapshot(ctx)
	if err != nil || m1.Position != a.Pos() || m1.Log != l.ID() || m1.Bytes == 0 {
		t.Fatalf("first snapshot %+v, %v; want position %d of %s", m1, err, a.Pos(), l.ID())
	}
	if _, err := a.Upsert(ctx, "kb", []index.Document{indextest.Doc("late", "后来", "快照之后写入的文档。")}); err != nil {
		t.Fatal(err)
	}
	if err := takeSnapshot(ctx, a, l, "embedded", logger); err != nil {
		t.Fatal(err)
	}
	if got := l.First(); got != m1.Position+1 {
		t.Fatalf("the log starts at %d after the second snapshot; want %d (after the first snapshot's records)", got, m1.Position+1)
	}
	if _, err := a.Delete(ctx, "kb", []string{"late"}); err != nil {
		t.Fatal(err)
	}

	other := filepath.Join(root, "other-dict")
	if err := bootstrap(ctx, l, other, "sha256:0123456789abcdef", logger); err != nil {
		t.Fatal(err)
	}
	if !isEmptyDir(other) {
		t.Fatal("a snapshot of another dictionary was loaded")
	}
	if _, _, err := open(other); !errors.Is(err, index.ErrDamaged) || !strings.Contains(err.Error(), "restores the latest snapshot") {
		t.Fatalf("a new replica that cannot load the snapshot: %v; want refused, naming the snapshot", err)
	}

	bdir := filepath.Join(root, "b")
	if err := bootstrap(ctx, l, bdir, "embedded", logger); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bdir, "bleve", "kb")); err != nil {
		t.Fatalf("the snapshot brought no bleve index: %v", err)
	}
	_, b, err := open(bdir)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.WaitPos(wctx, a.Pos()); err != nil {
		t.Fatal(err)
	}
	da, _, err := a.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := b.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatalf("bootstrapped replica's digest %s; the first's %s", db, da)
	}
	if err := b.Verify(ctx, "kb"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Document(ctx, "kb", "late"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a document deleted after the snapshot: %v; want ErrNotFound", err)
	}
	// A node with another dictionary replaces the latest snapshot even at
	// the same position: a snapshot it could not load is no snapshot.
	if err := takeSnapshot(ctx, a, l, "sha256:0123456789abcdef", logger); err != nil {
		t.Fatal(err)
	}
	if m, err := l.LatestSnapshot(ctx); err != nil || m.Dict != "sha256:0123456789abcdef" {
		t.Fatalf("latest snapshot %+v, %v; want the other dictionary's", m, err)
	}
}

// A NATS URL that does not answer stops the command at start, naming it; a
// replica's data directory is refused without -nats.
func TestNATSUnreachable(t *testing.T) {
	dead := freeAddr(t) // nothing listens there
	var stdout, stderr bytes.Buffer
	err := runT(t, []string{"serve", "-store", t.TempDir(), "-addr", freeAddr(t), "-http-addr", "", "-nats", "nats://" + dead}, envOf(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), dead) {
		t.Fatalf("serve with a NATS URL that does not answer: %v; want an error naming %s", err, dead)
	}
}

// Health says NOT_SERVING while the replica is further behind than -max-lag,
// and SERVING again once it has caught up.
func TestHealthFollowsLag(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	var lag atomic.Uint64
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go watchLag(ctx, lag.Load, 5*time.Millisecond, hs, 1000, slog.New(slog.DiscardHandler))
	wait := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for range 400 {
			resp, err := hs.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && resp.GetStatus() == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("health did not become %v in 2 s (lag %d)", want, lag.Load())
	}
	lag.Store(1000)
	time.Sleep(30 * time.Millisecond)
	wait(healthpb.HealthCheckResponse_SERVING) // at the limit: still serving
	lag.Store(1001)
	wait(healthpb.HealthCheckResponse_NOT_SERVING)
	lag.Store(3)
	wait(healthpb.HealthCheckResponse_SERVING)
}
