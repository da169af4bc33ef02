package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/internal/grpcapi/grpcapitest"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

func TestLexiconCommand(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	writeFiles(t, dir, map[string][]byte{
		"course/feedback.md": []byte(grpcapitest.FeedbackMD),
		"course/canteen.md":  []byte(grpcapitest.CanteenMD),
		"good.json":          []byte(`{"terms": ["三明治反馈法", "天枢X9"], "synonyms": [{"term": "汉堡包法", "alternatives": ["三明治反馈法"]}], "stop_words": ["請問"]}`),
		"unknown-field.json": []byte(`{"term": ["x"]}`),
		"not-json.json":      []byte(`terms: x`),
		"bad-entry.json":     []byte(`{"terms": ["ok", ""]}`),
	})
	env := envOf(nil)
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"ingest", "-store", storeDir, "-collection", "kb", filepath.Join(dir, "course")}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut.String())
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for success
		wantOut string
	}{
		{"set", []string{"lexicon", "set", "-store", storeDir, "-collection", "kb", "-file", filepath.Join(dir, "good.json")}, "", "2 terms, 1 synonyms, 1 stop words; 2 chunks re-indexed"},
		{"get", []string{"lexicon", "get", "-store", storeDir, "-collection", "kb"}, "", `"天枢x9"`},
		{"set without -file", []string{"lexicon", "set", "-store", storeDir, "-collection", "kb"}, "-file is required", ""},
		{"missing file", []string{"lexicon", "set", "-store", storeDir, "-file", filepath.Join(dir, "nope.json")}, "nope.json", ""},
		{"unknown field", []string{"lexicon", "set", "-store", storeDir, "-collection", "kb", "-file", filepath.Join(dir, "unknown-field.json")}, `unknown field "term"`, ""},
		{"not JSON", []string{"lexicon", "set", "-store", storeDir, "-collection", "kb", "-file", filepath.Join(dir, "not-json.json")}, "not-json.json: want a JSON lexicon", ""},
		{"bad entry", []string{"lexicon", "set", "-store", storeDir, "-collection", "kb", "-file", filepath.Join(dir, "bad-entry.json")}, "terms[1] is empty", ""},
		{"unknown collection", []string{"lexicon", "get", "-store", storeDir, "-collection", "nope"}, "not found", ""},
		{"extra argument", []string{"lexicon", "get", "-store", storeDir, "x"}, "unexpected argument", ""},
		{"no server", []string{"lexicon", "get", "-addr", "127.0.0.1:1"}, "no zhisou server at 127.0.0.1:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runT(t, tt.args, env, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("zhisou %v = %v, want an error containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("zhisou %v: %v\n%s", tt.args, err, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("zhisou %v printed %q, want it to contain %q", tt.args, out.String(), tt.wantOut)
			}
		})
	}
	// The lexicon printed by get is a valid file for set: setting it again
	// changes nothing.
	out.Reset()
	if err := runT(t, []string{"lexicon", "get", "-store", storeDir, "-collection", "kb"}, env, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	round := filepath.Join(dir, "round.json")
	if err := os.WriteFile(round, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runT(t, []string{"lexicon", "set", "-store", storeDir, "-collection", "kb", "-file", round}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "0 chunks re-indexed") {
		t.Errorf("setting the lexicon get printed = %v, %q; want no change", err, out.String())
	}
	// Through a server: set answers at once with the count, get shows it.
	srv := grpcapitest.Serve(t, retrieve.Options{})
	c, store, gs := srv.Client, srv.Store, srv.GRPC
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(l)
	if _, err := c.CreateCollection(t.Context(), &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := runT(t, []string{"ingest", "-addr", addr, "-collection", "kb", filepath.Join(dir, "course")}, env, &out, &errOut); err != nil {
		t.Fatalf("ingest through the server: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := runT(t, []string{"lexicon", "set", "-addr", addr, "-collection", "kb", "-file", filepath.Join(dir, "good.json")}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), "2 chunks to re-index in the background") {
		t.Errorf("lexicon set through the server = %v, %q; want 2 chunks to re-index", err, out.String())
	}
	if err := store.WaitReindex(t.Context(), "kb"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if err := runT(t, []string{"lexicon", "get", "-addr", addr, "-collection", "kb"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), `"三明治反馈法"`) || !strings.Contains(errOut.String(), "0 chunks waiting") {
		t.Errorf("lexicon get through the server = %v, %q, %q; want the lexicon, nothing waiting", err, out.String(), errOut.String())
	}
	if err := runT(t, []string{"lexicon", "set", "-addr", addr, "-collection", "kb", "-file", filepath.Join(dir, "bad-entry.json")}, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "terms[1] is empty") {
		t.Errorf("lexicon set of a bad entry through the server = %v, want the entry named", err)
	}
	// Unknown verb: usage and exit code 2.
	var ee exitError
	if err := runT(t, []string{"lexicon", "delete"}, env, &out, &errOut); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("zhisou lexicon delete = %v, want exit code 2", err)
	}
}
