package ingest

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
)

// TestPDFFixtures reads PDFs that real tools wrote from the testdata courses
// (testdata/tools/courses-to-pdf.sh): LibreOffice with bookmarks, LibreOffice
// without (the outline then comes from font sizes and numbering patterns),
// and WeasyPrint with CID fonts. Headings carry the pages of their sections;
// the two-page lesson's later sections cite page 2.
func TestPDFFixtures(t *testing.T) {
	const regTitle = "第三章 《员工安全生产管理规定》解读（下）：作业安全、事故报告与奖惩"
	price := []string{
		"第二章 价格异议处理（第1页） > 2.1 价格异议背后的真实原因（第1页） > 2.1.2 价值认知不足（第1页）",
		"第二章 价格异议处理（第1页） > 2.3 示范对话（第1页）",
		"第二章 价格异议处理（第1页） > 2.4 让价的纪律（第1–2页）",
		"第二章 价格异议处理（第1页） > 2.6 不同客户角色的价格关注点（第2页）",
	}
	// The title's section ends at the first numbering heading.
	regulation := []string{
		regTitle + "（第1页） > 第三章 作业安全管理（第1页） > 第十二条",
		regTitle + "（第1页） > 第四章 事故报告与应急管理（第1页） > 第十七条",
		regTitle + "（第1页） > 第五章 奖励与处罚（第1–2页） > 第二十四条",
	}
	tests := []struct {
		file       string
		title      string
		wantPaths  []string // must be among the chunks' heading paths
		wantInText []string // must be in some chunk's text
		minChunks  int
	}{
		{
			file:       "testdata/libreoffice/02-price-objection.pdf",
			title:      "第二章 价格异议处理",
			wantPaths:  price,
			wantInText: []string{"部分采购人员会习惯性地压价", "你们报价二十八万", "以智能能耗监测网关 PPR-9087 为例"},
			minChunks:  8,
		},
		{
			// WeasyPrint breaks the pages elsewhere.
			file:  "testdata/weasyprint/02-price-objection-cid.pdf",
			title: "第二章 价格异议处理",
			wantPaths: []string{
				price[0], price[3],
				"第二章 价格异议处理（第1页） > 2.3 示范对话（第1–2页）",
				"第二章 价格异议处理（第1页） > 2.4 让价的纪律（第2页）",
			},
			wantInText: []string{"部分采购人员会习惯性地压价", "你们报价二十八万", "以智能能耗监测网关 PPR-9087 为例"},
			minChunks:  8,
		},
		{
			file:       "testdata/libreoffice/03-regulation-operations.pdf",
			title:      regTitle,
			wantPaths:  regulation,
			wantInText: []string{"有限空间", "1 小时内上报", "第十二条 | "},
			minChunks:  8,
		},
		{
			// Without bookmarks, the title is a heading by its font size.
			file:       "testdata/libreoffice/03-regulation-operations-nobookmarks.pdf",
			title:      regTitle,
			wantPaths:  regulation,
			wantInText: []string{"有限空间", "1 小时内上报", "第十二条 | "},
			minChunks:  8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			ins, err := pdfInputs("testdata", tt.file, b)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Build(ins[0], ChunkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Chunks) < tt.minChunks {
				t.Errorf("%d chunks, want at least %d", len(d.Chunks), tt.minChunks)
			}
			checkConverted(t, d, tt.title, tt.wantPaths, tt.wantInText)
		})
	}
}

// pageSuffix is the page span pdfToMarkdown appends to headings.
var pageSuffix = regexp.MustCompile(`（第\d+(–\d+)?页）`)

// nonASCII keeps the characters of s that are not ASCII: the Chinese text
// and full-width punctuation, without Markdown syntax or white space.
func nonASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf || r == '•' {
			return -1
		}
		return r
	}, s)
}

// TestPDFChineseMatchesSource is the GB font check: the Chinese text of each
// PDF fixture, page spans removed, equals the Markdown lesson it was made
// from, character for character. The WeasyPrint fixture must hold its text
// in CID fonts (Type 0, Identity-H) with ToUnicode maps and the LibreOffice
// ones in subset TrueType fonts with ToUnicode maps, so that both decoding
// paths are the ones checked.
func TestPDFChineseMatchesSource(t *testing.T) {
	tests := []struct {
		file, source string
		cid          bool
	}{
		{"testdata/libreoffice/02-price-objection.pdf", "../testdata/courses/sales/02-price-objection.md", false},
		{"testdata/libreoffice/03-regulation-operations.pdf", "../testdata/courses/safety/03-regulation-operations.md", false},
		{"testdata/libreoffice/03-regulation-operations-nobookmarks.pdf", "../testdata/courses/safety/03-regulation-operations.md", false},
		{"testdata/weasyprint/02-price-objection-cid.pdf", "../testdata/courses/sales/02-price-objection.md", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(tt.source)
			if err != nil {
				t.Fatal(err)
			}
			if got := fontKinds(t, b); tt.cid && !got["Type0/Identity-H/ToUnicode"] || !tt.cid && !got["TrueType/ToUnicode"] {
				t.Fatalf("fonts %v, want the fixture's text in %s", got, map[bool]string{true: "Type0/Identity-H/ToUnicode", false: "TrueType/ToUnicode"}[tt.cid])
			}
			_, md, err := pdfToMarkdown(b)
			if err != nil {
				t.Fatal(err)
			}
			got, want := nonASCII(pageSuffix.ReplaceAllString(md, "")), nonASCII(string(src))
			if got != want {
				g, w := []rune(got), []rune(want)
				i := 0
				for i < len(g) && i < len(w) && g[i] == w[i] {
					i++
				}
				t.Errorf("Chinese text differs from the source at character %d of %d:\n got …%s…\nwant …%s…", i, len(w),
					string(g[max(0, i-10):min(len(g), i+20)]), string(w[max(0, i-10):min(len(w), i+20)]))
			}
		})
	}
}

// fontKinds lists the kinds of font the fixture's pages use.
func fontKinds(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	r, err := openPDF(b)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := pdfPageList(r)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range pages {
		fonts := p.res.Key("Font")
		for _, name := range fonts.Keys() {
			f := fonts.Key(name)
			k := f.Key("Subtype").Name()
			if k == "Type0" {
				k += "/" + f.Key("Encoding").Name()
			}
			if f.Key("ToUnicode").Kind() == pdf.Stream {
				k += "/ToUnicode"
			}
			kinds[k] = true
		}
	}
	return kinds
}

// minimalPDF writes a PDF of the given objects (numbered from 1; object 1
// is the catalog) with a correct cross-reference table.
func minimalPDF(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func pdfStream(dict, data string) string {
	return fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data)
}

func flate(data []byte) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.String()
}

// onePage is a one-page PDF whose page shows content with font F1 = font
// (object 5); extra objects follow as 6, 7, ….
func onePage(content, font string, extra ...string) []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
		pdfStream("", content),
		font,
	}
	return minimalPDF(append(objs, extra...)...)
}

const (
	helvetica = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
	// cidFont is a Type 0 font with Identity-H codes and a ToUnicode map
	// (object 6): 0001-0003 map to 第一章 by a range and a char.
	cidFont    = "<< /Type /Font /Subtype /Type0 /BaseFont /Test /Encoding /Identity-H /DescendantFonts [<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Test /DW 1000 >>] /ToUnicode 6 0 R >>"
	cidNoMap   = "<< /Type /Font /Subtype /Type0 /BaseFont /Test /Encoding /Identity-H /DescendantFonts [<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Test /DW 1000 >>] >>"
	toUnicode  = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange 1 beginbfrange <0001> <0002> <7B2C> endbfrange 2 beginbfchar <0002> <4E00> <0003> <7AE0> endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
	helloWorld = "BT /F1 12 Tf 72 700 Td (Hello PDF) Tj 0 -14 Td (second line.) Tj ET"
)

// TestPDFSmall checks the text placement and decoding on small PDFs written
// here: a simple font, a CID font through its ToUnicode map, a page without
// headings (one "第N页" section), and a PDF 2.0 header.
func TestPDFSmall(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"simple font", onePage(helloWorld, helvetica), "## 第1页\n\nHello PDF second line.\n\n"},
		{"CID font with ToUnicode", onePage("BT /F1 20 Tf 72 700 Td <000100020003> Tj ET BT /F1 10 Tf 72 650 Td <00030002000300020003> Tj ET", cidFont, pdfStream("", toUnicode)), "# 第一章（第1页）\n\n章一章一章\n\n"},
		{"PDF 2.0", append([]byte("%PDF-2.0"), onePage(helloWorld, helvetica)[8:]...), "## 第1页\n\nHello PDF second line.\n\n"},
		{"TJ spacing and a table row", onePage("BT /F1 12 Tf 72 700 Td [(Name)] TJ 200 0 Td (Value) Tj ET", helvetica), "## 第1页\n\nName | Value\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, md, err := pdfToMarkdown(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if md != tt.want {
				t.Errorf("pdfToMarkdown = %q, want %q", md, tt.want)
			}
		})
	}
}

// TestPDFBadInput: each bad PDF gets a clear error of its own kind.
func TestPDFBadInput(t *testing.T) {
	lesson, err := os.ReadFile("testdata/libreoffice/02-price-objection.pdf")
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata/pdf", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cyclicPages := minimalPDF(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
	)
	bombContent := flate(bytes.Repeat([]byte("BT ET "), 400_000)) // 2.4 MB unpacked
	bombPDF := minimalPDF(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
		pdfStream("/Filter /FlateDecode", bombContent),
	)
	small := onePage(helloWorld, helvetica)
	hugeSection := bytes.Replace(small, []byte("xref\n0 6\n"), []byte("xref\n0 6\n900000000 1\n0000000000 65535 f \n"), 1)
	hugeSize := bytes.Replace(small, []byte("/Size 6"), []byte("/Size 3000000000"), 1)
	tests := []struct {
		name    string
		b       []byte
		limit   int64
		wantErr error
		wantMsg string
	}{
		{"AES-256 with a user password", read("encrypted-aes256.pdf"), pdfMaxUnpacked, ErrEncrypted, "AES-256 encryption, which the reader does not support"},
		{"RC4 with a user password", read("encrypted-rc4.pdf"), pdfMaxUnpacked, ErrEncrypted, "needs a password"},
		{"scanned, no text layer", read("scanned.pdf"), pdfMaxUnpacked, ErrNoTextLayer, "no text layer (scanned?); OCR is not supported"},
		{"CID font without ToUnicode", onePage("BT /F1 12 Tf 72 700 Td <00010002> Tj ET", cidNoMap), pdfMaxUnpacked, ErrNoTextLayer, "without a ToUnicode map"},
		{"truncated", lesson[:len(lesson)/2], pdfMaxUnpacked, ErrBinary, "not a readable PDF"},
		{"not a PDF", []byte("PK\x03\x04 a zip renamed to .pdf"), pdfMaxUnpacked, ErrBinary, "not a PDF"},
		{"cyclic page tree", cyclicPages, pdfMaxUnpacked, ErrBinary, "cyclic"},
		{"Flate bomb", bombPDF, 1 << 20, ErrTooLarge, "decompression bomb"},
		{"xref subsection of 900 million objects", hugeSection, pdfMaxUnpacked, ErrTooLarge, "declares 900000001 objects"},
		{"trailer /Size of 3 billion", hugeSize, pdfMaxUnpacked, ErrTooLarge, "declares 3000000000 objects"},
		{"no pages", minimalPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"), pdfMaxUnpacked, ErrEmpty, "without pages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, md, err := pdfToMarkdownLimited(tt.b, tt.limit)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("pdfToMarkdown = %q, %v; want an error %v saying %q", md, err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

// TestPDFOwnerPasswordOnly: a PDF encrypted with only an owner password (no
// password needed to open it) is read.
func TestPDFOwnerPasswordOnly(t *testing.T) {
	b, err := os.ReadFile("testdata/pdf/owner-password-only.pdf")
	if err != nil {
		t.Fatal(err)
	}
	title, md, err := pdfToMarkdown(b)
	if err != nil {
		t.Fatal(err)
	}
	if title != "第一章 保密培训" || !strings.Contains(md, "客户资料属于公司机密，不得外传。") {
		t.Errorf("pdfToMarkdown = %q, %q; want the title 第一章 保密培训 and its sentence", title, md)
	}
}

// TestPDFCyclicOutline: outlines and name trees that point back at
// themselves end (bounded) instead of hanging.
func TestPDFCyclicOutline(t *testing.T) {
	tests := []struct {
		name, catalog, entry, want string
	}{
		{"titled entries", "<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R >>",
			"<< /Title (Hello PDF) /Parent 6 0 R /First 7 0 R /Next 7 0 R /Dest [3 0 R /XYZ 0 800 0] >>", "# Hello PDF（第1页）\n"},
		{"untitled entries", "<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R >>",
			"<< /Parent 6 0 R /First 7 0 R /Next 7 0 R >>", "## 第1页\n"},
		{"a named destination in a cyclic name tree", "<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R /Names << /Dests 8 0 R >> >>",
			"<< /Title (Hello PDF) /Parent 6 0 R /Dest (nowhere) >>", "# Hello PDF（第1页）\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := minimalPDF(
				tt.catalog,
				"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
				"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
				pdfStream("", helloWorld),
				helvetica,
				"<< /First 7 0 R /Last 7 0 R >>",
				tt.entry,
				"<< /Kids [8 0 R 8 0 R] >>",
			)
			_, md, err := pdfToMarkdown(b)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(md, tt.want) {
				t.Errorf("pdfToMarkdown = %.200q, want it to start %q", md, tt.want)
			}
		})
	}
}

// TestPDFFolder ingests a folder with a good PDF, a scan and an encrypted
// PDF: the bad ones are reported with their reasons, the good one is read.
func TestPDFFolder(t *testing.T) {
	dir := t.TempDir()
	for dst, src := range map[string]string{
		"lesson.pdf":    "testdata/libreoffice/02-price-objection.pdf",
		"scan.pdf":      "testdata/pdf/scanned.pdf",
		"encrypted.pdf": "testdata/pdf/encrypted-aes256.pdf",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ins, failed, err := ReadAll([]string{dir}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != "lesson" || ins[0].Title != "第二章 价格异议处理" {
		t.Errorf("ReadAll inputs = %+v, want the lesson alone", ins)
	}
	reasons := map[string]string{}
	for _, f := range failed {
		reasons[filepath.Base(f.Path)] = f.Err.Error()
	}
	if !strings.Contains(reasons["scan.pdf"], "no text layer (scanned?); OCR is not supported") ||
		!strings.Contains(reasons["encrypted.pdf"], "encrypted PDF") || len(failed) != 2 {
		t.Errorf("ReadAll failures = %v, want scan.pdf (no text layer) and encrypted.pdf", reasons)
	}
}
