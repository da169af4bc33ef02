package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// These tests run zhisou as a child process: crash safety under SIGKILL, a
// store held by another process, and concurrent ingests through a server.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the built command after the tests (a 77 MB file each
// run otherwise left in the temporary directory).
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// zhisouBinary builds the command once per test binary.
func zhisouBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zhisou-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "zhisou")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type child struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

// lockedBuffer is a child's stderr: the copying goroutine writes while a
// test reads what the process has said so far.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bytes returns a copy of what was written.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// startServer starts 'zhisou serve' (with extra flags) and waits until its
// health check says SERVING. The HTTP door is off unless extra turns it on.
func startServer(t *testing.T, st, addr string, extra ...string) *child {
	t.Helper()
	c := &child{stderr: &lockedBuffer{}, done: make(chan struct{})}
	args := append([]string{"serve", "-store", st, "-addr", addr, "-log-level", "warn", "-http-addr", ""}, extra...)
	c.cmd = exec.Command(zhisouBinary(t), args...)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill() })
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		c.kill() // stderr is the process's until it has exited
		t.Fatalf("server did not become healthy: %v\n%s", err, c.stderr.String())
	}
	return c
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

func client(t *testing.T, addr string) retrievalv1.RetrievalServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return retrievalv1.NewRetrievalServiceClient(conn)
}

// TestCrashSafety SIGKILLs the server during a large ingest, restarts it, and
// checks that every acknowledged document is present and searchable, that
// nothing half-applied is visible (Badger and bleve hold the same chunks and
// the statistics add up), and that both stores report the same position.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	storeDir := filepath.Join(t.TempDir(), "store")
	addr := freeAddr(t)
	srv := startServer(t, storeDir, addr)
	c := client(t, addr)
	ctx := t.Context()
	if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string
	writerDone := make(chan struct{})
	killAt := 30 // batches acknowledged before the kill
	go func() {
		defer close(writerDone)
		for b := 0; ; b++ {
			var docs []*retrievalv1.Document
			for i := range 20 {
				id := fmt.Sprintf("doc-%04d-%02d", b, i)
				content := fmt.Sprintf("# 课程%d\n\n## 第%d节\n\n编号%s的培训材料：客户异议处理、价格谈判与跟进。第%d批第%d篇。\n\n## 练习\n\n请复述%s的要点。", b, i, id, b, i, id)
				docs = append(docs, &retrievalv1.Document{Id: id, Content: content, Format: retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN})
			}
			_, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: docs})
			if err != nil {
				return // the server died
			}
			mu.Lock()
			for _, d := range docs {
				acked = append(acked, d.GetId())
			}
			n := len(acked)
			mu.Unlock()
			if n == killAt*20 {
				// Kill while the writer goes on with the next batch.
				go srv.cmd.Process.Signal(syscall.SIGKILL)
			}
		}
	}()
	<-writerDone
	<-srv.done
	mu.Lock()
	ackedIDs := append([]string(nil), acked...)
	mu.Unlock()
	if len(ackedIDs) < killAt*20 {
		t.Fatalf("only %d documents acknowledged before the kill; want at least %d\n%s", len(ackedIDs), killAt*20, srv.stderr.String())
	}

	srv2 := startServer(t, storeDir, addr)
	for _, id := range ackedIDs {
		d, err := c.GetDocument(ctx, &retrievalv1.GetDocumentRequest{Collection: "kb", DocumentId: id})
		if err != nil {
			t.Fatalf("acknowledged document %s after restart: %v", id, err)
		}
		if len(d.GetChunks()) == 0 {
			t.Fatalf("acknowledged document %s has no chunks after restart", id)
		}
	}
	for _, id := range []string{ackedIDs[0], ackedIDs[len(ackedIDs)/2], ackedIDs[len(ackedIDs)-1]} {
		res, err := c.Search(ctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "编号" + id + "的培训材料", TopK: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetHits()) == 0 || res.GetHits()[0].GetDocumentId() != id {
			t.Errorf("search for acknowledged %s after restart: %v", id, res.GetHits())
		}
	}
	srv2.cmd.Process.Signal(syscall.SIGTERM) // graceful this time
	<-srv2.done

	s, err := store.Open(ctx, storeDir, indextest.Analyzer(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(ctx, "kb"); err != nil {
		t.Errorf("after crash and restart: %v", err)
	}
	bp, tp, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if tp["kb"] != bp {
		t.Errorf("positions after restart: badger %d, bleve %d; want equal", bp, tp["kb"])
	}
	info, err := s.Collection("kb")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d documents; %d present after the crash (the in-flight batch may or may not have landed)", len(ackedIDs), info.Stats.Docs)
	if n := info.Stats.Docs; n < int64(len(ackedIDs)) || n > int64(len(ackedIDs)+20) {
		t.Errorf("documents after restart = %d, want between %d and %d", n, len(ackedIDs), len(ackedIDs)+20)
	}
}

// TestServerHeldStore: while a server holds the store, opening it directly
// fails with a plain message; sending to the server works; two ingests of the
// same folder at once through the server both succeed and agree.
func TestServerHeldStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	st := filepath.Join(t.TempDir(), "store")
	addr := freeAddr(t)
	startServer(t, st, addr)
	folder := t.TempDir()
	files := map[string][]byte{}
	for i := range 40 {
		files[fmt.Sprintf("lesson-%02d.md", i)] = []byte(fmt.Sprintf("# 第%d课\n\n## 要点\n\n第%d课讲授销售跟进的方法。", i, i))
	}
	writeFiles(t, folder, files)

	var out, errOut bytes.Buffer
	err := runT(t, []string{"ingest", "-store", st, folder}, envOf(nil), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("ingest -store on a held store = %v, want an error saying it is in use by another process", err)
	}
	err = runT(t, []string{"search", "-store", st, "销售"}, envOf(nil), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("search -store on a held store = %v, want an error saying it is in use by another process", err)
	}

	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e bytes.Buffer
			errs[i] = runT(t, []string{"ingest", "-addr", addr, "-quiet", folder}, envOf(nil), &outs[i], &e)
		}()
	}
	wg.Wait()
	added := 0
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("concurrent ingest %d: %v", i, errs[i])
		}
		var n int
		fmt.Sscanf(outs[i].String()[strings.Index(outs[i].String(), "added"):], "added %d", &n)
		added += n
	}
	if added != 40 {
		t.Errorf("two concurrent ingests added %d documents in all, want 40 (each document once)\n%s\n%s", added, outs[0].String(), outs[1].String())
	}
	res, err := client(t, addr).GetCollection(t.Context(), &retrievalv1.GetCollectionRequest{Name: "default"})
	if err != nil || res.GetCollection().GetDocumentCount() != 40 {
		t.Errorf("collection after concurrent ingests = %v, %v; want 40 documents", res, err)
	}
}

// TestServeHTTP: 'zhisou serve -http-addr' answers HTTP/JSON: the demo
// collection searched over HTTP gives the hits gRPC gives, and /readyz says
// it serves.
func TestServeHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped under -short")
	}
	addr, httpAddr := freeAddr(t), freeAddr(t)
	startServer(t, filepath.Join(t.TempDir(), "store"), addr, "-http-addr", httpAddr, "-demo", "../../testdata/courses")
	c := client(t, addr)
	want, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "default", Query: "客户说太贵怎么办", TopK: 5})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+httpAddr+"/v1/collections/default:search", "application/json", strings.NewReader(`{"query":"客户说太贵怎么办","top_k":5}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got retrievalv1.SearchResponse
	if err := protojson.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP search: %d %s (%v)", resp.StatusCode, b, err)
	}
	if len(got.GetHits()) == 0 || len(got.GetHits()) != len(want.GetHits()) || got.GetHits()[0].GetChunkId() != want.GetHits()[0].GetChunkId() {
		t.Errorf("HTTP search gave %d hits, gRPC %d; first %s vs %s", len(got.GetHits()), len(want.GetHits()), got.GetHits()[0].GetChunkId(), want.GetHits()[0].GetChunkId())
	}
	r, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil || r.StatusCode != 200 {
		t.Errorf("/readyz = %v, %v", r, err)
	}
	// Prometheus metrics on the same port, with the store's.
	r, err = http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !regexp.MustCompile(`zhisou_collection_documents\{collection="default"\} 39`).Match(mb) || !strings.Contains(string(mb), "grpc_server_handled_total") {
		t.Errorf("/metrics on the HTTP port: %d, %.300s", r.StatusCode, mb)
	}
	// bench sends the same searches over both doors.
	var out, errOut bytes.Buffer
	err = runT(t, []string{"bench", "-addr", addr, "-http-addr", httpAddr, "-queries", "../../testdata/eval/queries.jsonl",
		"-duration", "300ms", "-warmup", "0", "-concurrency", "2", "-writers", "2", "-write-mb", "0.02", "-ingest-collection", "load"}, envOf(nil), &out, &errOut)
	if err != nil || !regexp.MustCompile(`http-search +[1-9]\d* +0 `).MatchString(out.String()) || !strings.Contains(out.String(), "HTTP/JSON search p50 - gRPC search p50") {
		t.Errorf("bench -http-addr: %v\n%s%s", err, out.String(), errOut.String())
	}
	// and the searches under a write load, with what the writers got.
	if !regexp.MustCompile(`search\+writes +[1-9]`).MatchString(out.String()) || !regexp.MustCompile(`2 writers of 0\.0 MB documents into "load" meanwhile: [1-9]\d* applied`).MatchString(out.String()) {
		t.Errorf("bench -writers: %s%s", out.String(), errOut.String())
	}
}

// TestMCP: an agent's MCP client runs 'zhisou mcp' over stdio against a
// running server and searches; the same tools answer over streamable HTTP
// at the server's /mcp.
func TestMCP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	addr, httpAddr := freeAddr(t), freeAddr(t)
	startServer(t, filepath.Join(t.TempDir(), "store"), addr, "-http-addr", httpAddr, "-demo", "../../testdata/courses")
	for name, tr := range map[string]mcp.Transport{
		"stdio": &mcp.CommandTransport{Command: exec.Command(zhisouBinary(t), "mcp", "-addr", addr)},
		"http":  &mcp.StreamableClientTransport{Endpoint: "http://" + httpAddr + "/mcp"},
	} {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(t.Context(), tr, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"collection": "default", "query": "客户嫌价格太贵怎么办", "top_k": 2}})
		if err != nil || res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "价格") {
			t.Errorf("%s: search = %+v, %v", name, res, err)
		}
		cs.Close()
	}
}

// TestNodeClient: the Node.js example (examples/node, @grpc/grpc-js with the
// proto loaded at run time) searches a running server: the edition 2023
// proto works with the protobuf library Node clients use, and its
// character offsets slice the text. Needs node and 'npm ci' in
// examples/node (.ci/run does both).
func TestNodeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (.ci/run installs it)")
	}
	if _, err := os.Stat("../../examples/node/node_modules/@grpc/grpc-js"); err != nil {
		t.Skip("run 'npm ci' in examples/node first (.ci/run does)")
	}
	addr := freeAddr(t)
	startServer(t, filepath.Join(t.TempDir(), "store"), addr, "-demo", "../../testdata/courses")
	out, err := exec.Command(node, "../../examples/node/search.js", "-addr", addr, "-k", "2", "客户嫌价格太贵怎么办").CombinedOutput()
	if err != nil {
		t.Fatalf("node search.js: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var first struct {
		DocumentID string   `json:"document_id"`
		Highlights []string `json:"highlights"`
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.DocumentID != "sales/02-price-objection" || !slices.Contains(first.Highlights, "太贵") {
		t.Errorf("node search.js printed:\n%s", out)
	}
}

// TestConsoleInBrowser drives the web console in headless Chromium against
// the server binary: search, expand a hit's evidence, open its document's
// outline, upload a DOCX and find it, and show a document whose text holds
// HTML and script as text. With ZHISOU_SCREENSHOTS=1 it saves its
// screenshots into docs/console (as committed); otherwise into a temporary
// directory. Needs Chromium (.ci/run installs Debian's).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped under -short")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	addr, httpAddr := freeAddr(t), freeAddr(t)
	startServer(t, filepath.Join(t.TempDir(), "store"), addr, "-http-addr", httpAddr, "-demo", "../../testdata/courses")
	shots := t.TempDir()
	if os.Getenv("ZHISOU_SCREENSHOTS") == "1" {
		shots = "../../docs/console"
	}
	evil := filepath.Join(t.TempDir(), "evil.md")
	if err := os.WriteFile(evil, []byte("# 注入测试\n\n话术 <img src=x onerror=\"document.title='pwned'\"> 与 <script>document.title='pwned'</script> 原样显示。\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docx, err := filepath.Abs("../../ingest/testdata/libreoffice/03-regulation-operations.docx")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser: no timeout on its context.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+httpAddr+"/")); err != nil {
		t.Fatalf("open the console: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("console: %s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("console: read %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	search := func(q string) {
		t.Helper()
		// Clear the last results, so that the wait below sees the new ones.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('hits').replaceChildren(), true`)); err != nil {
			t.Fatal(err)
		}
		// A click on the button, as a user does (a form's submit() would skip
		// the page's submit handler).
		step("search "+q, chromedp.SetValue(chromedp.CSS(`#query`), q), chromedp.Click(chromedp.CSS(`#search-form button`)),
			chromedp.WaitVisible(chromedp.CSS(`#hits li.hit`)))
	}
	step("collections", chromedp.WaitReady(chromedp.CSS(`#collection option[value="default"]`)))
	search("客户嫌价格太贵怎么办")
	step("highlights", chromedp.WaitVisible(chromedp.CSS(`#hits li.hit mark`)))
	firstHit := text(`#hits li.hit`)
	step("evidence", chromedp.Click(chromedp.CSS(`#hits li.hit .why`)), chromedp.WaitVisible(chromedp.CSS(`#hits li.hit .evidence`)))
	evidence := text(`#hits li.hit .evidence`)
	step("outline", chromedp.Click(chromedp.CSS(`#hits li.hit .open-outline`)), chromedp.WaitVisible(chromedp.CSS(`#outline li`)))
	outline := text(`#outline`)
	shot("search.png")
	step("upload", chromedp.SetUploadFiles(chromedp.CSS(`#files`), []string{docx, evil}), chromedp.Click(chromedp.CSS(`#upload-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#upload-results li`)))
	uploaded := text(`#upload-results`)
	shot("upload.png")
	search("有限空间作业的审批")
	found := text(`#hits`)
	search("注入测试 话术 原样显示")
	evilText := text(`#hits li.hit .hit-text`)
	evilNodes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#hits img, #hits script').length`))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	shot("escaped.png")
	// An eval run's JSON, loaded into the console, drawn as charts.
	var evalOut, evalErr bytes.Buffer
	if err := runT(t, []string{"eval", "-data", "../../testdata/eval", "-corpus", "../../testdata/courses", "-baseline", "bleve", "-json"}, envOf(nil), &evalOut, &evalErr); err != nil {
		t.Fatalf("eval: %v\n%s", err, evalErr.String())
	}
	evalFile := filepath.Join(t.TempDir(), "eval.txt")
	if err := os.WriteFile(evalFile, evalOut.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	step("eval charts", chromedp.SetUploadFiles(chromedp.CSS(`#eval-file`), []string{evalFile}),
		chromedp.WaitReady(chromedp.CSS(`#eval-recall polyline.series-1`)), chromedp.ScrollIntoView(chromedp.CSS(`#eval-pane`)))
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#eval-kinds rect.bar').length`))
	if err != nil {
		t.Fatal(err)
	}
	evalSummary := text(`#eval-summary`)
	shot("eval.png")
	var run struct {
		Zhisou struct {
			ByKind map[string]any `json:"by_kind"`
		} `json:"zhisou"`
	}
	lines := strings.Split(strings.TrimSpace(evalOut.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &run); err != nil || len(run.Zhisou.ByKind) < 2 {
		t.Fatalf("eval -json: %v, %d kinds", err, len(run.Zhisou.ByKind))
	}
	if bars != 2*len(run.Zhisou.ByKind) || !strings.HasPrefix(evalSummary, "zhisou: 93 queries, recall@10 0.9713") || !strings.Contains(evalSummary, "bleve:") {
		t.Errorf("eval charts: %d bars for %d kinds and 2 sides, summary %q", bars, len(run.Zhisou.ByKind), evalSummary)
	}
	checks := []struct {
		what, got, want string
	}{
		{"first hit", firstHit, "价格"},
		{"evidence", evidence, "bm25 rank"},
		{"outline", outline, "第二章 价格异议处理"},
		{"upload results", uploaded, "03-regulation-operations added"},
		{"search after the upload", found, "03-regulation-operations"},
		{"document text with markup", evilText, "<img src=x onerror="},
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s: %q does not contain %q", c.what, c.got, c.want)
		}
	}
	if evilNodes != 0 || title == "pwned" {
		t.Errorf("document text became markup: %d img/script nodes in the hits, title %q", evilNodes, title)
	}
	for _, name := range []string{"search.png", "upload.png", "escaped.png", "eval.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 10_000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
