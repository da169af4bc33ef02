package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
)

// runT is run with the test binary's analyzer preloaded.
func runT(t *testing.T, args []string, getenv func(string) string, stdout, stderr *bytes.Buffer) error {
	if len(args) == 0 {
		return run(t.Context(), args, getenv, stdout, stderr)
	}
	return runEnv(t.Context(), &cmdEnv{getenv: getenv, stdout: stdout, stderr: stderr, an: indextest.Analyzer(t)}, args)
}

// env returns a getenv over a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// courseFolder is a small folder with good and bad files.
func courseFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("第三章 客户跟进\n\n成交后二十四小时内回访客户，确认交付细节。"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string][]byte{
		"sales/price.md":     []byte(grpcapitest.SalesMD),
		"safety/rules.md":    []byte(grpcapitest.SafetyMD),
		"sales/followup.txt": gbk,
		"broken.md":          {0x00, 0x01, 0x02, 0xff, 0x00},
		"empty.txt":          {},
		"picture.png":        {0x89, 'P', 'N', 'G'},
	})
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "escape.md")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIngestAndSearchDirect(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	folder := courseFolder(t)
	env := envOf(map[string]string{"ZHISOU_STORE": store}) // -store through the environment
	var out, errOut bytes.Buffer
	err := runT(t, []string{"ingest", "-collection", "kb", folder}, env, &out, &errOut)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("ingest of a folder with bad files = %v, want exit code 1\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"added 3", "failed 2", "skipped 2"} { // the empty file is skipped, not failed
		if !strings.Contains(out.String(), want) {
			t.Errorf("ingest summary %q does not contain %q", out.String(), want)
		}
	}
	for _, want := range []string{"broken.md: binary", "empty.txt: empty", "escape.md: symlink points outside the folder", "picture.png: unsupported format"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("ingest stderr does not report %q:\n%s", want, errOut.String())
		}
	}

	// Again: everything unchanged.
	out.Reset()
	errOut.Reset()
	_ = runT(t, []string{"ingest", "-collection", "kb", folder}, env, &out, &errOut)
	if !strings.Contains(out.String(), "added 0, updated 0, unchanged 3") {
		t.Errorf("second ingest summary = %q, want everything unchanged", out.String())
	}

	// The GBK file was converted and is searchable; JSON output.
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-json", "-k", "3", "回访客户"}, env, &out, &errOut); err != nil {
		t.Fatalf("search: %v\n%s", err, errOut.String())
	}
	var res struct {
		Hits []hitView `json:"hits"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("search -json output %q: %v", out.String(), err)
	}
	if len(res.Hits) == 0 || res.Hits[0].DocumentID != "sales/followup" {
		t.Fatalf("search(回访客户) = %+v, want sales/followup first", res.Hits)
	}
	h := res.Hits[0]
	if len(h.Highlights) == 0 || h.Text[h.Highlights[0][0]:h.Highlights[0][1]] == "" {
		t.Errorf("hit highlights %v in %q: want the matched terms marked", h.Highlights, h.Text)
	}

	// Readable output with a heading filter.
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-heading", "第二章 价格异议处理 > 2.1 确认预算", "预算"}, env, &out, &errOut); err != nil {
		t.Fatalf("search: %v", err)
	}
	if !strings.Contains(out.String(), "2.1 确认预算") || !strings.Contains(out.String(), "【预算】") || strings.Contains(out.String(), "2.2 说明价值") {
		t.Errorf("search -heading output:\n%s\nwant only hits under 2.1 with 【预算】 marked", out.String())
	}

	// Prune after a file disappears.
	if err := os.Remove(filepath.Join(folder, "safety/rules.md")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_ = runT(t, []string{"ingest", "-collection", "kb", "-prune", folder}, env, &out, &errOut)
	if !strings.Contains(out.String(), "deleted 1") {
		t.Errorf("ingest -prune summary = %q, want deleted 1", out.String())
	}
}

func TestCommandErrors(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"frobnicate"}, ""},
		{"search without a query", []string{"search", "-store", store}, "no query"},
		{"search an unknown collection", []string{"search", "-store", store, "-collection", "nope", "价格"}, `"nope"`},
		{"search with a bad -meta", []string{"search", "-store", store, "-meta", "novalue", "价格"}, "KEY=VALUE"},
		{"ingest without a path", []string{"ingest", "-store", store}, "no PATH"},
		{"ingest a missing path", []string{"ingest", "-store", store, "/does/not/exist"}, "does/not/exist"},
		{"ingest to a server that is not running", []string{"ingest", "-addr", "127.0.0.1:1", t.TempDir()}, "no zhisou server at 127.0.0.1:1"},
		{"eval without -data", []string{"eval"}, "-data is required"},
		{"eval with an unknown baseline", []string{"eval", "-data", t.TempDir(), "-baseline", "lucene"}, "only baseline"},
		// Rejected before the set (here missing) is read.
		{"eval with a baseline and an existing collection", []string{"eval", "-data", t.TempDir(), "-baseline", "bleve", "-collection", "kb"}, "drop -collection"},
		{"bad log level", []string{"search", "-store", store, "-log-level", "loud", "x"}, "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runT(t, tt.args, envOf(nil), &out, &errOut)
			if err == nil {
				t.Fatalf("run(%q) succeeded, want an error", tt.args)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %q, want it to mention %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestEvalExistingCollection: eval with -collection searches a collection
// that is already in a store instead of ingesting the corpus.
func TestEvalExistingCollection(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	writeFiles(t, dir, map[string][]byte{
		"corpus/price.md":   []byte(grpcapitest.SalesMD),
		"corpus/rules.md":   []byte(grpcapitest.SafetyMD),
		"set/queries.jsonl": []byte(`{"id":"q1","text":"有限空间作业"}` + "\n"),
		"set/qrels.tsv":     []byte("q1\trules\t1\n"),
	})
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-store", store, "-collection", "kb", filepath.Join(dir, "corpus")}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := runT(t, []string{"eval", "-store", store, "-collection", "kb", "-data", filepath.Join(dir, "set"), "-json"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("eval -collection: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatal(err)
	}
	if m["recall@10"] != 1.0 || m["docs"] != 2.0 {
		t.Errorf("eval -collection kb = %v, want recall@10 1 over the 2 stored documents", m)
	}
}

// TestIngestQuestionBank ingests a CSV question bank with the command line
// and searches it, readable and as JSON.
func TestIngestQuestionBank(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	folder := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "ingest", "testdata", "bank.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "bank.csv"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"ZHISOU_STORE": store})
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-collection", "kb", folder}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-k", "1", "干粉灭火器"}, env, &out, &errOut); err != nil {
		t.Fatalf("search: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"bank > 消防安全", "D. 火焰根部", "\n   答案：D\n", "解析：对准火焰根部喷射"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("search(干粉灭火器) output:\n%s\nwant it to contain %q", out.String(), want)
		}
	}
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-k", "1", "-json", "干粉灭火器"}, env, &out, &errOut); err != nil {
		t.Fatalf("search -json: %v\n%s", err, errOut.String())
	}
	var res struct {
		Hits []hitView `json:"hits"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("search -json output %q: %v", out.String(), err)
	}
	if len(res.Hits) != 1 || res.Hits[0].Question == nil || res.Hits[0].Question.Answer != "D" || len(res.Hits[0].Question.Options) != 4 {
		t.Errorf("search -json (干粉灭火器) hits = %+v, want the question with answer D and 4 options", res.Hits)
	}
}

// TestSearchExplain checks that 'zhisou search -explain' prints each hit's
// evidence, that -mode picks one source, and that bad modes and weights are
// refused with the flag named.
func TestSearchExplain(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	env := envOf(map[string]string{"ZHISOU_STORE": store})
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-collection", "kb", "../../testdata/courses/safety"}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-k", "3", "-explain", "有限空间作业"}, env, &out, &errOut); err != nil {
		t.Fatalf("search -explain: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"evidence: fused rank 1, found by bm25", "     bm25     rank 1, score ", "     matched  "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("search -explain output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runT(t, []string{"search", "-collection", "kb", "-k", "3", "-mode", "outline", "-json", "事故报告"}, env, &out, &errOut); err != nil {
		t.Fatalf("search -mode outline: %v\n%s", err, errOut.String())
	}
	var res struct {
		Hits []hitView `json:"hits"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 {
		t.Fatal("search -mode outline 事故报告: no hits")
	}
	for _, h := range res.Hits {
		if h.Evidence == nil || !slices.Equal(h.Evidence.Sources, []string{"outline"}) || len(h.Evidence.OutlinePath) == 0 {
			t.Errorf("-mode outline hit %s evidence %+v, want the outline alone with its section", h.ChunkID, h.Evidence)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "vector"}, `mode "vector"`},
		{[]string{"-w-graph", "-1"}, "fusion weight graph -1"},
		{[]string{"-w-bm25", "NaN"}, "fusion weight bm25 NaN"},
	} {
		err := runT(t, append(append([]string{"search", "-collection", "kb"}, tt.args...), "事故"), env, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("search %v = %v, want an error naming %q", tt.args, err, tt.want)
		}
	}
}

// TestHelpListsIngestFormats: 'zhisou help' names every extension ingest
// reads, taken from ingest's own refusal of an unknown one.
func TestHelpListsIngestFormats(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"notes.zzz": []byte("x")})
	_, failed, err := ingest.ReadAll([]string{dir}, 1<<20)
	if err != nil || len(failed) != 1 {
		t.Fatalf("ingest.ReadAll(a .zzz file) = %v, %v; want one failure", failed, err)
	}
	_, list, ok := strings.Cut(failed[0].Error(), "(reads ")
	if !ok {
		t.Fatalf("ingest's refusal %q does not list what it reads", failed[0])
	}
	exts := strings.Split(strings.TrimSuffix(list, ")"), ", ")
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"help"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(out.String(), func(r rune) bool { return r != '.' && (r < 'a' || r > 'z') }) {
		words[w] = true
	}
	for _, ext := range exts {
		if !words[ext] {
			t.Errorf("zhisou help does not name %s, which ingest reads:\n%s", ext, out.String())
		}
	}
	if len(exts) < 14 {
		t.Errorf("ingest lists %d extensions (%q), want at least 14", len(exts), exts)
	}
}
