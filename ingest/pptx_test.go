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

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/index"
)

const (
	pNS   = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	relNS = `xmlns="http://schemas.openxmlformats.org/package/2006/relationships"`
)

func shape(ph, text string) string {
	nv := `<p:nvSpPr><p:cNvPr id="1" name="s"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr>`
	if ph != "" {
		nv = `<p:nvSpPr><p:cNvPr id="1" name="s"/><p:cNvSpPr/><p:nvPr><p:ph type="` + ph + `"/></p:nvPr></p:nvSpPr>`
	}
	var paras string
	for _, line := range strings.Split(text, "\n") {
		paras += `<a:p><a:r><a:t>` + line + `</a:t></a:r></a:p>`
	}
	return `<p:sp>` + nv + `<p:txBody>` + paras + `</p:txBody></p:sp>`
}

func slideXML(shapes ...string) string {
	return `<p:sld ` + pNS + `><p:cSld><p:spTree>` + strings.Join(shapes, "") + `</p:spTree></p:cSld></p:sld>`
}

// sampleDeck is a two-slide deck in PowerPoint's part layout, listed in
// presentation order opposite to the part names, with a table and notes.
func sampleDeck(t testing.TB) []byte {
	table := `<p:graphicFrame><a:graphic><a:graphicData><a:tbl>` +
		`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>折扣</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>审批人</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
		`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>超过15%</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>区域经理</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
		`</a:tbl></a:graphicData></a:graphic></p:graphicFrame>`
	return makeDocx(t, map[string]string{
		"ppt/presentation.xml":             `<p:presentation ` + pNS + `><p:sldIdLst><p:sldId id="256" r:id="rId8"/><p:sldId id="257" r:id="rId7"/></p:sldIdLst></p:presentation>`,
		"ppt/_rels/presentation.xml.rels":  `<Relationships ` + relNS + `><Relationship Id="rId7" Target="slides/slide1.xml"/><Relationship Id="rId8" Target="slides/slide2.xml"/></Relationships>`,
		"ppt/slides/slide2.xml":            slideXML(shape("ctrTitle", "价格异议处理"), shape("subTitle", "销售进阶课程"), shape("sldNum", "1")),
		"ppt/slides/slide1.xml":            slideXML(shape("title", "折扣审批规则"), shape("body", "不要第一时间降价\n先确认客户预算"), table),
		"ppt/slides/_rels/slide1.xml.rels": `<Relationships ` + relNS + `><Relationship Id="rId2" Target="../notesSlides/notesSlide1.xml"/></Relationships>`,
		"ppt/notesSlides/notesSlide1.xml":  slideXML(shape("sldImg", ""), shape("body", "强调区域经理审批的时限。"), shape("sldNum", "2")),
	})
}

func TestPptxToMarkdown(t *testing.T) {
	title, md, err := pptxToMarkdown(sampleDeck(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `## 第1页 价格异议处理

销售进阶课程

## 第2页 折扣审批规则

不要第一时间降价
先确认客户预算
折扣 | 审批人
超过15% | 区域经理

讲者备注：强调区域经理审批的时限。

`
	if title != "价格异议处理" {
		t.Errorf("title = %q, want the first slide's title", title)
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("pptxToMarkdown (-want +got):\n%s", diff)
	}
}

func TestReadPptx(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "deck.pptx")
	if err := os.WriteFile(p, sampleDeck(t), 0o644); err != nil {
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
	if diff := cmp.Diff([]string{"第1页 价格异议处理", "第2页 折扣审批规则"}, paths); diff != "" {
		t.Errorf("chunk heading paths (-want +got):\n%s", diff)
	}
}

func TestReadPptxBadFiles(t *testing.T) {
	good := sampleDeck(t)
	const limit = 4 << 20 // the same check as the 256 MiB default, on a smaller file
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, _ := zw.Create("ppt/presentation.xml")
	io.CopyN(w, zeros{}, limit+1)
	zw.Close()
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"truncated deck", good[:len(good)/2], ErrBinary, "not a .pptx"},
		{"zip bomb", bomb.Bytes(), ErrTooLarge, "zip bomb"},
		{"a DOCX renamed .pptx", sampleDocx(t), ErrBinary, "no slides"},
		{"password-protected or legacy .ppt", append(append([]byte{}, oleHeader...), make([]byte, 512)...), nil, "password"},
		{"slide part missing", makeDocx(t, map[string]string{
			"ppt/presentation.xml":            `<p:presentation ` + pNS + `><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>`,
			"ppt/_rels/presentation.xml.rels": `<Relationships ` + relNS + `><Relationship Id="rId1" Target="slides/slide1.xml"/></Relationships>`,
		}), ErrArchive, "missing part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := pptxToMarkdownLimited(tt.data, limit)
			if err == nil {
				t.Fatal("pptxToMarkdown succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("pptxToMarkdown = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("pptxToMarkdown = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}
