package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

const lawCorpus = `{"id": "labour", "title": "劳动合同法第三十八条", "text": "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"}
{"id": "injury", "title": "工伤保险条例第十四条", "text": "职工因工作原因受到事故伤害的，应当认定为工伤。"}
{"id": "lease", "title": "民法典第七百零三条", "text": "租赁期限届满，出租人应当返还承租人交付的押金。"}
`

func TestLearnCommand(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	writeFiles(t, dir, map[string][]byte{
		"corpus.jsonl": []byte(lawCorpus),
		"pairs.jsonl": []byte(`{"question": "老板不给钱怎么办", "doc_id": "labour"}
{"question": "老板拖欠工资", "doc_id": "labour"}
this is not json
{"question": "房东不退押金", "doc_id": "lease", "chunk_id": "x"}
{"question": "房东扣押金", "doc_id": "nope"}
{"question": "钱", "doc_id": "labour"}

{"question": "干活受伤谁来赔", "doc_id": "injury"}
`),
		"set/queries.jsonl": []byte(`{"id": "1", "text": "上班摔伤算工伤吗"}
{"id": "2", "text": "押金不退怎么办"}
`),
		"set/qrels.tsv": []byte("1\tinjury\t1\n2\tlease\t1\n2\tlabour\t0\n3\tlease\t1\n"),
	})
	env := envOf(nil)
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-store", storeDir, "-collection", "law", filepath.Join(dir, "corpus.jsonl")}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if err := runT(t, []string{"learn", "-store", storeDir, "-collection", "law", filepath.Join(dir, "pairs.jsonl")}, env, &out, &errOut); err != nil {
		t.Fatalf("learn: %v\n%s", err, errOut.String())
	}
	if want := "learned 3 pairs into law (2 refused, 2 lines not pairs)"; !strings.Contains(out.String(), want) {
		t.Errorf("learn printed %q, want %q", out.String(), want)
	}
	for _, want := range []string{"pairs.jsonl:3: not a JSON pair", "pairs.jsonl:4: both chunk_id and doc_id", `pairs.jsonl:5: no chunk or document "nope"`, "pairs.jsonl:6: question \"钱\" is one character"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("learn reported %q, want it to say %q", errOut.String(), want)
		}
	}
	out.Reset()
	if err := runT(t, []string{"learn", "-store", storeDir, "-collection", "law", "-info"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "law: 3 pairs, 3 questions") {
		t.Errorf("learn -info = %v, %q", err, out.String())
	}
	// An eval folder, replacing: relevance 0 is not a pair, an unknown
	// query is reported by its qrels line.
	out.Reset()
	errOut.Reset()
	if err := runT(t, []string{"learn", "-store", storeDir, "-collection", "law", "-replace", filepath.Join(dir, "set")}, env, &out, &errOut); err != nil {
		t.Fatalf("learn an eval folder: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "learned 2 pairs into law (0 refused, 1 lines not pairs); model: 2 pairs") || !strings.Contains(errOut.String(), `qrels.tsv:4: query "3" is not in queries.jsonl`) {
		t.Errorf("learn an eval folder printed %q, %q", out.String(), errOut.String())
	}
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"learn", "-store", storeDir, "-collection", "law"}, "want one pairs file"},
		{[]string{"learn", "-store", storeDir, "-collection", "law", "-info", "x"}, "-info takes no file"},
		{[]string{"learn", "-store", storeDir, "-collection", "law", filepath.Join(dir, "none.jsonl")}, "none.jsonl"},
		{[]string{"learn", "-store", storeDir, "-collection", "nope", filepath.Join(dir, "pairs.jsonl")}, "not found"},
		{[]string{"learn", "-addr", "127.0.0.1:1", "-info"}, "no zhisou server at 127.0.0.1:1"},
	} {
		if err := runT(t, tt.args, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("zhisou %v = %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
	}

	// Through a server, a file of 2 500 lines goes in batches of 1000 (the
	// server refuses more in one call); the last waits for the model.
	var big strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&big, `{"question": "第%d个问题：老板不给钱怎么办", "doc_id": "labour"}`+"\n", i)
	}
	bigFile := filepath.Join(dir, "big.jsonl")
	if err := os.WriteFile(bigFile, []byte(big.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := grpcapitest.Serve(t, retrieve.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC.Serve(l)
	if _, err := srv.Client.CreateCollection(t.Context(), &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "law"}}); err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := runT(t, []string{"ingest", "-addr", addr, "-collection", "law", filepath.Join(dir, "corpus.jsonl")}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest through the server: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := runT(t, []string{"learn", "-addr", addr, "-collection", "law", bigFile}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "learned 2500 pairs into law (0 refused, 0 lines not pairs); model: 2500 pairs, 2500 questions") {
		t.Errorf("learn through the server = %v, %q", err, out.String())
	}
	out.Reset()
	if err := runT(t, []string{"learn", "-addr", addr, "-collection", "law", "-info"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "law: 2500 pairs") {
		t.Errorf("learn -info through the server = %v, %q", err, out.String())
	}
}
