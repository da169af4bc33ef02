package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// TestKillMatrixIngest SIGKILLs 'zhisou ingest -store' at a random moment,
// over and over on one data directory (30 rounds; ZHISOU_KILL_ROUNDS_INGEST
// sets another count), while each round rewrites the folder's files.
// After every kill the store must open (not be refused as damaged) and
// Badger and bleve must agree (no chunk indexed twice, none missing); at the
// end an ingest run to completion leaves exactly the folder's documents,
// each with its file's newest text.
func TestKillMatrixIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	rounds := 30
	if n, err := strconv.Atoi(os.Getenv("ZHISOU_KILL_ROUNDS_INGEST")); err == nil {
		rounds = n
	}
	storeDir := filepath.Join(t.TempDir(), "store")
	folder := t.TempDir()
	const files = 200
	text := map[string]string{} // document id -> its file's newest marker
	write := func(i, round int) {
		id := fmt.Sprintf("f%03d", i)
		marker := fmt.Sprintf("版本%d-%d", round, i)
		body := fmt.Sprintf("# 课程%s\n\n## 要点\n\n%s：客户异议处理与价格谈判。\n\n## 练习\n\n%s", id, marker,
			strings.Repeat("复述销售流程的每一步，并说明理由。", 20+i%50))
		if err := os.WriteFile(filepath.Join(folder, id+".md"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		text[id] = marker
	}
	for i := range files {
		write(i, 0)
	}
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	an := indextest.Analyzer(t)
	// How long an ingest of a round's changes takes, unkilled: the kills
	// fall within it.
	bin := zhisouBinary(t) // built before the clock starts
	start := time.Now()
	if out, err := exec.Command(bin, "ingest", "-store", storeDir, "-collection", "kb", "-quiet", folder).CombinedOutput(); err != nil {
		t.Fatalf("the first ingest: %v\n%s", err, out)
	}
	span := time.Since(start)
	killed := 0
	for round := range rounds {
		for i := range files { // every file changes: the ingest writes them all
			write(i, round+1)
		}
		cmd := exec.Command(bin, "ingest", "-store", storeDir, "-collection", "kb", "-quiet", folder)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil { // else it finished before the kill
			killed++
		}
		s, err := store.Open(t.Context(), storeDir, an, store.Options{})
		if err != nil {
			t.Fatalf("round %d: open after the kill: %v", round, err)
		}
		if _, err := s.Collection("kb"); err == nil {
			if err := s.Verify(t.Context(), "kb"); err != nil {
				s.Close()
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(zhisouBinary(t), "ingest", "-store", storeDir, "-collection", "kb", "-quiet", folder).CombinedOutput()
	if err != nil {
		t.Fatalf("the last ingest: %v\n%s", err, out)
	}
	s, err := store.Open(t.Context(), storeDir, an, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(t.Context(), "kb"); err != nil {
		t.Fatal(err)
	}
	info, err := s.Collection("kb")
	if err != nil || info.Stats.Docs != files {
		t.Fatalf("after %d kills and a full ingest: %+v, %v; want %d documents", rounds, info.Stats, err, files)
	}
	for id, marker := range text {
		d, err := s.Document(t.Context(), "kb", id)
		if err != nil {
			t.Fatalf("document %s: %v", id, err)
		}
		found := false
		for _, c := range d.Chunks {
			found = found || strings.Contains(c.Text, marker)
		}
		if !found {
			t.Fatalf("document %s does not hold its file's newest text %q", id, marker)
		}
	}
	if killed < rounds/3 {
		t.Errorf("only %d of %d ingests were killed while running; the kills test little", killed, rounds)
	}
	t.Logf("%d rounds, %d ingests killed while running; then %d documents, %d chunks, all current", rounds, killed, info.Stats.Docs, info.Stats.Chunks)
}
