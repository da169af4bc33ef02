package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
)

// TestThreeMegabyteMarkdown is the reported way to brick a store: a 3 MB
// Markdown file, under every size limit, whose chunks were more than Badger
// applies in one transaction, so it was logged, failed to apply, and every
// later open failed. It must ingest, search, verify and reopen.
func TestThreeMegabyteMarkdown(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses 3 MB of text")
	}
	var b strings.Builder
	b.WriteString("# 大型培训手册\n")
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "\n## 第%d节 客户沟通\n\n", i+1)
		for j := range 6 {
			fmt.Fprintf(&b, "第%d条第%d款：客户说价格太贵时，先确认客户的预算，再说明产品的价值；培训的目标是让每位销售掌握应对方法。", i+1, j+1)
		}
		b.WriteString("\n")
	}
	d, err := ingest.Build(ingest.Input{ID: "manual", Format: ingest.Markdown, Content: b.String()}, ingest.ChunkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := storetest.OpenDir(t, dir)
	if err := s.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(t.Context(), "c", []index.Document{d}); err != nil {
		t.Fatalf("upsert of a %.1f MB document with %d chunks: %v", float64(b.Len())/(1<<20), len(d.Chunks), err)
	}
	if err := s.Verify(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.OpenDir(t, dir)
	got, err := s.Document(t.Context(), "c", "manual")
	if err != nil || len(got.Chunks) != len(d.Chunks) {
		t.Fatalf("after reopening: %d chunks, %v; want %d", len(got.Chunks), err, len(d.Chunks))
	}
	t.Logf("%.1f MB, %d chunks", float64(b.Len())/(1<<20), len(d.Chunks))
}
