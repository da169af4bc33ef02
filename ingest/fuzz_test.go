package ingest

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzBuild builds any content in either format with any chunk sizes. Build
// may refuse the input (empty, invalid UTF-8), but it must not panic, and a
// document it builds has non-empty, valid, trimmed chunks within Max, with
// unique ids, and builds the same way twice. More seeds are in
// testdata/fuzz/FuzzBuild.
func FuzzBuild(f *testing.F) {
	f.Add("# 标题\n第一章 总则\n第一条 员工应当遵守制度。\n一、范围\n（一）全体员工。", true, uint16(0), uint16(0))
	f.Add("1.2 概述\n1.2.3 细节\n"+strings.Repeat("没有标点的长句", 100), false, uint16(10), uint16(20))
	f.Add("```\n# 代码\n```\n正文。", true, uint16(5), uint16(5))
	f.Fuzz(func(t *testing.T, content string, markdown bool, target, max uint16) {
		format := Text
		if markdown {
			format = Markdown
		}
		in := Input{ID: "fuzz", Format: format, Content: content}
		opts := ChunkOptions{Target: int(target % 2048), Max: int(max % 4096)}
		d, err := Build(in, opts)
		if err != nil {
			if strings.TrimSpace(content) != "" && utf8.ValidString(content) {
				t.Fatalf("Build(%q) error = %v, want a document for valid, non-blank content", content, err)
			}
			return
		}
		checkDocument(t, in, d, opts.withDefaults())
		for i, c := range d.Chunks {
			for _, h := range c.HeadingPath {
				if h == "" || h != strings.TrimSpace(h) || strings.Contains(h, "\n") {
					t.Errorf("Build(%q).Chunks[%d].HeadingPath = %q, want non-empty trimmed one-line titles", content, i, c.HeadingPath)
				}
			}
		}
		again, err := Build(in, opts)
		if err != nil {
			t.Fatalf("Build(%q) second error = %v, want nil", content, err)
		}
		if diff := cmp.Diff(d, again); diff != "" {
			t.Errorf("Build(%q) twice differs (-first +second):\n%s", content, diff)
		}
	})
}

// FuzzDecode decodes any bytes: it must not panic, its text is valid UTF-8
// and not blank, and its errors are ErrEmpty or ErrBinary. Valid UTF-8 without
// a BOM comes back unchanged. More seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("第一章 总则\n"))
	f.Add([]byte{0xFF, 0xFE, 0x2C, 0x7B, 0x00})
	f.Add([]byte{0xB5, 0xDA, 0xD2, 0xBB, 0xD5, 0xC2})
	f.Fuzz(func(t *testing.T, b []byte) {
		text, enc, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrBinary) {
				t.Errorf("Decode(%q) error = %v, want %v or %v", b, err, ErrEmpty, ErrBinary)
			}
			if text != "" || enc != "" {
				t.Errorf("Decode(%q) = %q, %q, %v, want no text with an error", b, text, enc, err)
			}
			return
		}
		if !utf8.ValidString(text) || strings.TrimSpace(text) == "" {
			t.Errorf("Decode(%q) = %q, want valid, non-blank UTF-8", b, text)
		}
		switch enc {
		case "utf-8", "utf-16", "gb18030":
		default:
			t.Errorf("Decode(%q) encoding = %q, want utf-8, utf-16 or gb18030", b, enc)
		}
		if utf8.Valid(b) && enc == "utf-8" && !strings.HasPrefix(string(b), "\uFEFF") && text != string(b) {
			t.Errorf("Decode(%q) = %q, want the UTF-8 input unchanged", b, text)
		}
	})
}
