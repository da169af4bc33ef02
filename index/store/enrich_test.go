package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

// fakeEnricher writes the questions its map gives for a chunk's text, as a
// model would; with fail set it writes nothing (every call failed).
type fakeEnricher struct {
	mu        sync.Mutex
	questions map[string][]string // by chunk text
	fail      bool
	asked     int // chunks it generated for
	reused    int // chunks whose stored questions it kept
}

func (f *fakeEnricher) Enrich(ctx context.Context, collection string, docs []index.Document, stored func(*index.Chunk) *index.Generated) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range docs {
		for j := range docs[i].Chunks {
			c := &docs[i].Chunks[j]
			if g := stored(c); g != nil {
				c.Generated = g
				f.reused++
				continue
			}
			if q, ok := f.questions[c.Text]; ok && !f.fail {
				c.Generated = &index.Generated{Prompt: "test-v1", Model: "fake", Questions: q, Keywords: []string{"关键词"}}
				f.asked++
			}
		}
	}
}

const (
	wageText  = "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"
	wageText2 = "用人单位拖欠或者未足额支付劳动报酬的，劳动者可以依法向当地人民法院申请支付令。"
)

// TestEnrichedQuestions: what an enricher writes about a chunk is stored
// with the document, found through the learned model, reused for an
// unchanged chunk, dropped with the chunk it was about, and replayed from
// the write log.
func TestEnrichedQuestions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fe := &fakeEnricher{questions: map[string][]string{wageText: {"老板不给钱怎么办"}, wageText2: {"工资被拖欠去哪里告"}}}
	s, err := Open(ctx, dir, testAnalyzer(t), Options{Enricher: fe})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if err := s.CreateCollection(ctx, index.DefaultCollection("law")); err != nil {
		t.Fatal(err)
	}
	labour := func(text string) index.Document {
		return indextest.Doc("labour", "劳动合同法", text, "劳动合同期满的，劳动合同终止。")
	}
	lease := indextest.Doc("lease", "民法典 租赁", "租赁期限届满，出租人应当返还承租人交付的押金。")
	wage := index.ChunkID("labour", []string{"第1节"}, 0)
	upsert := func(docs ...index.Document) []index.Outcome {
		t.Helper()
		outs, err := s.Upsert(ctx, "law", docs)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitLearnedAll(ctx); err != nil {
			t.Fatal(err)
		}
		return outs
	}
	via := func(q string) string {
		t.Helper()
		hits, err := s.LearnedSearch(ctx, "law", q, index.Filter{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 0 || hits[0].ChunkID != wage {
			return ""
		}
		return hits[0].Via[0]
	}

	upsert(labour(wageText), lease)
	if info, _ := s.LearnInfo("law"); info.Generated != 2 || info.Pairs != 0 {
		t.Errorf("learned from %+v, want 2 generated (a question and the keywords' line) and no labelled pair", info.Stats)
	}
	if got := via("老板不给钱"); got != "老板不给钱怎么办" {
		t.Errorf("found via %q, want the generated question", got)
	}
	d, err := s.Document(ctx, "law", "labour")
	if err != nil || d.Chunks[0].Generated == nil || d.Chunks[0].Generated.Questions[0] != "老板不给钱怎么办" || d.Chunks[0].Text != wageText {
		t.Fatalf("document read back: %+v (%v), want the chunk's text and generated questions", d.Chunks[0], err)
	}
	digest, _, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The same documents again: the stored questions are reused, nothing is
	// asked or written.
	if outs := upsert(labour(wageText), lease); !slices.Equal(outs, []index.Outcome{index.Unchanged, index.Unchanged}) || fe.asked != 1 {
		t.Errorf("re-ingest: outcomes %v, %d chunks asked in all; want unchanged and 1", outs, fe.asked)
	}

	// The chunk changes: its old questions go, new ones come.
	upsert(labour(wageText2))
	if got := via("老板不给钱"); got == "老板不给钱怎么办" {
		t.Error("the changed chunk is still found via the question written about its old text")
	}
	if got := via("工资被拖欠"); got != "工资被拖欠去哪里告" {
		t.Errorf("found via %q, want the question about the new text", got)
	}
	if after, _, _ := s.Digest(ctx); after == digest {
		t.Error("the digest did not change with the generated questions")
	}

	// Enrichment fails: the document is still written, without questions,
	// and the model forgets the old ones.
	fe.fail = true
	if outs := upsert(labour(wageText)); outs[0] != index.Updated {
		t.Fatalf("outcome %v, want updated", outs[0])
	}
	if info, _ := s.LearnInfo("law"); info.Generated != 0 {
		t.Errorf("after a failed enrichment the model holds %d generated pairs, want 0", info.Generated)
	}

	// Enrichment works again: the document is written again (its hash
	// covers the questions), then deleting it drops them.
	fe.fail = false
	if outs := upsert(labour(wageText)); outs[0] != index.Updated {
		t.Errorf("outcome %v, want updated (enriched now)", outs[0])
	}
	want, _, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infoBefore, _ := s.LearnInfo("law")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Rebuilt from the write log alone (no enricher): the same state.
	if _, err := Repair(ctx, dir, "", testAnalyzer(t), Options{}); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, dir, testAnalyzer(t), Options{}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLearnedAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Digest(ctx); err != nil || got != want {
		t.Errorf("digest after the rebuild %s (%v), before %s", got, err, want)
	}
	if info, _ := s.LearnInfo("law"); info.Generated != infoBefore.Generated || info.Generated == 0 {
		t.Errorf("after the rebuild the model holds %d generated pairs, before %d", info.Generated, infoBefore.Generated)
	}
	if _, err := s.Delete(ctx, "law", []string{"labour"}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLearnedAll(ctx); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.LearnInfo("law"); info.Generated != 0 {
		t.Errorf("after the delete the model holds %d generated pairs, want 0", info.Generated)
	}
}

// stuckEnricher waits for its context to end, as a model that never answers.
type stuckEnricher struct{}

func (stuckEnricher) Enrich(ctx context.Context, _ string, _ []index.Document, _ func(*index.Chunk) *index.Generated) {
	<-ctx.Done()
}

// TestEnrichWithinTheCallersDeadline: enrichment that outlasts the caller's
// deadline leaves time for the write: the document is written, without.
func TestEnrichWithinTheCallersDeadline(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), testAnalyzer(t), Options{Enricher: stuckEnricher{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(context.Background(), index.DefaultCollection("law")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	outs, err := s.Upsert(ctx, "law", []index.Document{indextest.Doc("labour", "劳动合同法", wageText)})
	if err != nil || outs[0] != index.Added {
		t.Fatalf("upsert = %v, %v; want it added before the deadline", outs, err)
	}
}
