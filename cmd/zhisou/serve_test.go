package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// TestTryHint: the start-up hint names a collection that exists: the
// -collection one when it does, else another; with none, it says how to
// ingest one.
func TestTryHint(t *testing.T) {
	colls := func(names ...string) []store.CollectionInfo {
		var out []store.CollectionInfo
		for _, n := range names {
			out = append(out, store.CollectionInfo{Collection: index.DefaultCollection(n)})
		}
		return out
	}
	tests := []struct {
		name      string
		preferred string
		colls     []store.CollectionInfo
		want      []string
		notWant   string
	}{
		{"the flag's collection exists", "default", colls("courses", "default"), []string{"-collection default '", `/v1/collections/default:search`}, "courses"},
		{"it does not", "default", colls("courses", "hr"), []string{"-collection courses '", `/v1/collections/courses:search`}, "default"},
		{"no collection", "default", nil, []string{"no collection yet", "ingest -addr 127.0.0.1:7700 -collection default testdata/courses"}, "search"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printTryHint(&b, "127.0.0.1:7700", "127.0.0.1:7701", "zhisou-data", tt.preferred, tt.colls)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("printTryHint(%q, %d collections) =\n%s\nwant it to contain %q", tt.preferred, len(tt.colls), b.String(), w)
				}
			}
			if strings.Contains(b.String(), tt.notWant) {
				t.Errorf("printTryHint(%q, %d collections) =\n%s\nwant no %q", tt.preferred, len(tt.colls), b.String(), tt.notWant)
			}
		})
	}
}

// TestVersionAndLogFormat: version names the build, Go and the dictionary;
// -log-format json writes one JSON object a line; an unknown format is an
// error.
func TestVersionAndLogFormat(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"version"}, envOf(nil), &out, &errOut); err != nil || !strings.Contains(out.String(), "go1.") || !regexp.MustCompile(`dictionary sha256:[0-9a-f]{12}`).MatchString(out.String()) {
		t.Errorf("version = %v, %q", err, out.String())
	}
	var logs bytes.Buffer
	env := &cmdEnv{stderr: &logs}
	l, err := env.logger(&common{logLevel: "info", logFormat: "json"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("serving", "addr", "127.0.0.1:7700")
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["msg"] != "serving" || line["addr"] != "127.0.0.1:7700" {
		t.Errorf("a JSON log line: %q (%v)", logs.String(), err)
	}
	if _, err := env.logger(&common{logLevel: "info", logFormat: "xml"}); err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Errorf("-log-format xml: %v", err)
	}
}

// TestProfiles: -cpuprofile and -memprofile write profiles that pprof reads
// (the gzip of a profile proto) when the command ends.
func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu"), filepath.Join(dir, "mem")
	var out, errOut bytes.Buffer
	if err := runT(t, []string{"keys", "list", "-store", filepath.Join(dir, "store"), "-cpuprofile", cpu, "-memprofile", mem}, envOf(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s: %d bytes, %v; want a gzipped profile", p, len(b), err)
		}
	}
}
