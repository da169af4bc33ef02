package ingest

import (
	"errors"
	"os"
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
// and not blank, and its errors are ErrEmpty, ErrBinary or ErrMixedEncoding. Valid UTF-8 without
// a BOM comes back unchanged. More seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("第一章 总则\n"))
	f.Add([]byte{0xFF, 0xFE, 0x2C, 0x7B, 0x00})
	f.Add([]byte{0xB5, 0xDA, 0xD2, 0xBB, 0xD5, 0xC2})
	f.Fuzz(func(t *testing.T, b []byte) {
		text, enc, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrBinary) && !errors.Is(err, ErrMixedEncoding) {
				t.Errorf("Decode(%q) error = %v, want %v, %v or %v", b, err, ErrEmpty, ErrBinary, ErrMixedEncoding)
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

// FuzzHTML converts any bytes as an HTML file: decoding fails only with
// ErrEmpty, ErrBinary or ErrMixedEncoding, and conversion does not panic and gives a one-line
// title and Markdown of valid UTF-8 with no blank lines, which builds. More
// seeds are in testdata/fuzz/FuzzHTML.
func FuzzHTML(f *testing.F) {
	f.Add([]byte(salesPage))
	f.Add([]byte("<table><tr><td>甲<td><table><tr><td>乙</table><li>丙<h1>丁<pre>\n# 戊\n```</pre>"))
	f.Add([]byte(`<meta charset="gbk"><title>` + "\xb5\xda\xd2\xbb" + `</title><p hidden>x<nav>y</p>z`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if text, _, err := decodeHTML(b); err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrBinary) && !errors.Is(err, ErrMixedEncoding) {
				t.Errorf("decodeHTML(%q) error = %v, want %v, %v or %v", b, err, ErrEmpty, ErrBinary, ErrMixedEncoding)
			}
		} else if !utf8.ValidString(text) {
			t.Errorf("decodeHTML(%q) = %q, want valid UTF-8", b, text)
		}
		title, md := htmlToMarkdown(string(b))
		if !utf8.ValidString(title) || !utf8.ValidString(md) {
			t.Fatalf("htmlToMarkdown(%q) = %q, %q, want valid UTF-8", b, title, md)
		}
		if title != strings.TrimSpace(title) || strings.ContainsAny(title, "\r\n") {
			t.Errorf("htmlToMarkdown(%q) title = %q, want one trimmed line", b, title)
		}
		if md == "" {
			return
		}
		if !strings.HasSuffix(md, "\n") {
			t.Errorf("htmlToMarkdown(%q) = %q, want lines ending in newlines", b, md)
		}
		for line := range strings.Lines(md) {
			if strings.TrimSpace(line) == "" {
				t.Errorf("htmlToMarkdown(%q) = %q, want no blank lines", b, md)
			}
		}
		in := Input{ID: "fuzz", Title: title, Format: Markdown, Content: md}
		d, err := Build(in, ChunkOptions{})
		if err != nil {
			t.Fatalf("Build(htmlToMarkdown(%q)) error = %v, want nil", b, err)
		}
		checkDocument(t, in, d, ChunkOptions{}.withDefaults())
	})
}

// FuzzTranscript parses any text as subtitles and as a plain-text transcript
// and builds the turns with any chunk sizes: nothing panics, turns are
// one-line valid UTF-8, and every turn within Max is a whole line of a
// chunk. More seeds are in testdata/fuzz/FuzzTranscript.
func FuzzTranscript(f *testing.F) {
	f.Add("1\n00:00:01,000 --> 00:00:02,000\n讲师：大家好。\n\n2\n00:00:02,000 --> 00:00:03,000\n<v 客户>太贵了！", uint16(0), uint16(0))
	f.Add("WEBVTT - 标题\n\nNOTE x\n\n00:01.000 --> 00:02.000\n<v.a 甲>一。二。三。\n<v 乙>四", uint16(3), uint16(5))
	f.Add("周会\n[00:01] 张经理：开始。\n李娜：好。\n补充。\n张经理：散会。", uint16(4), uint16(8))
	f.Fuzz(func(t *testing.T, src string, target, max uint16) {
		opts := ChunkOptions{Target: int(target % 1024), Max: int(max % 2048)}
		title, subs := parseSubtitles(src)
		txtTitle, txt, _ := parseTranscript(src)
		for _, c := range []struct {
			title string
			turns []turn
		}{{title, subs}, {txtTitle, txt}} {
			if !utf8.ValidString(c.title) || c.title != strings.TrimSpace(c.title) || strings.ContainsAny(c.title, "\r\n") {
				t.Errorf("parse(%q) title = %q, want one trimmed line of valid UTF-8", src, c.title)
			}
			for _, tn := range c.turns {
				for _, s := range []string{tn.Speaker, tn.Text} {
					if !utf8.ValidString(s) || s != strings.TrimSpace(s) || strings.ContainsAny(s, "\r\n") {
						t.Errorf("parse(%q) turn %q, want one trimmed line of valid UTF-8", src, tn)
					}
				}
			}
			content := formatTurns(c.turns)
			if strings.TrimSpace(content) == "" {
				continue
			}
			in := Input{ID: "fuzz", Title: c.title, Format: Transcript, Content: content}
			d, err := Build(in, opts)
			if err != nil {
				t.Fatalf("Build(%q) error = %v, want nil", content, err)
			}
			o := opts.withDefaults()
			checkDocument(t, in, d, o)
			lines := map[string]bool{}
			for _, ch := range d.Chunks {
				for l := range strings.Lines(ch.Text) {
					lines[strings.TrimSuffix(l, "\n")] = true
				}
			}
			for l := range strings.Lines(content) {
				l = strings.TrimSpace(l)
				if l != "" && utf8.RuneCountInString(l) <= o.Max && !lines[l] {
					t.Errorf("Build(%q): turn %q is not a whole line of a chunk", content, l)
				}
			}
		}
	})
}

// FuzzPDF reads any bytes as a PDF: it must not panic or hang (cyclic page
// trees and outlines are bounded), its errors name their kind, and its
// Markdown is valid UTF-8 that builds into a document. Seeds: the small
// hand-built PDFs and the tool-made fixtures under testdata.
func FuzzPDF(f *testing.F) {
	f.Add(onePage(helloWorld, helvetica))
	f.Add(onePage("BT /F1 20 Tf 72 700 Td <000100020003> Tj ET BT /F1 10 Tf 72 650 Td [<0003> -500 <0002>] TJ ET", cidFont, pdfStream("", toUnicode)))
	f.Add(onePage("q 1 0 0 1 10 10 cm BT /F1 12 Tf 2 Tz 1 Tc 14 TL (a) ' 1 2 (b) \" T* ET Q", helvetica))
	for _, name := range []string{"testdata/pdf/encrypted-rc4.pdf", "testdata/pdf/owner-password-only.pdf", "testdata/pdf/scanned.pdf", "testdata/libreoffice/03-regulation-operations.pdf"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		title, md, err := pdfToMarkdownLimited(b, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrBinary) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) &&
				!errors.Is(err, ErrEncrypted) && !errors.Is(err, ErrNoTextLayer) {
				t.Errorf("pdfToMarkdown error = %v, want one of the ingest errors", err)
			}
			return
		}
		if !utf8.ValidString(md) || !utf8.ValidString(title) {
			t.Errorf("pdfToMarkdown gave invalid UTF-8: %q, %q", title, md)
		}
		if _, err := Build(Input{ID: "fuzz", Title: title, Format: Markdown, Content: md}, ChunkOptions{}); err != nil && strings.TrimSpace(md) != "" {
			t.Errorf("Build(pdfToMarkdown) error = %v", err)
		}
	})
}

// FuzzPptx: any bytes give a deck or an error, never a panic; the Markdown
// is valid UTF-8.
func FuzzPptx(f *testing.F) {
	f.Add(sampleDeck(f))
	f.Add([]byte("PK\x03\x04"))
	if b, err := os.ReadFile("testdata/libreoffice/03-regulation-operations.pptx"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		title, md, err := pptxToMarkdownLimited(b, 1<<20)
		if err == nil && (!utf8.ValidString(md) || !utf8.ValidString(title)) {
			t.Errorf("pptxToMarkdown gave invalid UTF-8: %q, %q", title, md)
		}
	})
}

// FuzzXlsx: any bytes give sheets or an error, never a panic; every
// question has a stem.
func FuzzXlsx(f *testing.F) {
	f.Add(workbook(f))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sheets, err := readXLSXLimited(b, 1<<20, 1<<20)
		if err != nil {
			return
		}
		for _, s := range sheets {
			for _, q := range s.questions {
				if strings.TrimSpace(q.Stem) == "" {
					t.Errorf("readXLSX gave a question without a stem: %+v", q)
				}
			}
		}
	})
}
