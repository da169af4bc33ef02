package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhisou/zhisou/rerank/fakellm"
)

// lawQuestions answers an enrichment request with a question in a
// layperson's words about the passage it was sent.
func lawQuestions(msgs []fakellm.Message) string {
	user := msgs[len(msgs)-1].Content
	switch {
	case strings.Contains(user, "劳动报酬"):
		return `{"questions": ["老板不给钱怎么办"], "keywords": ["工资"]}`
	case strings.Contains(user, "工伤"):
		return `{"questions": ["上班摔伤了谁负责"], "keywords": ["工伤"]}`
	}
	return `{"questions": ["房东不退钱怎么办"], "keywords": ["押金"]}`
}

// TestIngestEnrich: ingest -enrich-url writes a model's questions for each
// chunk, search finds a chunk through them, a second ingest reuses them,
// and a model that refuses everything fails nothing.
func TestIngestEnrich(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"corpus.jsonl": []byte(lawCorpus)})
	fake := fakellm.New(t, fakellm.Compute(lawQuestions))
	env := envOf(map[string]string{"ZHISOU_ENRICH_API_KEY": "x"})
	storeDir := filepath.Join(dir, "store")
	ingest := func(url, store string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runT(t, []string{"ingest", "-quiet", "-store", store, "-collection", "law", "-enrich-url", url, "-enrich-model", "m", filepath.Join(dir, "corpus.jsonl")}, env, &out, &errOut); err != nil {
			t.Fatalf("ingest: %v\n%s", err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	if out, _ := ingest(fake.URL, storeDir); !strings.Contains(out, "enrich: 3 chunks asked, 3 answered, 0 reused") {
		t.Errorf("first ingest printed %q, want 3 chunks asked and answered", out)
	}
	if out, _ := ingest(fake.URL, storeDir); !strings.Contains(out, "enrich: 0 chunks asked, 0 answered, 3 reused") || fake.Count() != 3 {
		t.Errorf("second ingest printed %q after %d calls in all, want 3 reused and no new call", out, fake.Count())
	}
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"learn", "-store", storeDir, "-collection", "law", "-info"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "0 pairs") || !strings.Contains(out.String(), "6 generated pairs") {
		t.Errorf("learn -info = %v, %q; want 6 generated pairs (a question and a keyword line per chunk)", err, out.String())
	}
	out.Reset()
	if err := runT(t, []string{"search", "-store", storeDir, "-collection", "law", "-k", "1", "-explain", "老板不给钱"}, env, &out, &errOut); err != nil {
		t.Fatalf("search: %v\n%s", err, errOut.String())
	}
	if s := out.String(); !strings.Contains(s, "劳动合同法第三十八条") || !strings.Contains(s, `like the generated question "老板不给钱怎么办"`) {
		t.Errorf("search printed %q, want the wage article found like the generated question", s)
	}

	// A vendor that refuses every passage: the ingest succeeds without.
	refusing := fakellm.New(t, fakellm.DashScopeRefusal())
	out2, errOut2 := ingest(refusing.URL, filepath.Join(dir, "store2"))
	if !strings.Contains(out2, "added 3") || !strings.Contains(out2, "3 written without (refused 3)") {
		t.Errorf("ingest against a refusing model printed %q, want 3 added and 3 written without", out2)
	}
	if !strings.Contains(errOut2, "chunk written without generated questions") {
		t.Errorf("no warning about the refusals: %q", errOut2)
	}

	// Enrichment is done by whoever opens the store: a client of a server
	// cannot ask for it.
	if err := runT(t, []string{"ingest", "-addr", "127.0.0.1:1", "-enrich-url", fake.URL, "-enrich-model", "m", filepath.Join(dir, "corpus.jsonl")}, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "work with -store") {
		t.Errorf("ingest -enrich-url against a server: %v, want an error saying it needs -store", err)
	}
	if err := runT(t, []string{"ingest", "-store", storeDir, "-enrich-url", fake.URL, "-enrich-model", "m", filepath.Join(dir, "corpus.jsonl")}, envOf(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "ZHISOU_ENRICH_API_KEY") {
		t.Errorf("ingest -enrich-url without a key: %v, want an error naming the variable", err)
	}
}

// TestServeEnrich: a server started with -enrich-url enriches what clients
// send it, and reports the generated pairs.
func TestServeEnrich(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped under -short")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"corpus.jsonl": []byte(lawCorpus)})
	fake := fakellm.New(t, fakellm.Compute(lawQuestions))
	t.Setenv("ZHISOU_ENRICH_API_KEY", "x")
	addr := freeAddr(t)
	startServer(t, filepath.Join(dir, "store"), addr, "-enrich-url", fake.URL, "-enrich-model", "m")
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-quiet", "-addr", addr, "-collection", "law", filepath.Join(dir, "corpus.jsonl")}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	if fake.Count() != 3 {
		t.Errorf("the server asked the model %d times, want 3 (one a chunk)", fake.Count())
	}
	// The model is rebuilt in the background after the write.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		err := runT(t, []string{"learn", "-addr", addr, "-collection", "law", "-info"}, envOf(nil), &out, &errOut)
		if err == nil && strings.Contains(out.String(), "6 generated pairs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("learn -info = %v, %q; want 6 generated pairs", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
