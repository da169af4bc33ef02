package retrieve_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// TestSearchDuringUpdates searches with WithContext while a document is
// rewritten with different headings, so that its chunk ids change. The text
// index, the chunk and the document are read one after the other, and the
// document can change in between: a search must neither panic nor fail; a
// hit whose chunk is gone is dropped.
func TestSearchDuringUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: concurrent writes")
	}
	store := testStore(t)
	s := retrieve.New(store, retrieve.Options{})
	ctx := t.Context()
	version := func(i int) index.Document {
		var b strings.Builder
		fmt.Fprintf(&b, "# 轮岗制度\n")
		for j := range 8 {
			fmt.Fprintf(&b, "\n## 版本%d 第%d节\n\n轮岗期间由导师负责考核，第%d节的考核结果记入档案。\n", i, j, j)
		}
		d, err := ingest.Build(ingest.Input{ID: "rotation", Format: ingest.Markdown, Content: b.String()}, ingest.ChunkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := store.Upsert(ctx, "c", []index.Document{version(i % 2)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// A time bound, not a count: the race detector slows searches tenfold.
	n, empty := 0, 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); n++ {
		res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: "轮岗考核", WithContext: true})
		if err != nil {
			t.Errorf("Search(%q) during updates = %v", "轮岗考核", err)
			break
		}
		if len(res.Hits) == 0 {
			empty++
		}
		for _, h := range res.Hits {
			if !strings.Contains(h.Context, h.Text) {
				t.Errorf("Search(%q) during updates: hit %s context %q does not contain its text %q", "轮岗考核", h.ChunkID, h.Context, h.Text)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d searches during updates, %d without hits", n, empty)
	res, err := s.Search(ctx, retrieve.Request{Collection: "c", Query: "轮岗考核"})
	if err != nil || len(res.Hits) == 0 || res.Hits[0].DocID != "rotation" {
		t.Errorf("Search(%q) after updates = %v, %v, want rotation first", "轮岗考核", res.Hits, err)
	}
}
