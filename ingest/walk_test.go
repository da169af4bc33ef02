package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/index/store/storetest"
)

// fakeSink is a Sink that keeps inputs in memory and records what it was
// asked to do.
type fakeSink struct {
	mu      sync.Mutex
	docs    map[string]map[string]Input // collection → id → input
	deleted []string
	upserts int // calls to Upsert
	// reject fails any batch holding one of these ids, as Local fails a batch
	// with an input it cannot build.
	reject map[string]error
	// err fails every call.
	err error
}

func newFakeSink() *fakeSink { return &fakeSink{docs: map[string]map[string]Input{}} }

func (f *fakeSink) Upsert(ctx context.Context, collection string, ins []Input) ([]index.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upserts++
	if f.err != nil {
		return nil, f.err
	}
	for _, in := range ins {
		if err := f.reject[in.ID]; err != nil {
			return nil, fmt.Errorf("document %q: %w", in.ID, err)
		}
	}
	c := f.docs[collection]
	if c == nil {
		c = map[string]Input{}
		f.docs[collection] = c
	}
	outs := make([]index.Outcome, len(ins))
	for i, in := range ins {
		old, ok := c[in.ID]
		switch {
		case !ok:
			outs[i] = index.Added
		case cmp.Equal(old, in):
			outs[i] = index.Unchanged
		default:
			outs[i] = index.Updated
		}
		c[in.ID] = in
	}
	return outs, nil
}

func (f *fakeSink) Delete(ctx context.Context, collection string, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.deleted = append(f.deleted, ids...)
	for _, id := range ids {
		delete(f.docs[collection], id)
	}
	return nil
}

func (f *fakeSink) DocumentSources(ctx context.Context, collection string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]string{}
	for id, in := range f.docs[collection] {
		out[id] = in.Source
	}
	return out, nil
}

// newStore opens a store in a temporary directory with the collection "c".
func newStore(t *testing.T) *store.Store {
	t.Helper()
	return storetest.WithCollections(t, "c")
}

// writeFiles writes files (path relative to root → content), making folders.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func gbk(t *testing.T, s string) string {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testMaxFileSize = 8 << 10

// corpusFolder builds the folder that the Run tests ingest. It returns the
// folder; outside is a second folder that a symlink escapes to.
func corpusFolder(t *testing.T) string {
	t.Helper()
	root, outside := t.TempDir(), t.TempDir()
	writeFiles(t, outside, map[string]string{"outside.md": "# 外部文件\n不应被读取。"})
	writeFiles(t, root, map[string]string{
		"guide/a.md":          "# 指南A\n## 第一章 总则\n员工应当遵守公司制度。\n",
		"guide/deep/b.md":     "# 深层B\n一、范围\n适用于全体员工。\n",
		"top.md":              "顶层文档，没有标题。\n",
		"gbk.txt":             gbk(t, "第一章 总则\n第一条 员工应当遵守公司制度。\n"),
		"bad/binary.md":       "\x00\x01\x02\x03binary data",
		"empty.txt":           "",
		"image.png":           "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
		"big.txt":             strings.Repeat("很长的文件。", testMaxFileSize/18+1),
		"corpus/qa.jsonl":     `{"id":"q1","title":"请假","text":"请假须提前申请。"}` + "\n" + `{"id":"q2","title":"报销","text":"报销须附发票。"}` + "\n\n" + `{"id":"q3","text":"加班须经批准。"}` + "\n",
		"corpus/broken.jsonl": `{"id":"x1","text":"好。"}` + "\n{oops\n",
		".git/config.md":      "# 隐藏\n不应被读取。",
		".hidden.md":          "# 隐藏\n不应被读取。",
		"guide/.cache/c.md":   "# 隐藏\n不应被读取。",
	})
	if err := os.Symlink(filepath.Join(outside, "outside.md"), filepath.Join(root, "escape.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("guide", "a.md"), filepath.Join(root, "inside.md")); err != nil {
		t.Fatal(err)
	}
	return root
}

// summary is a Report with paths relative to the folder and errors named by
// the sentinel they match ("error" for none).
type summary struct {
	Files, Added, Updated, Unchanged, Stale, Deleted int
	Skipped, Failed                                  []string
}

var sentinels = []struct {
	name string
	err  error
}{
	{"ErrEmpty", ErrEmpty}, {"ErrBinary", ErrBinary}, {"ErrTooLarge", ErrTooLarge},
	{"ErrUnsupported", ErrUnsupported}, {"ErrEscapes", ErrEscapes},
}

func summarize(t *testing.T, root string, rep Report) summary {
	t.Helper()
	name := func(fe FileError) string {
		rel, err := filepath.Rel(root, fe.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sentinels {
			if errors.Is(fe.Err, s.err) {
				return filepath.ToSlash(rel) + ": " + s.name
			}
		}
		return filepath.ToSlash(rel) + ": error"
	}
	s := summary{Files: rep.Files, Added: rep.Added, Updated: rep.Updated, Unchanged: rep.Unchanged, Stale: rep.Stale, Deleted: rep.Deleted}
	for _, fe := range rep.Skipped {
		s.Skipped = append(s.Skipped, name(fe))
	}
	for _, fe := range rep.Failed {
		s.Failed = append(s.Failed, name(fe))
	}
	return s
}

// sources lists the sink's documents as id → source relative to root (or the
// source itself when it is not under root).
func sources(t *testing.T, sink Sink, collection, root string) map[string]string {
	t.Helper()
	src, err := sink.DocumentSources(t.Context(), collection)
	if err != nil {
		t.Fatalf("DocumentSources: %v", err)
	}
	out := map[string]string{}
	for id, s := range src {
		if rel, err := filepath.Rel(root, s); err == nil && !strings.HasPrefix(rel, "..") {
			s = filepath.ToSlash(rel)
		}
		out[id] = s
	}
	return out
}

var (
	// An empty file is skipped (with its reason), not a failed run.
	wantSkipped = []string{"empty.txt: ErrEmpty", "image.png: ErrUnsupported"}
	wantFailed  = []string{
		"bad/binary.md: ErrBinary",
		"big.txt: ErrTooLarge",
		"corpus/broken.jsonl: error",
		"escape.md: ErrEscapes",
	}
	wantSources = map[string]string{
		"guide/a":      "guide/a.md",
		"guide/deep/b": "guide/deep/b.md",
		"top":          "top.md",
		"gbk":          "gbk.txt",
		"inside":       "inside.md",
		"q1":           "corpus/qa.jsonl",
		"q2":           "corpus/qa.jsonl",
		"q3":           "corpus/qa.jsonl",
	}
)

// runScenario runs the folder through a sink three times: a first run, a run
// with nothing changed, and a pruning run after one file was deleted and two
// became corrupt.
func runScenario(t *testing.T, sink Sink, collection string, opts Options) (root string) {
	ctx := t.Context()
	root = corpusFolder(t)
	opts.Collection = collection
	opts.MaxFileSize = testMaxFileSize
	var progress [][2]int
	opts.Progress = func(done, total int) { progress = append(progress, [2]int{done, total}) }

	rep, err := Run(ctx, sink, []string{root}, opts)
	if err != nil {
		t.Fatalf("Run(%q) error = %v, want nil", root, err)
	}
	want := summary{Files: 12, Added: 8, Skipped: wantSkipped, Failed: wantFailed}
	if diff := cmp.Diff(want, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(%q) first report mismatch (-want +got):\n%s", root, diff)
	}
	for _, fe := range rep.Failed {
		if strings.HasSuffix(fe.Path, "broken.jsonl") && !strings.Contains(fe.Error(), "line 2:") {
			t.Errorf("Run(%q) failure %q, want it to name line 2", root, fe.Error())
		}
	}
	if len(progress) != 12 || progress[11] != [2]int{12, 12} {
		t.Errorf("Run(%q) progress = %v, want 12 calls ending with [12 12]", root, progress)
	}
	if diff := cmp.Diff(wantSources, sources(t, sink, collection, root)); diff != "" {
		t.Errorf("Run(%q) documents mismatch (-want +got):\n%s", root, diff)
	}

	// Nothing changed: everything is unchanged.
	rep, err = Run(ctx, sink, []string{root}, opts)
	if err != nil {
		t.Fatalf("Run(%q) second error = %v, want nil", root, err)
	}
	want = summary{Files: 12, Unchanged: 8, Skipped: wantSkipped, Failed: wantFailed}
	if diff := cmp.Diff(want, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(%q) second report mismatch (-want +got):\n%s", root, diff)
	}

	// Delete one file; corrupt a Markdown file and the corpus. Prune deletes
	// the deleted file's document only, and nothing from outside the folder.
	if _, err := sink.Upsert(ctx, collection, []Input{{ID: "elsewhere", Source: "/elsewhere/x.md", Content: "别处的文档。"}}); err != nil {
		t.Fatalf("Upsert(elsewhere): %v", err)
	}
	if err := os.Remove(filepath.Join(root, "guide", "deep", "b.md")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, map[string]string{
		"top.md":          "\x00\x00corrupt",
		"corpus/qa.jsonl": `{"id":"q1","title":"请假","text":"请假须提前申请。"}` + "\n{not json\n",
	})
	opts.Prune = true
	rep, err = Run(ctx, sink, []string{root}, opts)
	if err != nil {
		t.Fatalf("Run(%q) pruning error = %v, want nil", root, err)
	}
	want = summary{
		Files: 11, Unchanged: 3, Deleted: 1, Skipped: wantSkipped,
		Failed: []string{
			"bad/binary.md: ErrBinary",
			"big.txt: ErrTooLarge",
			"corpus/broken.jsonl: error",
			"corpus/qa.jsonl: error",
			"escape.md: ErrEscapes",
			"top.md: ErrBinary",
		},
	}
	if diff := cmp.Diff(want, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(%q) pruning report mismatch (-want +got):\n%s", root, diff)
	}
	wantLeft := maps.Clone(wantSources)
	delete(wantLeft, "guide/deep/b")
	wantLeft["elsewhere"] = "/elsewhere/x.md"
	if diff := cmp.Diff(wantLeft, sources(t, sink, collection, root)); diff != "" {
		t.Errorf("Run(%q) documents after pruning mismatch (-want +got):\n%s", root, diff)
	}
	return root
}

func TestRunFakeSink(t *testing.T) {
	for _, batch := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			sink := newFakeSink()
			root := runScenario(t, sink, "kb", Options{BatchSize: batch})
			if want := []string{"guide/deep/b"}; !cmp.Equal(sink.deleted, want) {
				t.Errorf("Run(%q) deleted %q, want %q", root, sink.deleted, want)
			}
			// What the sink received for each file.
			type got struct {
				Title, Content string
				Format         Format
				Metadata       map[string]string
			}
			want := map[string]got{
				"guide/a": {Content: "# 指南A\n## 第一章 总则\n员工应当遵守公司制度。\n", Format: Markdown, Metadata: map[string]string{"folder": "guide"}},
				"inside":  {Content: "# 指南A\n## 第一章 总则\n员工应当遵守公司制度。\n", Format: Markdown},
				"gbk":     {Content: "第一章 总则\n第一条 员工应当遵守公司制度。\n", Format: Text},
				"q1":      {Title: "请假", Content: "请假须提前申请。", Format: Text},
			}
			for id, w := range want {
				in := sink.docs["kb"][id]
				if diff := cmp.Diff(w, got{in.Title, in.Content, in.Format, in.Metadata}); diff != "" {
					t.Errorf("Run(%q) input %q mismatch (-want +got):\n%s", root, id, diff)
				}
			}
		})
	}
}

func TestRunLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the segmentation dictionary")
	}
	st := newStore(t)
	sink := Local{Store: st}
	root := runScenario(t, sink, "c", Options{})

	ctx := t.Context()
	d, err := st.Document(ctx, "c", "guide/a")
	if err != nil {
		t.Fatalf("Document(%q) error = %v", "guide/a", err)
	}
	type doc struct {
		Title, Source string
		Metadata      map[string]string
		Chunks        []chunkView
	}
	want := doc{
		Title: "指南A", Source: filepath.Join(root, "guide", "a.md"), Metadata: map[string]string{"folder": "guide"},
		Chunks: []chunkView{{path("指南A", "第一章 总则"), "员工应当遵守公司制度。"}},
	}
	if diff := cmp.Diff(want, doc{d.Title, d.Source, d.Metadata, chunksOf(d)}); diff != "" {
		t.Errorf("Document(%q) mismatch (-want +got):\n%s", "guide/a", diff)
	}
	// The corrupt files kept their documents as they were.
	for _, id := range []string{"top", "q2", "q3"} {
		if _, err := st.Document(ctx, "c", id); err != nil {
			t.Errorf("Document(%q) error = %v, want the document kept", id, err)
		}
	}
	if _, err := st.Document(ctx, "c", "guide/deep/b"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("Document(%q) error = %v, want %v", "guide/deep/b", err, index.ErrNotFound)
	}

	// A collection that does not exist fails the run, not a file.
	if _, err := Run(ctx, sink, []string{root}, Options{Collection: "nope"}); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("Run(%q) into a missing collection error = %v, want %v", root, err, index.ErrNotFound)
	}
}

// TestRunLocalBadInput checks that an input Local cannot build fails alone:
// the batch is retried one input at a time.
func TestRunLocalBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the segmentation dictionary")
	}
	st := newStore(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"a.md":         "# 甲\n正文。",
		"corpus.jsonl": `{"id":"t1","title":"只有标题"}` + "\n" + `{"id":"t2","text":"有正文。"}`,
		"z.md":         "# 乙\n正文。",
	})
	rep, err := Run(t.Context(), Local{Store: st}, []string{root}, Options{Collection: "c"})
	if err != nil {
		t.Fatalf("Run(%q) error = %v, want nil", root, err)
	}
	want := summary{Files: 3, Added: 3, Failed: []string{"corpus.jsonl: ErrEmpty"}}
	if diff := cmp.Diff(want, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(%q) report mismatch (-want +got):\n%s", root, diff)
	}
}

func TestRunRejectedInput(t *testing.T) {
	errBad := errors.New("bad input")
	for _, batch := range []int{1, 64} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"a.md": "甲。", "b.md": "乙。", "c.md": "丙。"})
			sink := newFakeSink()
			sink.reject = map[string]error{"b": errBad}
			rep, err := Run(t.Context(), sink, []string{root}, Options{BatchSize: batch})
			if err != nil {
				t.Fatalf("Run(%q) error = %v, want nil", root, err)
			}
			want := summary{Files: 3, Added: 2, Failed: []string{"b.md: error"}}
			if diff := cmp.Diff(want, summarize(t, root, rep)); diff != "" {
				t.Errorf("Run(%q) report mismatch (-want +got):\n%s", root, diff)
			}
			if len(rep.Failed) != 1 || !errors.Is(rep.Failed[0].Err, errBad) {
				t.Errorf("Run(%q).Failed = %v, want the sink's error", root, rep.Failed)
			}
			if diff := cmp.Diff(map[string]string{"a": "a.md", "c": "c.md"}, sources(t, sink, "default", root)); diff != "" {
				t.Errorf("Run(%q) documents mismatch (-want +got):\n%s", root, diff)
			}
		})
	}
}

func TestRunSinkFailure(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.md": "甲。", "b.md": "乙。", "c.md": "丙。", "d.md": "丁。", "e.md": "戊。"})
	tests := []struct {
		name    string
		sinkErr error
		cancel  bool
		want    error
	}{
		{name: "unavailable", sinkErr: fmt.Errorf("dial: %w", ErrSinkUnavailable), want: ErrSinkUnavailable},
		{name: "deadline", sinkErr: context.DeadlineExceeded, want: context.DeadlineExceeded},
		// A store out of disk: every later batch would fail the same way.
		{name: "no space", sinkErr: fmt.Errorf("append to log: %w", index.ErrNoSpace), want: index.ErrNoSpace},
		{name: "cancelled", cancel: true, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newFakeSink()
			sink.err = tt.sinkErr
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			_, err := Run(ctx, sink, []string{root}, Options{BatchSize: 1})
			if !errors.Is(err, tt.want) {
				t.Errorf("Run(%q) error = %v, want %v", root, err, tt.want)
			}
			// Batches are written writeDepth at a time: the run stops at the
			// sink's failure, once the batches already sent return.
			if tt.sinkErr != nil && (sink.upserts < 1 || sink.upserts > writeDepth) {
				t.Errorf("Run(%q) called Upsert %d times, want 1 to %d (stop at the sink's failure)", root, sink.upserts, writeDepth)
			}
		})
	}

	// Prune fails when the sink cannot list its documents.
	sink := newFakeSink()
	if _, err := Run(t.Context(), sink, []string{root}, Options{}); err != nil {
		t.Fatal(err)
	}
	sink.err = ErrSinkUnavailable
	if _, err := prune(t.Context(), sink, "default", map[string]bool{root: true}, nil, nil); !errors.Is(err, ErrSinkUnavailable) {
		t.Errorf("prune() error = %v, want %v", err, ErrSinkUnavailable)
	}
}

func TestRunPaths(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"docs/a.md": "甲。", "docs/sub/b.txt": "乙。", "other/c.md": "丙。"})
	sink := newFakeSink()
	// A single file: its id is its name; its folder is not pruned.
	file := filepath.Join(root, "docs", "sub", "b.txt")
	rep, err := Run(t.Context(), sink, []string{file}, Options{Prune: true})
	if err != nil {
		t.Fatalf("Run(%q) error = %v, want nil", file, err)
	}
	if diff := cmp.Diff(summary{Files: 1, Added: 1}, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(%q) report mismatch (-want +got):\n%s", file, diff)
	}
	if diff := cmp.Diff(map[string]string{"b": "docs/sub/b.txt"}, sources(t, sink, "default", root)); diff != "" {
		t.Errorf("Run(%q) documents mismatch (-want +got):\n%s", file, diff)
	}
	// Two folders: ids are relative to each. Prune looks under both, where
	// the file now has the id "sub/b", so "b" is deleted.
	rep, err = Run(t.Context(), sink, []string{filepath.Join(root, "docs"), filepath.Join(root, "other")}, Options{Prune: true})
	if err != nil {
		t.Fatalf("Run(docs, other) error = %v, want nil", err)
	}
	if diff := cmp.Diff(summary{Files: 3, Added: 3, Deleted: 1}, summarize(t, root, rep)); diff != "" {
		t.Errorf("Run(docs, other) report mismatch (-want +got):\n%s", diff)
	}
	want := map[string]string{"a": "docs/a.md", "sub/b": "docs/sub/b.txt", "c": "other/c.md"}
	if diff := cmp.Diff(want, sources(t, sink, "default", root)); diff != "" {
		t.Errorf("Run(docs, other) documents mismatch (-want +got):\n%s", diff)
	}
	// A path that does not exist fails the run.
	missing := filepath.Join(root, "missing")
	if _, err := Run(t.Context(), sink, []string{missing}, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run(%q) error = %v, want %v", missing, err, os.ErrNotExist)
	}
}

func TestReadAll(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"a.md":      "# 甲\n正文。",
		"b.txt":     "乙。",
		"c.jsonl":   `{"id":"c1","text":"丙。"}`,
		"d.png":     "png",
		"e.md":      "",
		"f.MD":      "大写扩展名。",
		"g.text":    "丁。",
		"h.markdwn": "拼错的扩展名。",
	})
	ins, failed, err := ReadAll([]string{root}, 0)
	if err != nil {
		t.Fatalf("ReadAll(%q) error = %v, want nil", root, err)
	}
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	if want := []string{"a", "b", "c1", "f", "g"}; !cmp.Equal(ids, want) {
		t.Errorf("ReadAll(%q) ids = %q, want %q", root, ids, want)
	}
	got := summarize(t, root, Report{Failed: failed}).Failed
	if want := []string{"d.png: ErrUnsupported", "e.md: ErrEmpty", "h.markdwn: ErrUnsupported"}; !cmp.Equal(got, want) {
		t.Errorf("ReadAll(%q) failed = %q, want %q", root, got, want)
	}
}

func TestDocID(t *testing.T) {
	root := filepath.FromSlash("/data/kb")
	tests := []struct {
		path, want string
	}{
		{"/data/kb/a.md", "a"},
		{"/data/kb/sub/a.md", "sub/a"},
		{"/data/kb/sales/02-price-objection.markdown", "sales/02-price-objection"},
		{"/data/kb/v1.2/notes.v3.txt", "v1.2/notes.v3"},
		{"/data/kb/noext", "noext"},
	}
	for _, tt := range tests {
		if got := docID(root, filepath.FromSlash(tt.path)); got != tt.want {
			t.Errorf("docID(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestPruneKeepsFailedSources(t *testing.T) {
	root := filepath.FromSlash("/data/kb")
	sink := newFakeSink()
	sink.docs["c"] = map[string]Input{}
	for id, src := range map[string]string{
		"seen":        "/data/kb/seen.md",
		"gone":        "/data/kb/gone.md",
		"q1":          "/data/kb/corpus.jsonl",
		"under":       "/data/kb/unreadable/x.md",
		"prefix":      "/data/kb-other/x.md",
		"outside":     "/elsewhere/y.md",
		"unreadable2": "/data/kb/unreadable2.md",
	} {
		sink.docs["c"][id] = Input{ID: id, Source: filepath.FromSlash(src)}
	}
	failed := []FileError{
		{Path: filepath.FromSlash("/data/kb/corpus.jsonl"), Err: ErrBinary},
		{Path: filepath.FromSlash("/data/kb/unreadable"), Err: os.ErrPermission},
	}
	n, err := prune(t.Context(), sink, "c", map[string]bool{root: true}, map[string]bool{"seen": true}, failed)
	if err != nil {
		t.Fatalf("prune() error = %v, want nil", err)
	}
	want := []string{"gone", "unreadable2"}
	slices.Sort(sink.deleted)
	if n != len(want) || !cmp.Equal(sink.deleted, want) {
		t.Errorf("prune() = %d, deleted %q, want %d, %q", n, sink.deleted, len(want), want)
	}
}

func TestRunIDCollisionAndBOM(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.md":         "# A\n\nMarkdown 版本。",
		"a.txt":        "文本版本。",
		"corpus.jsonl": "\xef\xbb\xbf{\"id\":\"c1\",\"title\":\"标题\",\"text\":\"带 BOM 的语料。\"}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sink := &collisionSink{}
	rep, err := Run(t.Context(), sink, []string{dir}, Options{Collection: "c"})
	if err != nil {
		t.Fatal(err)
	}
	// a.md and a.txt would both be document "a": the later one in walk
	// order gets its extension, a.txt, instead of failing.
	slices.Sort(sink.ids)
	if rep.Added != 3 || len(rep.Failed) != 0 || !slices.Equal(sink.ids, []string{"a", "a.txt", "c1"}) {
		t.Errorf("Run = added %d %v, failed %v; want a, a.txt and c1 added", rep.Added, sink.ids, rep.Failed)
	}
}

// collisionSink records upserts and says every input is new.
type collisionSink struct{ ids []string }

func (s *collisionSink) Upsert(_ context.Context, _ string, ins []Input) ([]index.Outcome, error) {
	out := make([]index.Outcome, len(ins))
	for i, in := range ins {
		s.ids = append(s.ids, in.ID)
		out[i] = index.Added
	}
	return out, nil
}
func (s *collisionSink) Delete(context.Context, string, []string) error { return nil }
func (s *collisionSink) DocumentSources(context.Context, string) (map[string]string, error) {
	return map[string]string{}, nil
}

// slowSink delays the batches holding a document whose text has slow in it,
// so that a later batch would overtake it if nothing kept the order.
type slowSink struct {
	*fakeSink
	slow string
}

func (s slowSink) Upsert(ctx context.Context, collection string, ins []Input) ([]index.Outcome, error) {
	for _, in := range ins {
		if strings.Contains(in.Content, s.slow) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return s.fakeSink.Upsert(ctx, collection, ins)
}

// TestBatchWriterLaterWriteWins: batches are written two at a time, but of
// two batches holding the same document the later one is written last, even
// when the earlier write is slow. (Run itself never sends a document twice:
// ids are claimed once per run, and a corpus file refuses a repeated id.)
func TestBatchWriterLaterWriteWins(t *testing.T) {
	sink := slowSink{newFakeSink(), "慢"}
	w := newBatchWriter(t.Context(), sink, "default", writeDepth)
	for _, b := range [][]Input{
		{{ID: "x", Content: "慢的旧文本。"}},
		{{ID: "y", Content: "别的。"}},
		{{ID: "x", Content: "新文本。"}},
	} {
		if err := w.send(b); err != nil {
			t.Fatal(err)
		}
	}
	var rep Report
	if err := w.wait(&rep); err != nil {
		t.Fatal(err)
	}
	if got := sink.docs["default"]["x"].Content; got != "新文本。" {
		t.Errorf("document x holds %q, want the later batch's text", got)
	}
	if rep.Added != 2 || rep.Updated != 1 {
		t.Errorf("added %d, updated %d, want 2 and 1", rep.Added, rep.Updated)
	}
}

// TestRunStreamsCorpus: a corpus file is written as it is read, a batch at a
// time, so it may be larger than MaxFileSize (which bounds files read whole).
func TestRunStreamsCorpus(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	var text int64
	for i := range 50 {
		title, body := fmt.Sprintf("第%d条", i), "劳动者依法享有休息休假的权利。"
		fmt.Fprintf(&b, `{"id":"d%02d","title":%q,"text":%q}`+"\n", i, title, body)
		text += int64(len(body))
	}
	writeFiles(t, root, map[string]string{"big.jsonl": b.String(), "small.md": "小。"})
	sink := newFakeSink()
	rep, err := Run(t.Context(), sink, []string{root}, Options{MaxFileSize: 100, BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 51 || len(rep.Failed) != 0 {
		t.Errorf("added %d, failed %v; want 51 and none", rep.Added, rep.Failed)
	}
	if got := rep.Formats["jsonl"].TextBytes; got != text {
		t.Errorf("the corpus's text counted %d bytes, want %d", got, text)
	}
	if sink.upserts < 7 {
		t.Errorf("%d upserts for 51 documents in batches of 8: the corpus was not written a batch at a time", sink.upserts)
	}
}

// TestWrite: inputs already read are written in the batches Run makes; an
// input the sink refuses is reported and the others are written.
func TestWrite(t *testing.T) {
	var ins []Input
	for i := range 25 {
		ins = append(ins, Input{ID: fmt.Sprintf("d%02d", i), Source: "mem", Content: "正文。"})
	}
	sink := newFakeSink()
	sink.reject = map[string]error{"d13": errors.New("cannot build")}
	rep, err := Write(t.Context(), sink, ins, Options{Collection: "c", BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 24 || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Error(), "cannot build") {
		t.Errorf("added %d, failed %v; want 24 and d13's", rep.Added, rep.Failed)
	}
	if len(sink.docs["c"]) != 24 {
		t.Errorf("the sink holds %d documents, want 24", len(sink.docs["c"]))
	}
}

// busySink refuses the first busy calls as a server over its write budget
// does, then takes everything.
type busySink struct {
	*fakeSink
	busy int
}

func (s *busySink) Upsert(ctx context.Context, collection string, ins []Input) ([]index.Outcome, error) {
	s.mu.Lock()
	if s.busy > 0 {
		s.busy--
		s.upserts++
		s.mu.Unlock()
		return nil, fmt.Errorf("server: %w", ErrSinkBusy)
	}
	s.mu.Unlock()
	return s.fakeSink.Upsert(ctx, collection, ins)
}

// TestRunBusySink: a batch a busy sink refuses is sent again after a pause,
// and written once the sink takes it; a sink busy for good stops the run
// with its error after the last pause, and no file is reported as bad.
func TestRunBusySink(t *testing.T) {
	defer func(w []time.Duration) { busyWaits = w }(busyWaits)
	busyWaits = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.md": "甲。", "b.md": "乙。"})

	sink := &busySink{fakeSink: newFakeSink(), busy: 2}
	rep, err := Run(t.Context(), sink, []string{root}, Options{})
	if err != nil || rep.Added != 2 || len(rep.Failed) != 0 {
		t.Fatalf("Run = added %d, failed %v, %v; want both added once the sink takes them", rep.Added, rep.Failed, err)
	}
	if sink.upserts != 3 {
		t.Errorf("%d calls, want 3 (two refused, one taken)", sink.upserts)
	}

	sink = &busySink{fakeSink: newFakeSink(), busy: 1000}
	rep, err = Run(t.Context(), sink, []string{root}, Options{})
	if !errors.Is(err, ErrSinkBusy) || len(rep.Failed) != 0 {
		t.Fatalf("Run on a sink busy for good = failed %v, %v; want ErrSinkBusy and no file blamed", rep.Failed, err)
	}
	if want := len(busyWaits) + 1; sink.upserts != want {
		t.Errorf("%d calls, want %d (the first and one after each pause)", sink.upserts, want)
	}
}
