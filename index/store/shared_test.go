package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/bm25"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/natslog/natstest"
)

// openReplica opens the store in dir as a replica of the log on srv's stream.
func openReplica(t testing.TB, srv *server.Server, dir string, cfg natslog.Config) (*Store, error) {
	t.Helper()
	l, err := natslog.Open(t.Context(), natstest.Conn(t, srv), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), dir, testAnalyzer(t), Options{Log: l})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, nil
}

func mustReplica(t testing.TB, srv *server.Server, dir string) *Store {
	t.Helper()
	s, err := openReplica(t, srv, dir, natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// converge waits until every store has applied the log up to its end and
// checks that they hold the same state.
func converge(t *testing.T, ss ...*Store) string {
	t.Helper()
	last := ss[0].shared.Last()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var want string
	for i, s := range ss {
		if err := s.WaitPos(ctx, last); err != nil {
			t.Fatalf("replica %d at %d, log at %d: %v", i, s.Pos(), last, err)
		}
		d, pos, err := s.Digest(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = d
		} else if d != want {
			t.Fatalf("replica %d (at %d) has digest %s; replica 0 has %s", i, pos, d, want)
		}
	}
	return want
}

func numbered(prefix string, n int) []index.Document {
	var docs []index.Document
	for i := range n {
		docs = append(docs, indextest.Doc(fmt.Sprintf("%s%03d", prefix, i), "培训"+prefix,
			fmt.Sprintf("第%d节 劳动合同的订立与解除，编号%s%d。", i, prefix, i)))
	}
	return docs
}

// Three replicas of one log, written concurrently: every write is on every
// replica, in the same state, and each writer reads its own writes at once.
func TestSharedReplicas(t *testing.T) {
	srv := natstest.Server(t)
	a := mustReplica(t, srv, t.TempDir())
	b := mustReplica(t, srv, t.TempDir())
	c := mustReplica(t, srv, t.TempDir())
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	// b had not seen the create: the write looks at the log first.
	if _, err := b.Upsert(ctx, "kb", indextest.Fixture()); err != nil {
		t.Fatalf("upsert on another replica right after the create: %v", err)
	}
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, c} {
		wg.Go(func() {
			for j, d := range numbered(fmt.Sprintf("w%d-", i), 40) {
				if _, err := s.Upsert(ctx, "kb", []index.Document{d}); err != nil {
					t.Error(err)
					return
				}
				// Read-your-writes on the writing replica.
				if _, err := s.Document(ctx, "kb", d.ID); err != nil {
					t.Errorf("replica %d cannot read its own write %s: %v", i, d.ID, err)
					return
				}
				if j%10 == 9 {
					if _, err := s.Delete(ctx, "kb", []string{fmt.Sprintf("w%d-%03d", i, j-5)}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// A lexicon change on one replica re-indexes on all.
	if _, err := c.ReplaceLexicon(ctx, "kb", index.Lexicon{Terms: []string{"劳动合同的订立"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b, c} {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := s.WaitReindex(wctx, "kb")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	converge(t, a, b, c)
	for _, s := range []*Store{a, b, c} {
		info, err := s.Collection("kb")
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len(indextest.Fixture()) + 3*40 - 3*4); info.Stats.Docs != want {
			t.Fatalf("replica holds %d documents; want %d", info.Stats.Docs, want)
		}
		if err := s.Verify(ctx, "kb"); err != nil {
			t.Fatal(err)
		}
	}
	// Labelled questions learned on one replica are in every replica's model,
	// the same.
	fx := indextest.Fixture()
	pairs := []index.Pair{{Question: "客户嫌贵怎么回应", ChunkID: fx[0].ID}, {Question: "新经理怎么带团队", ChunkID: fx[1].ID}}
	if _, err := a.Learn(ctx, "kb", pairs, false, false); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b, c)
	for i, s := range []*Store{a, b, c} {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := s.WaitLearned(wctx, "kb")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.LearnInfo("kb")
		if err != nil || info.Pairs != 2 || info.Questions != 2 {
			t.Errorf("replica %d: learned %+v (%v), want the 2 pairs", i, info, err)
		}
	}
	// A collection deleted on one replica is gone from all.
	if err := b.DeleteCollection(ctx, "kb"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b, c)
	if _, err := a.Collection("kb"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("collection on another replica after its delete: %v; want ErrNotFound", err)
	}
}

// A replica that was down catches up from the log when it opens again, and
// a new, empty one builds itself from the log.
func TestSharedReplicaCatchesUp(t *testing.T) {
	srv := natstest.Server(t)
	a := mustReplica(t, srv, t.TempDir())
	bdir := t.TempDir()
	l, err := natslog.Open(t.Context(), natstest.Conn(t, srv), natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(t.Context(), bdir, testAnalyzer(t), Options{Log: l})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", numbered("x", 30)); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", numbered("y", 30)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, "kb", []string{"x001", "x002"}); err != nil {
		t.Fatal(err)
	}
	b = mustReplica(t, srv, bdir)
	fresh := mustReplica(t, srv, t.TempDir())
	converge(t, a, b, fresh)
	if _, err := b.Document(ctx, "kb", "y029"); err != nil {
		t.Fatalf("reopened replica lacks a write made while it was down: %v", err)
	}
}

// A data directory serves one log only: one built on its own log, or on
// another stream, is refused with a message saying what to do, and a
// replica is not opened on a log of its own.
func TestSharedRefusesOtherLogs(t *testing.T) {
	srv := natstest.Server(t)
	local := t.TempDir()
	s := openWithCollection(t, local, "kb")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openReplica(t, srv, local, natslog.Config{}); !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "empty data directory") {
		t.Fatalf("replica on a locally built store: %v; want ErrInvalid saying to start on an empty directory", err)
	}
	rdir := t.TempDir()
	r := mustReplica(t, srv, rdir)
	if err := r.CreateCollection(t.Context(), index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openReplica(t, srv, rdir, natslog.Config{Stream: "OTHER", Subject: "other.log"}); !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "nats:ZHISOU@") {
		t.Fatalf("replica on another stream: %v; want ErrInvalid naming the stream it was built from", err)
	}
	if _, err := Open(t.Context(), rdir, testAnalyzer(t), Options{}); !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "-nats") {
		t.Fatalf("replica opened on a local log: %v; want ErrInvalid naming -nats", err)
	}
}

// With NATS down, writes fail with ErrUnavailable and nothing is
// acknowledged; reads go on from local state. When NATS is back, writes go
// through again.
func TestSharedLogDown(t *testing.T) {
	dir := t.TempDir()
	opts := &server.Options{StoreDir: dir}
	srv := natstest.ServerOpts(t, opts)
	port := srv.Addr().(*net.TCPAddr).Port
	a, err := openReplica(t, srv, t.TempDir(), natslog.Config{AppendTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", numbered("x", 5)); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	start := time.Now()
	_, err = a.Upsert(ctx, "kb", numbered("y", 1))
	if !errors.Is(err, index.ErrUnavailable) {
		t.Fatalf("upsert with NATS down: %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("upsert with NATS down took %v with a 1 s log timeout", d)
	}
	if _, err := a.Document(ctx, "kb", "x004"); err != nil {
		t.Fatalf("read with NATS down: %v", err)
	}
	// The same server (port and files) again.
	opts2 := &server.Options{StoreDir: dir, Port: port}
	natstest.ServerOpts(t, opts2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := a.Upsert(ctx, "kb", numbered("z", 1))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still fail 20 s after NATS came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := a.Document(ctx, "kb", "z000"); err != nil {
		t.Fatal(err)
	}
}

// A record on the log that this version cannot read is set aside
// (quarantined) with its reason, and the replica goes on applying the
// records after it.
func TestSharedPoisonRecord(t *testing.T) {
	srv := natstest.Server(t)
	a := mustReplica(t, srv, t.TempDir())
	b := mustReplica(t, srv, t.TempDir())
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Conn(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "zhisou.log.kb", []byte(`{"op":"upsert","doc":"not a document"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", numbered("x", 3)); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
	for _, s := range []*Store{a, b} {
		q, err := s.Quarantined()
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 1 || q[0].Seq != 2 || !strings.Contains(string(q[0].Op)+q[0].Error, "undecodable") {
			t.Fatalf("quarantined = %+v; want record 2, undecodable", q)
		}
		if _, err := s.Document(ctx, "kb", "x002"); err != nil {
			t.Fatalf("write after the poison record: %v", err)
		}
	}
	// Both replicas set it aside; the dead letters hold it once, with why.
	dead, err := js.Stream(ctx, "ZHISOU_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	if n := dead.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("dead letters hold %d records; want 1", n)
	}
	m, err := dead.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Zhisou-Position") != "2" || !strings.Contains(m.Header.Get("Zhisou-Reason"), "undecodable") {
		t.Fatalf("dead letter headers %v; want position 2 and the reason", m.Header)
	}
}

// A quiet collection's index is marked current when the store closes (and
// when a backup starts), so that the next open neither replays from its old
// position nor rebuilds it when the log has been shortened since.
func TestQuietIndexMarkedCurrent(t *testing.T) {
	dir := t.TempDir()
	s := openWithCollection(t, dir, "quiet")
	ctx := t.Context()
	if err := s.CreateCollection(ctx, index.DefaultCollection("busy")); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Upsert(ctx, "busy", numbered(fmt.Sprintf("b%d-", i), 3)); err != nil {
			t.Fatal(err)
		}
	}
	_, text, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if text["quiet"] >= s.Pos() {
		t.Fatalf("the quiet index is at %d before the close, the store at %d: the test needs it behind", text["quiet"], s.Pos())
	}
	pos := s.Pos()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Read the closed store's index as the next open will find it.
	q, err := bm25.Open(filepath.Join(dir, "bleve", "quiet"), bm25.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if p, err := q.Pos(); err != nil || p != pos {
		t.Fatalf("the quiet index after the close is at %d (%v); want the store's %d", p, err, pos)
	}
}

// stingyLog delivers at most max records a replay, as a shared log may when
// a consumer goes quiet: every caller must come back for the rest.
type stingyLog struct {
	*natslog.Log
	max int
}

var errStingy = errors.New("enough")

func (l stingyLog) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	n := 0
	err := l.Log.Replay(ctx, after, func(r index.Record) error {
		if n == l.max {
			return errStingy
		}
		n++
		return fn(r)
	})
	if errors.Is(err, errStingy) {
		return nil
	}
	return err
}

// A replica whose log hands out records a few at a time still opens whole
// (Badger and every bleve index at the log's end, not marked there early)
// and follows.
func TestSharedPartialReplays(t *testing.T) {
	srv := natstest.Server(t)
	a := mustReplica(t, srv, t.TempDir())
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	open := func() *Store {
		return replicaOn(t, srv, bdir, func(l *natslog.Log) SharedLog { return stingyLog{l, 7} })
	}
	b := open()
	if _, err := a.Upsert(ctx, "kb", numbered("x", 10)); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := a.Upsert(ctx, "kb", numbered(fmt.Sprintf("y%d-", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Delete(ctx, "kb", []string{"x001", "y2-003"}); err != nil {
		t.Fatal(err)
	}
	b = open()
	defer b.Close()
	converge(t, a, b)
	if err := b.Verify(ctx, "kb"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, "kb", numbered("z", 30)); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
}

// deafLog does not answer replays from the moment deaf is set until the
// replica's next append, as a shared log without a leader may not: the
// replica decides a write from local state.
type deafLog struct {
	*natslog.Log
	deaf *atomic.Bool
}

func (l deafLog) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	if l.deaf.Load() {
		return fmt.Errorf("%w: deaf", index.ErrUnavailable)
	}
	return l.Log.Replay(ctx, after, fn)
}

func (l deafLog) Append(ctx context.Context, recs []index.Record) (uint64, error) {
	l.deaf.Store(false)
	return l.Log.Append(ctx, recs)
}

// A replica that cannot read the log before a write, and so does not know
// what another replica wrote, still logs the write: a delete of a document
// it has not seen, an upsert of content it holds at an older version. Each
// wins over the other replica's earlier write, as the client was told.
func TestSharedWriteDecidedBlind(t *testing.T) {
	srv := natstest.Server(t)
	ctx := t.Context()
	a := mustReplica(t, srv, t.TempDir())
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	deaf := &atomic.Bool{}
	l, err := natslog.Open(ctx, natstest.Conn(t, srv), natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, t.TempDir(), testAnalyzer(t), Options{Log: deafLog{l, deaf}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	doc := func(id, text string, v uint64) index.Document {
		d := indextest.Doc(id, "培训", text)
		d.Version = v
		return d
	}
	if _, err := a.Upsert(ctx, "kb", []index.Document{doc("kept", "第一版。", 1)}); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)

	// A writes; B cannot read it before its own writes.
	deaf.Store(true)
	if _, err := a.Upsert(ctx, "kb", []index.Document{doc("new", "新文档。", 2), doc("kept", "第二版。", 3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, "kb", []string{"new"}); err != nil {
		t.Fatal(err)
	}
	deaf.Store(true)
	if _, err := b.Upsert(ctx, "kb", []index.Document{doc("kept", "第一版。", 4)}); err != nil {
		t.Fatal(err)
	}
	deaf.Store(false)
	converge(t, a, b)
	for _, s := range []*Store{a, b} {
		if _, err := s.Document(ctx, "kb", "new"); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("a document deleted by a replica that had not seen it: %v, want not found", err)
		}
		d, err := s.Document(ctx, "kb", "kept")
		if err != nil || d.Version != 4 || d.Chunks[0].Text != "第一版。" {
			t.Errorf("kept: version %d %q (%v), want the last write, version 4", d.Version, d.Chunks[0].Text, err)
		}
	}
}

// TestSyncReachesTheLogsEnd: a write decides from local state after sync, so
// sync must apply everything the log held when it was called, also when the
// log hands records out a few at a time (a replay returns what one consumer
// delivered). It used to stop after one replay: a replica behind after a
// restart took a delete of a document it had not applied yet for a delete of
// nothing, acknowledged it and logged nothing, and the document lived on (the
// cluster test met it once).
func TestSyncReachesTheLogsEnd(t *testing.T) {
	srv := natstest.Server(t)
	ctx := t.Context()
	a := mustReplica(t, srv, t.TempDir())
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	l, err := natslog.Open(ctx, natstest.Conn(t, srv), natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, t.TempDir(), testAnalyzer(t), Options{Log: stingyLog{l, 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	converge(t, a, b)

	// b's follower waits on b's write lock while a writes: b is behind when
	// it decides.
	b.wmu.Lock()
	if _, err := a.Upsert(ctx, "kb", numbered("x", 20)); err != nil {
		b.wmu.Unlock()
		t.Fatal(err)
	}
	fresh, err := b.syncForDecision(ctx)
	pos := b.pos
	b.wmu.Unlock()
	if err != nil || !fresh {
		t.Fatalf("syncForDecision = %v, %v", fresh, err)
	}
	if want := a.shared.Last(); pos < want {
		t.Fatalf("after sync, b is at %d; the log held %d when it was called", pos, want)
	}
	outs, err := b.Delete(ctx, "kb", []string{"x019"})
	if err != nil || outs[0] != index.Deleted {
		t.Fatalf("Delete(x019) on b = %v, %v; want Deleted", outs, err)
	}
	converge(t, a, b)
	if _, err := a.Document(ctx, "kb", "x019"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("the deleted document on a: %v; want ErrNotFound", err)
	}
}

// countingLog counts the records its replays deliver.
type countingLog struct {
	*natslog.Log
	n *atomic.Int64
}

func (l countingLog) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	return l.Log.Replay(ctx, after, func(r index.Record) error {
		l.n.Add(1)
		return fn(r)
	})
}

// A replica that opens behind the log reads the records it missed once:
// Badger's catch-up keeps them, and the bleve index, as far behind, takes
// them from there instead of reading the stream again. It ends whole.
func TestSharedCatchUpReadsOnce(t *testing.T) {
	srv := natstest.Server(t)
	a := mustReplica(t, srv, t.TempDir())
	ctx := t.Context()
	if err := a.CreateCollection(ctx, index.DefaultCollection("kb")); err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	b := replicaOn(t, srv, bdir, func(l *natslog.Log) SharedLog { return l })
	converge(t, a, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	before := a.Pos()
	for i := range 4 {
		if _, err := a.Upsert(ctx, "kb", numbered(fmt.Sprintf("m%d-", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Delete(ctx, "kb", []string{"m1-004"}); err != nil {
		t.Fatal(err)
	}
	missed := int64(a.Pos() - before)
	var n atomic.Int64
	b = replicaOn(t, srv, bdir, func(l *natslog.Log) SharedLog { return countingLog{l, &n} })
	defer b.Close()
	if got := n.Load(); got != missed {
		t.Errorf("the open read %d records from the log; it had missed %d (each once)", got, missed)
	}
	converge(t, a, b)
	if err := b.Verify(ctx, "kb"); err != nil {
		t.Fatal(err)
	}
	hits, _, err := b.Search(ctx, "kb", []index.QueryTerm{{Term: "m3", Weight: 1}, {Term: "劳动合同", Weight: 1}}, index.Filter{}, 50)
	if err != nil || len(hits) == 0 {
		t.Fatalf("search on the caught-up replica: %v, %v", hits, err)
	}
}

// replicaOn opens the store in dir on srv's stream, its log wrapped by
// wrap; the caller closes it.
func replicaOn(t testing.TB, srv *server.Server, dir string, wrap func(*natslog.Log) SharedLog) *Store {
	t.Helper()
	l, err := natslog.Open(t.Context(), natstest.Conn(t, srv), natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), dir, testAnalyzer(t), Options{Log: wrap(l)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
