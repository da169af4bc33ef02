package ingest

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParseUpload: each format read from bytes as from a folder; a zip is
// a folder (its paths become ids, same-named files of two formats need
// ClaimID, hidden entries are left out); an entry escaping the archive fails
// alone; an empty file is skipped; a zip bomb fails the upload.
func TestParseUpload(t *testing.T) {
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, name := range []string{"libreoffice/02-price-objection.docx", "libreoffice/02-price-objection.pptx", "libreoffice/02-price-objection.pdf",
		"bank.csv", "meeting.txt", "roleplay.srt", "roleplay.vtt"} {
		files, err := ParseUpload(filepath.Base(name), read(name), 32<<20)
		if err != nil || len(files) != 1 || files[0].Err != nil || len(files[0].Inputs) == 0 {
			t.Fatalf("upload of %s: %+v, %v", name, files, err)
		}
		if in := files[0].Inputs[0]; in.Source != filepath.Base(name) || !strings.HasPrefix(in.ID, strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))) {
			t.Errorf("upload of %s: id %q, source %q", name, in.ID, in.Source)
		}
	}
	z := zipOf(t, map[string][]byte{
		"course/x.docx":     read("libreoffice/02-price-objection.docx"),
		"course/x.pdf":      read("libreoffice/02-price-objection.pdf"),
		"course/empty.md":   []byte("  \n"),
		"course/.DS_Store":  []byte("junk"),
		"../../etc/evil.md": []byte("# 越界"),
		"notes.png":         []byte("\x89PNG"),
	})
	files, err := ParseUpload("export.zip", z, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]UploadedFile{}
	for _, f := range files {
		got[f.Path] = f
	}
	if len(files) != 5 {
		t.Errorf("%d files from the zip, want 5 (the hidden one left out): %v", len(files), files)
	}
	owner := map[string]string{}
	var ids []string
	for _, p := range []string{"course/x.docx", "course/x.pdf"} {
		f := got[p]
		if f.Err != nil || len(f.Inputs) == 0 {
			t.Fatalf("%s: %v", p, f.Err)
		}
		in := f.Inputs[0]
		if err := ClaimID(owner, &in, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, ",") != "course/x,course/x.pdf" {
		t.Errorf("same-name ids: %v, want course/x and course/x.pdf", ids)
	}
	if f := got["course/empty.md"]; !f.Skipped || !errors.Is(f.Err, ErrEmpty) {
		t.Errorf("empty file: %+v; want skipped", f)
	}
	if f := got["notes.png"]; !f.Skipped || !errors.Is(f.Err, ErrUnsupported) {
		t.Errorf("png: %+v; want skipped", f)
	}
	if f := got["../../etc/evil.md"]; !errors.Is(f.Err, ErrEscapes) || f.Skipped {
		t.Errorf("escaping entry: %+v; want ErrEscapes", f)
	}
	bomb := zipOf(t, map[string][]byte{"a.txt": bytes.Repeat([]byte("炸"), 40<<20)})
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	files, err = ParseUpload("bomb.zip", bomb, 32<<20)
	if err != nil || len(files) != 1 || !errors.Is(files[0].Err, ErrTooLarge) {
		t.Errorf("a 120 MB entry in a small zip: %+v, %v; want that file refused as too large", files, err)
	}
	if _, err := ParseUpload("../x.md", []byte("# x"), 32<<20); !errors.Is(err, ErrEscapes) {
		t.Errorf("an upload named ../x.md: %v", err)
	}
}
