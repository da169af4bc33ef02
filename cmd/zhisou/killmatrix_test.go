package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"

	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
)

// TestKillMatrix SIGKILLs the server at a random moment of a stream of
// writes, over and over on one data directory (100 rounds; ZHISOU_KILL_ROUNDS
// sets another count), and after every restart checks that each document
// acknowledged in that round is there, and that the store did not take its
// own stale state file for damage. At the end Badger and bleve must agree,
// hold every acknowledged document, and report the same position.
func TestKillMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	rounds := 100
	if n, err := strconv.Atoi(os.Getenv("ZHISOU_KILL_ROUNDS")); err == nil {
		rounds = n
	}
	storeDir := filepath.Join(t.TempDir(), "store")
	addr := freeAddr(t)
	var acked, last []string // last: the previous round's acknowledged documents
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for round := range rounds {
		srv := startServer(t, storeDir, addr) // fails the test if the store is refused
		c := client(t, addr)
		ctx := t.Context()
		if round == 0 {
			if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
				t.Fatal(err)
			}
		}
		if len(last) > 0 {
			for _, id := range []string{last[0], last[len(last)-1]} {
				if _, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: id}); err != nil {
					t.Fatalf("round %d: document %s, acknowledged before the last kill: %v", round, id, err)
				}
			}
		}
		// This round's documents acknowledged before the kill are all there
		// after the restart.
		var mu sync.Mutex
		var mine []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for b := 0; ; b++ {
				var docs []*retrievalv1.Document
				for i := range 10 {
					id := fmt.Sprintf("r%03d-b%03d-%d", round, b, i)
					docs = append(docs, &retrievalv1.Document{Id: id, Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN,
						Content: fmt.Sprintf("# 第%d轮\n\n## 第%d批\n\n编号%s：客户异议处理与价格谈判。", round, b, id)})
				}
				if _, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: docs}); err != nil {
					return // killed
				}
				mu.Lock()
				for _, d := range docs {
					mine = append(mine, d.GetId())
				}
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(10+rng.IntN(300)) * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		<-srv.done
		<-done
		mu.Lock()
		acked = append(acked, mine...)
		mu.Unlock()
		last = mine
	}
	s, err := store.Open(t.Context(), storeDir, indextest.Analyzer(t), store.Options{})
	if err != nil {
		t.Fatalf("open after %d kills: %v", rounds, err)
	}
	defer s.Close()
	if err := s.Verify(t.Context(), "kb"); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if _, err := s.Document(t.Context(), "kb", id); err != nil {
			t.Fatalf("acknowledged document %s after %d kills: %v", id, rounds, err)
		}
	}
	bp, tp, err := s.Positions()
	if err != nil || tp["kb"] != bp {
		t.Errorf("positions: badger %d, bleve %d, %v; want equal", bp, tp["kb"], err)
	}
	t.Logf("%d kills, %d documents acknowledged, all present", rounds, len(acked))
}
