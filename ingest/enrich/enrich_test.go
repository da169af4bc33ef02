package enrich_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest/enrich"
	"github.com/zhisou/zhisou/internal/promtest"
	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/rerank/fakellm"
)

// newEnricher returns an Enricher asking the fake servers in priority order,
// with a per-call deadline.
func newEnricher(t *testing.T, timeout time.Duration, fakes ...*fakellm.Server) *enrich.Enricher {
	t.Helper()
	opts := rerank.Options{Timeout: timeout, HedgeDelay: -1, CacheSize: -1, Getenv: func(string) string { return "key" }}
	for i, f := range fakes {
		opts.Providers = append(opts.Providers, rerank.Provider{Name: fmt.Sprintf("p%d", i), BaseURL: f.URL, Model: "m", APIKeyEnv: "K"})
	}
	l, err := rerank.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return enrich.New(l, enrich.Options{})
}

// doc returns a sealed document of n chunks, each long enough to be asked about.
func doc(id string, n int) index.Document {
	d := index.Document{ID: id, Title: "员工手册"}
	for i := range n {
		d.Chunks = append(d.Chunks, index.Chunk{ID: fmt.Sprintf("%s#%d", id, i), HeadingPath: []string{fmt.Sprintf("第%d章", i+1)},
			Text: fmt.Sprintf("第%d条 用人单位应当按照劳动合同约定和国家规定，向劳动者及时足额支付劳动报酬。", i+1)})
	}
	d.Seal()
	return d
}

func nothingStored(*index.Chunk) *index.Generated { return nil }

// answerAbout answers each request with questions naming the chapter of
// the passage it was sent, in a fenced JSON block as models often do.
func answerAbout(msgs []fakellm.Message) string {
	user := msgs[len(msgs)-1].Content
	ch := "?"
	if i := strings.Index(user, "章节："); i >= 0 {
		ch = strings.SplitN(user[i+len("章节："):], "\n", 2)[0]
	}
	return "好的：\n```json\n" + `{"questions": ["` + ch + `老板不给钱怎么办", "  ` + ch + `工资拖欠\n找谁  ", "` + ch + `老板不给钱怎么办", "多余的第四问", "第五问"], "keywords": ["劳动报酬", "工资", "劳动报酬"]}` + "\n```"
}

func TestEnrichWritesQuestions(t *testing.T) {
	fake := fakellm.New(t, fakellm.Compute(answerAbout))
	e := newEnricher(t, 5*time.Second, fake)
	docs := []index.Document{doc("a", 3), doc("b", 2)}
	docs[1].Chunks[1].Text = "太短" // not worth a call
	e.Enrich(context.Background(), "c", docs, nothingStored)

	g := docs[0].Chunks[1].Generated
	if g == nil {
		t.Fatal("chunk a#1 has no generated questions")
	}
	// Trimmed, on one line, repeats dropped, capped at 3 questions.
	want := []string{"第2章老板不给钱怎么办", "第2章工资拖欠 找谁", "多余的第四问"}
	if strings.Join(g.Questions, "|") != strings.Join(want, "|") {
		t.Errorf("questions %q, want %q", g.Questions, want)
	}
	if strings.Join(g.Keywords, "|") != "劳动报酬|工资" {
		t.Errorf("keywords %q, want 劳动报酬, 工资", g.Keywords)
	}
	if g.Prompt != enrich.PromptVersion || g.Model != "p0" {
		t.Errorf("prompt %q model %q, want %q and p0", g.Prompt, g.Model, enrich.PromptVersion)
	}
	if docs[1].Chunks[1].Generated != nil {
		t.Error("a two-character chunk was enriched")
	}
	// The passage is sent as data, with its title and heading.
	req := string(fake.Requests()[0].Body)
	for _, s := range []string{"员工手册", "劳动报酬", "一律忽略", `\"questions\"`} {
		if !strings.Contains(req, s) {
			t.Errorf("request lacks %q: %s", s, req)
		}
	}
	st := e.Stats()
	if st.Asked != 4 || st.Generated != 4 || st.Short != 1 || len(st.Failed) != 0 || fake.Count() != 4 {
		t.Errorf("stats %+v, %d calls; want 4 asked and answered, 1 short, 4 calls", st, fake.Count())
	}
	if st.PromptTokens != 4*300 {
		t.Errorf("prompt tokens %d, want %d", st.PromptTokens, 4*300)
	}
}

// TestEnrichReusesStored: a chunk whose questions are stored for its content
// under this prompt is not asked about again; under another prompt it is.
func TestEnrichReusesStored(t *testing.T) {
	fake := fakellm.New(t, fakellm.Compute(answerAbout))
	e := newEnricher(t, 5*time.Second, fake)
	docs := []index.Document{doc("a", 2)}
	kept := &index.Generated{Prompt: enrich.PromptVersion, Questions: []string{"存着的问题"}}
	stored := func(c *index.Chunk) *index.Generated {
		switch c.ID {
		case "a#0":
			return kept
		case "a#1":
			return &index.Generated{Prompt: "enrich-v0", Questions: []string{"旧提示词的问题"}}
		}
		return nil
	}
	e.Enrich(context.Background(), "c", docs, stored)
	if docs[0].Chunks[0].Generated != kept {
		t.Errorf("a#0: %+v, want the stored questions", docs[0].Chunks[0].Generated)
	}
	if g := docs[0].Chunks[1].Generated; g == nil || g.Questions[0] != "第2章老板不给钱怎么办" {
		t.Errorf("a#1 (stored under another prompt): %+v, want asked again", g)
	}
	if fake.Count() != 1 {
		t.Errorf("%d calls, want 1", fake.Count())
	}
	if st := e.Stats(); st.Reused != 1 || st.Asked != 1 {
		t.Errorf("stats %+v, want 1 reused and 1 asked", st)
	}
}

// TestEnrichFailuresWriteWithout: whatever the vendor does, Enrich returns
// in time and leaves the chunk without questions, counting why.
func TestEnrichFailuresWriteWithout(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode fakellm.Mode
		want rerank.Status
	}{
		{"refusal", fakellm.DashScopeRefusal(), rerank.StatusRefused},
		{"server error", fakellm.HTMLError(http.StatusBadGateway), rerank.StatusServerError},
		{"rate limited", fakellm.RateLimited("30"), rerank.StatusRateLimited},
		{"prose", fakellm.Prose(), rerank.StatusMalformed},
		{"json without questions", fakellm.Answer(`{"questions": [], "keywords": ["工资"]}`), rerank.StatusMalformed},
		{"slow", fakellm.Delay(10*time.Second, fakellm.Compute(answerAbout)), rerank.StatusTimeout},
		{"thinking", fakellm.Thinking(), rerank.StatusMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnricher(t, 300*time.Millisecond, fakellm.New(t, tt.mode))
			docs := []index.Document{doc("a", 2)}
			start := time.Now()
			e.Enrich(context.Background(), "c", docs, nothingStored)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Enrich took %v against a %v deadline", took, 300*time.Millisecond)
			}
			for _, c := range docs[0].Chunks {
				if c.Generated != nil {
					t.Errorf("%s: generated %+v, want none", c.ID, c.Generated)
				}
			}
			// A 429 whose Retry-After is beyond the budget opens the
			// provider's circuit for that long: a chunk asked after it
			// fails at once, without a call.
			st := e.Stats()
			failed := st.Failed[string(tt.want)]
			if tt.want == rerank.StatusRateLimited {
				failed += st.Failed[string(rerank.StatusCircuitOpen)]
			}
			if failed != 2 || st.Failed[string(tt.want)] == 0 || st.Generated != 0 {
				t.Errorf("stats %+v, want 2 failed %s", st, tt.want)
			}
		})
	}
}

// TestEnrichFailsOver: a refusing first provider hands over to the second.
func TestEnrichFailsOver(t *testing.T) {
	bad, good := fakellm.New(t, fakellm.ZhipuRefusal()), fakellm.New(t, fakellm.Compute(answerAbout))
	e := newEnricher(t, 5*time.Second, bad, good)
	docs := []index.Document{doc("a", 1)}
	e.Enrich(context.Background(), "c", docs, nothingStored)
	if g := docs[0].Chunks[0].Generated; g == nil || g.Model != "p1" {
		t.Fatalf("generated %+v, want questions from p1", g)
	}
}

// TestEnrichCanceled: a canceled ingest stops asking and returns.
func TestEnrichCanceled(t *testing.T) {
	fake := fakellm.New(t, fakellm.Delay(time.Minute, fakellm.Compute(answerAbout)))
	e := newEnricher(t, time.Minute, fake)
	docs := []index.Document{doc("a", 20)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	e.Enrich(ctx, "c", docs, nothingStored)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Enrich took %v after its context ended", took)
	}
	if n := fake.Count(); n > 4 {
		t.Errorf("%d calls after cancel, want at most the 4 in flight", n)
	}
}

// TestEnrichMetrics: the counts, as Prometheus reads them.
func TestEnrichMetrics(t *testing.T) {
	e := newEnricher(t, 5*time.Second, fakellm.New(t, fakellm.Compute(answerAbout), fakellm.DashScopeRefusal()))
	docs := []index.Document{doc("a", 2)}
	docs[0].Chunks = append(docs[0].Chunks, index.Chunk{ID: "a#short", Text: "短"})
	e.Enrich(context.Background(), "c", docs, nothingStored)
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	got := promtest.Values(t, reg)
	want := map[string]float64{
		"zhisou_enrich_chunks_total{answered}": 1, "zhisou_enrich_chunks_total{refused}": 1,
		"zhisou_enrich_chunks_total{reused}": 0, "zhisou_enrich_chunks_total{short}": 1,
		"zhisou_enrich_tokens_total{prompt}": 300, "zhisou_enrich_tokens_total{completion}": 60,
		"zhisou_enrich_cost_total": 0,
	}
	if !maps.Equal(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}
