package ingest

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/index"
)

const wordNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

// makeDocx writes a zip with the given parts.
func makeDocx(t testing.TB, parts map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range parts {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func para(style, text string) string {
	ppr := ""
	if style != "" {
		ppr = `<w:pPr><w:pStyle w:val="` + style + `"/></w:pPr>`
	}
	return `<w:p>` + ppr + `<w:r><w:t>` + text + `</w:t></w:r></w:p>`
}

// sampleDocx is a course lesson as Word writes it: a Title paragraph, heading
// styles by id (with localized names), a list, a table and a footnote.
func sampleDocx(t testing.TB) []byte {
	styles := `<w:styles ` + wordNS + `>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>
<w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/></w:style>
<w:style w:type="paragraph" w:styleId="2"><w:name w:val="标题 2"/></w:style>
<w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="我的小节"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
</w:styles>`
	body := para("Title", "第二章 价格异议处理") +
		para("", "价格异议是最常见的异议。") +
		para("1", "2.1 确认预算") +
		para("", "先询问客户的预算范围，不要第一时间降价。") +
		`<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>倾听</w:t></w:r></w:p>` +
		`<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>确认</w:t></w:r></w:p>` +
		para("2", "2.1.1 折扣审批") +
		`<w:tbl><w:tr><w:tc>` + para("", "折扣") + `</w:tc><w:tc>` + para("", "审批人") + `</w:tc></w:tr>` +
		`<w:tr><w:tc>` + para("", "超过15%") + `</w:tc><w:tc>` + para("", "区域经理") + `</w:tc></w:tr></w:tbl>` +
		para("Custom", "2.1.1.1 特殊情况") +
		`<w:p><w:r><w:t xml:space="preserve">大客户</w:t></w:r><w:r><w:tab/><w:t>另行申请。</w:t></w:r></w:p>`
	return makeDocx(t, map[string]string{
		"[Content_Types].xml": `<Types/>`,
		"word/document.xml":   `<w:document ` + wordNS + `><w:body>` + body + `</w:body></w:document>`,
		"word/styles.xml":     styles,
		"word/footnotes.xml":  `<w:footnotes ` + wordNS + `>` + `<w:footnote w:id="1">` + para("", "数据来自2025年销售报告。") + `</w:footnote></w:footnotes>`,
	})
}

func TestDocxToMarkdown(t *testing.T) {
	title, md, err := docxToMarkdown(sampleDocx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `# 第二章 价格异议处理

价格异议是最常见的异议。

## 2.1 确认预算

先询问客户的预算范围，不要第一时间降价。

- 倾听
- 确认
### 2.1.1 折扣审批

折扣 | 审批人
超过15% | 区域经理

#### 2.1.1.1 特殊情况

大客户 另行申请。


## 脚注

数据来自2025年销售报告。

`
	if title != "第二章 价格异议处理" {
		t.Errorf("title = %q", title)
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("docxToMarkdown (-want +got):\n%s", diff)
	}
}

func TestReadDocx(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sales", "price.docx")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, sampleDocx(t), 0o644); err != nil {
		t.Fatal(err)
	}
	ins, err := readFile(dir, p, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(ins[0], ChunkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range d.Chunks {
		paths = append(paths, index.HeadingString(c.HeadingPath))
	}
	want := []string{
		"第二章 价格异议处理",
		"第二章 价格异议处理 > 2.1 确认预算",
		"第二章 价格异议处理 > 2.1 确认预算 > 2.1.1 折扣审批",
		"第二章 价格异议处理 > 2.1 确认预算 > 2.1.1 折扣审批 > 2.1.1.1 特殊情况",
		"第二章 价格异议处理 > 脚注",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("chunk heading paths (-want +got):\n%s", diff)
	}
	if d.ID != "sales/price" || d.Title != "第二章 价格异议处理" || d.Metadata["folder"] != "sales" {
		t.Errorf("document %q title %q metadata %v", d.ID, d.Title, d.Metadata)
	}
}

func TestReadDocxBadFiles(t *testing.T) {
	good := sampleDocx(t)
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, _ := zw.Create("word/document.xml")
	const limit = 4 << 20 // the same check as the 256 MiB default, on a smaller file
	io.CopyN(w, zeros{}, limit+1)
	zw.Close()
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"renamed zip of something else", makeDocx(t, map[string]string{"readme.txt": "你好"}), ErrBinary, "no word/document.xml"},
		{"truncated", good[:len(good)/2], ErrBinary, "not a .docx"},
		{"password-protected or legacy .doc", append(append([]byte{}, oleHeader...), make([]byte, 512)...), nil, "password"},
		{"entry escaping the archive", makeDocx(t, map[string]string{"../../evil.sh": "rm -rf /", "word/document.xml": "<w:document/>"}), ErrArchive, "escapes"},
		{"zip bomb", bomb.Bytes(), ErrTooLarge, "zip bomb"},
		{"broken XML", makeDocx(t, map[string]string{"word/document.xml": "<w:document><w:p>"}), ErrBinary, "word XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := docxToMarkdownLimited(tt.data, limit)
			if err == nil {
				t.Fatal("docxToMarkdown succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("docxToMarkdown = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("docxToMarkdown = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

// FuzzDocx: any bytes give a document or an error, never a panic; a document
// is valid UTF-8.
func FuzzDocx(f *testing.F) {
	f.Add(sampleDocx(f))
	f.Add([]byte("PK\x03\x04"))
	f.Add(append([]byte{}, oleHeader...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, md, err := docxToMarkdownLimited(b, 1<<20)
		if err == nil && !utf8.ValidString(md) {
			t.Errorf("docxToMarkdown gave invalid UTF-8: %q", md)
		}
	})
}
