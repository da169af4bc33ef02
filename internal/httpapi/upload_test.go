package httpapi_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/internal/httpapi"
	"github.com/zhisou/zhisou/internal/service"
)

type uploadAnswer struct {
	Files []struct {
		Path      string `json:"path"`
		Documents []struct {
			DocumentID string `json:"document_id"`
			Outcome    string `json:"outcome"`
		} `json:"documents"`
		Error   string `json:"error"`
		Skipped bool   `json:"skipped"`
	} `json:"files"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func testFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../ingest/testdata", p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (d *door) upload(t *testing.T, coll, key string, body io.Reader, ctype, query string) (int, uploadAnswer, string) {
	t.Helper()
	code, b := d.send(t, "POST", "/v1/collections/"+coll+"/files"+query, body, ctype, key)
	var a uploadAnswer
	json.Unmarshal(b, &a) // an error answer leaves a empty; the raw text is returned too
	return code, a, string(b)
}

// TestUpload: files sent over HTTP are read on the server like a folder's:
// each format, a docx and a pdf of the same name (distinct ids), an empty
// file (skipped), an unknown format (skipped), a zip with an entry that
// escapes it (that entry fails alone); the documents are then found. A raw
// body with ?name= works too; a 200 MB upload, an unknown collection, no
// key and another collection's key are refused.
func TestUpload(t *testing.T) {
	d := newDoor(t, service.Options{RequireAuth: true})
	admin, _, _ := d.Store.CreateKey("root", index.RoleAdmin, []string{index.AllCollections})
	writer, _, _ := d.Store.CreateKey("w", index.RoleWrite, []string{"kb"})
	other, _, _ := d.Store.CreateKey("o", index.RoleWrite, []string{"other"})
	if code, b := d.do(t, "POST", "/v1/collections", `{"name":"kb"}`, admin); code != 200 {
		t.Fatalf("create: %d %s", code, b)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for name, b := range map[string][]byte{"regs/03.docx": testFile(t, "libreoffice/03-regulation-operations.docx"), "../evil.md": []byte("# 越界")} {
		w, _ := zw.Create(name)
		w.Write(b)
	}
	zw.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, b := range map[string][]byte{
		"02-price-objection.docx": testFile(t, "libreoffice/02-price-objection.docx"),
		"02-price-objection.pdf":  testFile(t, "libreoffice/02-price-objection.pdf"),
		"02-price-objection.pptx": testFile(t, "libreoffice/02-price-objection.pptx"),
		"bank.csv":                testFile(t, "bank.csv"),
		"roleplay.srt":            testFile(t, "roleplay.srt"),
		"empty.md":                nil,
		"photo.png":               []byte("\x89PNG"),
		"export.zip":              zbuf.Bytes(),
	} {
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(b)
	}
	mw.Close()
	code, a, raw := d.upload(t, "kb", writer, &body, mw.FormDataContentType(), "")
	if code != 200 {
		t.Fatalf("upload: %d %s", code, raw)
	}
	byPath := map[string]int{}
	for i, f := range a.Files {
		byPath[f.Path] = i
	}
	ids := map[string]bool{}
	for _, p := range []string{"02-price-objection.docx", "02-price-objection.pdf", "02-price-objection.pptx", "bank.csv", "roleplay.srt", "regs/03.docx"} {
		i, ok := byPath[p]
		if !ok || a.Files[i].Error != "" || len(a.Files[i].Documents) == 0 {
			t.Errorf("%s: not written: %s", p, raw)
			continue
		}
		for _, doc := range a.Files[i].Documents {
			if ids[doc.DocumentID] || doc.Outcome != "UPSERT_OUTCOME_ADDED" {
				t.Errorf("%s: document %s %s (twice, or not added)", p, doc.DocumentID, doc.Outcome)
			}
			ids[doc.DocumentID] = true
		}
	}
	for _, p := range []string{"empty.md", "photo.png"} {
		if i, ok := byPath[p]; !ok || !a.Files[i].Skipped {
			t.Errorf("%s: want it skipped: %s", p, raw)
		}
	}
	if i, ok := byPath["../evil.md"]; !ok || !strings.Contains(a.Files[i].Error, "escapes") {
		t.Errorf("../evil.md: want it refused as escaping: %s", raw)
	}
	if code, b := d.do(t, "POST", "/v1/collections/kb:search", `{"query":"有限空间作业"}`, admin); code != 200 || !strings.Contains(string(b), "regs/03") {
		t.Errorf("search for the zip's document: %d %.300s", code, b)
	}
	if code, a, raw := d.upload(t, "kb", writer, strings.NewReader("# 原始上传\n\n正文。"), "application/octet-stream", "?name=notes/raw.md"); code != 200 || len(a.Files) != 1 || len(a.Files[0].Documents) != 1 || a.Files[0].Documents[0].DocumentID != "notes/raw" {
		t.Errorf("raw upload: %d %s", code, raw)
	}
	for _, tc := range []struct {
		name, coll, key, query string
		want                   int
	}{
		{"no key", "kb", "", "?name=a.md", 401},
		{"another collection's key", "kb", other, "?name=a.md", 403},
		{"unknown collection", "nope", admin, "?name=a.md", 404},
		{"no name", "kb", writer, "", 400},
	} {
		if code, _, raw := d.upload(t, tc.coll, tc.key, strings.NewReader("# 标题\n\n正文。"), "application/octet-stream", tc.query); code != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.name, code, raw, tc.want)
		}
	}
	// 200 MB announced: refused before it is read.
	req := httptest.NewRequest("POST", "/v1/collections/kb/files?name=big.pdf", strings.NewReader("x"))
	req.ContentLength = 200 << 20
	req.Header.Set("Authorization", "Bearer "+writer)
	rec := httptest.NewRecorder()
	h, _ := httpapi.Handler(d.Service, d.Health, nil)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 200 MB upload: %d %s; want 413", rec.Code, rec.Body.String())
	}
}
