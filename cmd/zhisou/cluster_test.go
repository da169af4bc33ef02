package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// clusterNode is one zhisou process of a three-node cluster: its embedded
// NATS server is one of the three servers of the JetStream cluster that
// holds the write log (R3), and its data directory one replica.
type clusterNode struct {
	name, dir, addr, natsAddr, clusterAddr string
	routes                                 string
	proc                                   *child
	// before holds the stderr of the node's earlier processes (it is
	// killed and started again).
	before bytes.Buffer
}

// dumpLogs kills every node and logs the end of each one's stderr, over
// its restarts, for a failure that the state alone does not explain.
func dumpLogs(t *testing.T, nodes []*clusterNode) {
	for _, n := range nodes {
		n.proc.kill()
		t.Logf("%s stderr, earlier processes and the last:\n%s", n.name, tail(n.before.String()+n.proc.stderr.String(), 60))
	}
}

// clusterToken is the cluster's NATS secret (clients and routes).
const clusterToken = "cluster-test-secret"

func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	if n.proc != nil {
		<-n.proc.done // killed before a start again
		n.before.Write(n.proc.stderr.Bytes())
	}
	c := &child{stderr: &lockedBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(zhisouBinary(t), "serve", "-store", n.dir, "-addr", n.addr, "-http-addr", "", "-log-level", cmp.Or(os.Getenv("ZHISOU_CLUSTER_LOG_LEVEL"), "warn"),
		"-nats-listen", n.natsAddr, "-nats-cluster", n.clusterAddr, "-nats-routes", n.routes, "-nats-name", n.name,
		"-nats-replicas", "3", "-nats-timeout", "5s", "-nats-token", clusterToken)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	n.proc = c
}

func (n *clusterNode) waitHealthy(t *testing.T) {
	t.Helper()
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if ctx.Err() != nil {
			n.proc.kill()
			t.Fatalf("node %s did not become healthy: %v\n%s", n.name, err, n.proc.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster runs three zhisou nodes, each embedding one NATS server of the
// cluster that holds the write log, under a continuous ingest (5,000
// document writes: adds and edits, and deletes) and queries at about 50 a
// second, and SIGKILLs: the stream leader's node, then another node, then
// two at once (quorum lost), restarting each. It checks that no acknowledged
// write is lost or applied twice (every node ends with the same digest and
// every document in its last acknowledged state), that queries kept being
// answered, and that the replicas rank exactly as one node fed the same
// documents. It logs the write stalls, query availability and convergence
// times it saw.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	root := t.TempDir()
	nodes := make([]*clusterNode, 3)
	var routes, addrs []string
	for i := range nodes {
		nodes[i] = &clusterNode{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(root, fmt.Sprintf("n%d", i+1)),
			addr: freeAddr(t), natsAddr: freeAddr(t), clusterAddr: freeAddr(t)}
		routes = append(routes, "nats://"+nodes[i].clusterAddr)
		addrs = append(addrs, nodes[i].addr)
	}
	for _, n := range nodes {
		n.routes = strings.Join(routes, ",")
		n.start(t) // all at once: the stream needs all three servers
	}
	for _, n := range nodes {
		n.waitHealthy(t)
	}
	conn, c, err := grpcapi.Dial(strings.Join(addrs, ","), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := t.Context()
	var stallMax atomic.Int64 // nanoseconds
	// retry runs call until it succeeds (a client of a cluster retries, on
	// the next node), and records the longest wait.
	retry := func(what string, call func(context.Context) error) {
		start := time.Now()
		for {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := call(cctx)
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 90*time.Second {
				t.Errorf("%s still failing after 90 s: %v", what, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if d := int64(time.Since(start)); d > stallMax.Load() {
			stallMax.Store(d)
		}
	}
	retry("create collection", func(ctx context.Context) error {
		_, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}})
		if status.Code(err) == codes.AlreadyExists {
			return nil // an earlier attempt landed
		}
		return err
	})

	// The writer: rounds of 8 new documents and 2 edits, and every 5th
	// round a delete of 2; each write is retried until acknowledged, with
	// versions so that a late copy of an older write cannot win.
	type docState struct {
		content string
		version uint64
		deleted bool
	}
	// At least 502 rounds (5,000 document writes and more), and on until
	// the faults are over, so that every fault meets a running ingest.
	const rounds = 502
	var faultsDone atomic.Bool
	var mu sync.Mutex
	want := map[string]*docState{}
	var live []string
	var progress atomic.Int64
	var version uint64
	content := func(id string, v uint64) string {
		return fmt.Sprintf("# 课程%s\n\n## 要点\n\n编号%s第%d版：销售%s异议处理、价格谈判、合同订立与客户跟进。\n", id, id, v,
			[]string{"价格", "交付", "服务", "竞品"}[v%4])
	}
	rng := rand.New(rand.NewPCG(18, 1))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for r := 0; (r < rounds || !faultsDone.Load()) && r < 5000; r++ {
			var docs []*retrievalv1.Document
			var ids []string
			for i := range 8 {
				ids = append(ids, fmt.Sprintf("d%03d-%d", r, i))
			}
			mu.Lock()
			for range 2 {
				if len(live) > 0 {
					if id := live[rng.IntN(len(live))]; !slices.Contains(ids, id) {
						ids = append(ids, id)
					}
				}
			}
			mu.Unlock()
			for _, id := range ids {
				version++
				docs = append(docs, &retrievalv1.Document{Id: id, Content: content(id, version), Version: version,
					Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN})
			}
			retry("upsert", func(ctx context.Context) error {
				_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: docs})
				return err
			})
			mu.Lock()
			for _, d := range docs {
				if want[d.Id] == nil {
					live = append(live, d.Id)
				}
				want[d.Id] = &docState{content: d.Content, version: d.Version}
			}
			var del []string
			if r%5 == 4 {
				for range 2 {
					i := rng.IntN(len(live))
					del = append(del, live[i])
					live = slices.Delete(live, i, i+1)
				}
			}
			mu.Unlock()
			if len(del) > 0 {
				retry("delete", func(ctx context.Context) error {
					_, err := c.DeleteDocuments(ctx, &retrievalv1.DeleteDocumentsRequest{Collection: "kb", DocumentIds: del})
					return err
				})
				mu.Lock()
				for _, id := range del {
					want[id].deleted = true
				}
				mu.Unlock()
			}
			progress.Store(int64(r + 1))
			if t.Failed() {
				return
			}
		}
	}()

	// Queries, about 50 a second, spread over the nodes (with the client's
	// retries on UNAVAILABLE).
	var queries, queryFails atomic.Int64
	stopQueries := make(chan struct{})
	queriesDone := make(chan struct{})
	go func() {
		defer close(queriesDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopQueries:
				return
			case <-tick.C:
			}
			qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := c.Search(qctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "价格谈判怎么做"})
			cancel()
			queries.Add(1)
			if err != nil {
				queryFails.Add(1)
			}
		}
	}()

	waitProgress := func(r int64) {
		for progress.Load() < r {
			select {
			case <-writerDone:
				t.Fatalf("the writer stopped at round %d", progress.Load())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	nc, err := nats.Connect(strings.Join([]string{"nats://" + nodes[0].natsAddr, "nats://" + nodes[1].natsAddr, "nats://" + nodes[2].natsAddr}, ","),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Token(clusterToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() *clusterNode {
		for range 100 {
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(lctx, "ZHISOU")
			cancel()
			if err == nil && s.CachedInfo().Cluster != nil {
				for _, n := range nodes {
					if n.name == s.CachedInfo().Cluster.Leader {
						return n
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("no stream leader found")
		return nil
	}
	restart := func(ns ...*clusterNode) time.Duration {
		start := time.Now()
		for _, n := range ns {
			n.start(t)
		}
		for _, n := range ns {
			n.waitHealthy(t)
		}
		took := time.Since(start)
		if took > 10*time.Second {
			// Over the bound: say where the time went
			// (ZHISOU_CLUSTER_LOG_LEVEL=debug says more).
			for _, n := range ns {
				t.Logf("%s restarted in %v; its log:\n%s", n.name, took.Round(time.Millisecond), tail(n.proc.stderr.String(), 40))
			}
		}
		return took
	}

	// F1: the stream leader's node.
	waitProgress(100)
	l := leader()
	l.proc.kill()
	t.Logf("F1: killed %s, the stream leader, at round %d", l.name, progress.Load())
	time.Sleep(3 * time.Second)
	t.Logf("F1: %s restarted and healthy in %v", l.name, restart(l).Round(time.Millisecond))

	// F2: a node that does not lead the stream.
	waitProgress(200)
	l = leader()
	other := nodes[0]
	if other == l {
		other = nodes[1]
	}
	other.proc.kill()
	t.Logf("F2: killed %s (not the leader) at round %d", other.name, progress.Load())
	time.Sleep(2 * time.Second)
	t.Logf("F2: %s restarted and healthy in %v", other.name, restart(other).Round(time.Millisecond))

	// F3: two nodes at once: the log has no quorum. Writes on the last node
	// fail with UNAVAILABLE within its -nats-timeout; its searches go on.
	waitProgress(300)
	a, b, survivor := nodes[0], nodes[1], nodes[2]
	a.proc.kill()
	b.proc.kill()
	t.Logf("F3: killed %s and %s at round %d", a.name, b.name, progress.Load())
	sc := client(t, survivor.addr)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = sc.UpsertDocuments(wctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{{Id: "quorum-lost", Content: "无法写入。"}}})
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("write without quorum: %v; want UNAVAILABLE", err)
	}
	t.Logf("F3: a write without quorum failed in %v: %v", time.Since(start).Round(time.Millisecond), err)
	for i := range 20 {
		if _, err := sc.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "合同订立"}); err != nil {
			t.Errorf("search %d on %s without quorum: %v", i, survivor.name, err)
		}
	}
	t.Logf("F3: %s and %s restarted and healthy in %v", a.name, b.name, restart(a, b).Round(time.Millisecond))
	healed := time.Now()
	faultsDone.Store(true)

	select {
	case <-writerDone:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the writer did not finish in 5 minutes (round %d)", progress.Load())
	}
	writesDone := time.Now()
	close(stopQueries)
	<-queriesDone
	if t.Failed() {
		return
	}

	// Convergence: every node at the log's last position, with one digest.
	// Positions first (cheap); the digests, which read every document
	// under the write lock, once the positions agree.
	var digests []string
	var pos uint64
	var caughtUp time.Duration
	for {
		digests, pos = digests[:0], 0
		same := true
		for _, digest := range []bool{false, true} {
			for _, n := range nodes {
				st, err := client(t, n.addr).GetStatus(ctx, &retrievalv1.GetStatusRequest{Digest: digest})
				if err != nil {
					t.Fatal(err)
				}
				if pos == 0 {
					pos = st.GetPosition()
				}
				same = same && st.GetLag() == 0 && st.GetPosition() == pos
				if digest {
					digests = append(digests, st.GetDigest())
				}
			}
			if !same {
				break
			}
			if !digest {
				caughtUp = time.Since(writesDone)
			}
		}
		if same && digests[0] == digests[1] && digests[1] == digests[2] {
			break
		}
		if time.Since(healed) > 60*time.Second {
			docsOf := func(n *clusterNode) map[string]uint64 {
				m := map[string]uint64{}
				token := ""
				for {
					r, err := client(t, n.addr).ListDocuments(ctx, &retrievalv1.ListDocumentsRequest{Collection: "kb", PageSize: 1000, PageToken: token})
					if err != nil {
						t.Logf("%s: list documents: %v", n.name, err)
						return m
					}
					for _, d := range r.GetDocuments() {
						m[d.GetId()] = d.GetVersion()
					}
					if token = r.GetNextPageToken(); token == "" {
						return m
					}
				}
			}
			ref := docsOf(nodes[0])
			for _, n := range nodes[1:] {
				got, diffs := docsOf(n), 0
				for id, v := range ref {
					if got[id] != v && diffs < 10 {
						diffs++
						t.Logf("%s has %s at version %d, %s at %d (acknowledged: %+v)", nodes[0].name, id, v, n.name, got[id], want[id])
					}
				}
				for id, v := range got {
					if _, ok := ref[id]; !ok && diffs < 10 {
						diffs++
						t.Logf("%s has %s at version %d, %s lacks it (acknowledged: %+v)", n.name, id, v, nodes[0].name, want[id])
					}
				}
			}
			for _, n := range nodes {
				st, err := client(t, n.addr).GetStatus(ctx, &retrievalv1.GetStatusRequest{Digest: true})
				t.Logf("%s: %v %v", n.name, st, err)
			}
			dumpLogs(t, nodes)
			t.Fatalf("replicas did not converge within 60 s of the last restart: digests %q", digests)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("converged at position %d: every node there %v after the last write (%v after the last restart), digests equal; digest %s",
		pos, caughtUp.Round(time.Millisecond), writesDone.Add(caughtUp).Sub(healed).Round(time.Millisecond), digests[0][:16])

	// Every acknowledged write, in its last acknowledged state, on every node.
	var liveDocs []*retrievalv1.Document
	// The write refused without quorum may have been stored after all (a
	// timeout is ambiguous): then it is on every node, like any other.
	if d, err := client(t, nodes[0].addr).GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: "quorum-lost"}); err == nil {
		t.Logf("the write refused without quorum was stored after the heal (an ambiguous timeout)")
		want["quorum-lost"] = &docState{content: "无法写入。", version: d.GetDocument().GetVersion()}
	} else if status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	for _, n := range nodes {
		nc := client(t, n.addr)
		for id, w := range want {
			d, err := nc.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: id})
			if w.deleted {
				if status.Code(err) != codes.NotFound {
					dumpLogs(t, nodes)
					t.Fatalf("%s: deleted document %s: %v; want NOT_FOUND (found at version %d; the last write acknowledged before the delete was version %d)",
						n.name, id, err, d.GetDocument().GetVersion(), w.version)
				}
				continue
			}
			if err != nil {
				dumpLogs(t, nodes)
				t.Fatalf("%s: acknowledged document %s: %v", n.name, id, err)
			}
			if d.GetDocument().GetVersion() != w.version {
				dumpLogs(t, nodes)
				t.Fatalf("%s: document %s at version %d; the last acknowledged write is version %d", n.name, id, d.GetDocument().GetVersion(), w.version)
			}
			if n == nodes[0] {
				format := retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN
				if id == "quorum-lost" {
					format = retrievalv1.DocumentFormat_DOCUMENT_FORMAT_UNSPECIFIED
				}
				liveDocs = append(liveDocs, &retrievalv1.Document{Id: id, Content: w.content, Version: w.version, Format: format})
			}
		}
		info, err := nc.GetCollection(ctx, &retrievalv1.GetCollectionRequest{Name: "kb"})
		if err != nil {
			t.Fatal(err)
		}
		if got := info.GetCollection().GetDocumentCount(); got != int64(len(liveDocs)) {
			t.Fatalf("%s holds %d documents; %d live ones were acknowledged", n.name, got, len(liveDocs))
		}
	}

	// Ranking parity: one node on its own log, fed the surviving documents,
	// ranks every query as the replicas do.
	singleAddr := freeAddr(t)
	startServer(t, filepath.Join(root, "single"), singleAddr)
	one := client(t, singleAddr)
	if _, err := one.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(liveDocs, func(x, y *retrievalv1.Document) int { return strings.Compare(x.Id, y.Id) })
	for chunk := range slices.Chunk(liveDocs, 200) {
		if _, err := one.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	queriesSeen := []string{"价格谈判怎么做", "合同订立", "客户跟进", "竞品异议处理", "交付", "服务异议", "编号d123-4", "编号d007-1第", "销售价格", "第3版"}
	for _, q := range queriesSeen {
		ref := topIDs(t, one, q)
		for _, n := range nodes {
			if got := topIDs(t, client(t, n.addr), q); !slices.Equal(got, ref) {
				t.Fatalf("%s ranks %q as %v; one node fed the same documents: %v", n.name, q, got, ref)
			}
		}
	}
	n, fails := queries.Load(), queryFails.Load()
	t.Logf("writes: %d rounds (%d document writes), %d live documents; longest write stall %v", progress.Load(), int(version), len(liveDocs), time.Duration(stallMax.Load()).Round(time.Millisecond))
	t.Logf("queries: %d, %d failed after the client's retries: availability %.3f%%", n, fails, 100*float64(n-fails)/float64(max(n, 1)))
	if n < 100 || float64(fails) > 0.01*float64(n) {
		t.Errorf("queries: %d of %d failed; want at most 1%%", fails, n)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// topIDs returns a search's top ten chunk ids.
func topIDs(t *testing.T, c retrievalv1.RetrievalServiceClient, q string) []string {
	t.Helper()
	res, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: q, TopK: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range res.GetHits() {
		ids = append(ids, h.GetChunkId())
	}
	if len(ids) == 0 {
		t.Fatalf("no hits for %q", q)
	}
	return ids
}
