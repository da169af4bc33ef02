package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestIngestFormats ingests a folder of real-tool files (a LibreOffice PDF,
// DOCX and PPTX of one lesson, each in its own folder, the Markdown it came
// from) with a scan and an encrypted PDF: the summary counts each format's
// files by outcome, the bad PDFs are reported, progress lines are written,
// and the PDF lesson is found by a phrase with its page in the heading path.
func TestIngestFormats(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string][]byte{dst: b})
	}
	fixtures := filepath.Join("..", "..", "ingest", "testdata")
	copyFile(filepath.Join(fixtures, "libreoffice", "02-price-objection.pdf"), "pdf/02-price-objection.pdf")
	copyFile(filepath.Join(fixtures, "libreoffice", "02-price-objection.docx"), "docx/02-price-objection.docx")
	copyFile(filepath.Join(fixtures, "libreoffice", "02-price-objection.pptx"), "pptx/02-price-objection.pptx")
	copyFile(filepath.Join("..", "..", "testdata", "courses", "sales", "02-price-objection.md"), "md/02-price-objection.md")
	copyFile(filepath.Join(fixtures, "pdf", "scanned.pdf"), "bad/scanned.pdf")
	copyFile(filepath.Join(fixtures, "pdf", "encrypted-rc4.pdf"), "bad/encrypted.pdf")

	var out, errOut bytes.Buffer
	err := runT(t, []string{"ingest", "-store", store, "-collection", "kb", dir}, envOf(nil), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "2 of 6 files failed") {
		t.Fatalf("ingest = %v, want 2 of 6 files failed\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`files 6: added 4, updated 0, unchanged 0, stale 0, deleted 0, skipped 0, failed 2\n`),
		regexp.MustCompile(`\n  docx      1 files: read 1, failed 0, skipped 0;   0\.0\d\d MB text, read in [0-9.]+ s \([0-9.]+ MB/s, [0-9.]+ files/s\)\n`),
		regexp.MustCompile(`\n  pdf       3 files: read 1, failed 2, skipped 0;   0\.0\d\d MB text, read in [0-9.]+ s`),
		regexp.MustCompile(`\n  pptx      1 files: read 1, failed 0, skipped 0;`),
		regexp.MustCompile(`\n  md        1 files: read 1, failed 0, skipped 0;`),
		regexp.MustCompile(`\n  total  0\.\d\d\d MB text in [0-9.]+ s, indexing included`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("ingest summary does not match %s:\n%s", want, out.String())
		}
	}
	for _, want := range []string{
		"bad/scanned.pdf: no text layer (scanned?); OCR is not supported",
		"bad/encrypted.pdf: encrypted PDF: it needs a password",
		"ingest: 6/6 files",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("ingest stderr lacks %q:\n%s", want, errOut.String())
		}
	}

	out.Reset()
	errOut.Reset()
	if err := runT(t, []string{"search", "-store", store, "-collection", "kb", "-json", "-k", "4", "部分采购人员会习惯性地压价"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("search: %v\n%s", err, errOut.String())
	}
	var res struct {
		Hits []struct {
			DocumentID  string   `json:"document_id"`
			HeadingPath []string `json:"heading_path"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("search output %q: %v", out.String(), err)
	}
	found := false
	for _, h := range res.Hits {
		if h.DocumentID == "pdf/02-price-objection" {
			found = strings.Join(h.HeadingPath, " > ") == "第二章 价格异议处理（第1页） > 2.1 价格异议背后的真实原因（第1页） > 2.1.3 谈判策略（第1页）"
		}
	}
	if !found {
		t.Errorf("search hits = %+v, want pdf/02-price-objection under 2.1.3 谈判策略（第1页）", res.Hits)
	}
}
