package ingest

import (
	"os"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
)

// TestLibreOfficeDocx reads DOCX files that LibreOffice wrote (from the
// testdata courses, see testdata/tools/courses-to-docx.sh): the outline
// comes from the heading styles, the Chinese article numbering inside the
// text still becomes headings, and tables survive as rows.
func TestLibreOfficeDocx(t *testing.T) {
	tests := []struct {
		file         string
		title        string
		wantPaths    []string // must be among the chunks' heading paths
		wantInText   []string // must be in some chunk's text
		minimumChunk int
	}{
		{
			file:  "testdata/libreoffice/02-price-objection.docx",
			title: "第二章 价格异议处理",
			wantPaths: []string{
				"第二章 价格异议处理 > 2.1 价格异议背后的真实原因 > 2.1.2 价值认知不足",
				"第二章 价格异议处理 > 2.3 示范对话",
			},
			wantInText:   []string{"部分采购人员会习惯性地压价", "你们报价二十八万"},
			minimumChunk: 8,
		},
		{
			file:  "testdata/libreoffice/03-regulation-operations.docx",
			title: "第三章 《员工安全生产管理规定》解读（下）：作业安全、事故报告与奖惩",
			wantPaths: []string{
				"第三章 《员工安全生产管理规定》解读（下）：作业安全、事故报告与奖惩 > 第四章 事故报告与应急管理 > 第十七条",
			},
			wantInText:   []string{"有限空间", "1小时内上报", "第十二条 | "},
			minimumChunk: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			ins, err := docxInputs("testdata/libreoffice", tt.file, b)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Build(ins[0], ChunkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Chunks) < tt.minimumChunk {
				t.Errorf("%d chunks, want at least %d", len(d.Chunks), tt.minimumChunk)
			}
			checkConverted(t, d, tt.title, tt.wantPaths, tt.wantInText)
		})
	}
}

// TestLibreOfficePptx reads PPTX files that LibreOffice Impress wrote from
// the testdata courses (testdata/tools/courses-to-pptx.sh: one slide per
// heading, the heading in the title placeholder): each slide is a section
// titled 第N页 and its title, numbering inside a slide still nests, and the
// table rows survive with their cells.
func TestLibreOfficePptx(t *testing.T) {
	const regTitle = "第1页 第三章 《员工安全生产管理规定》解读（下）：作业安全、事故报告与奖惩"
	tests := []struct {
		file       string
		title      string
		wantPaths  []string // must be among the chunks' heading paths
		wantInText []string // must be in some chunk's text
		chunks     int
	}{
		{
			file:  "testdata/libreoffice/02-price-objection.pptx",
			title: "第二章 价格异议处理",
			wantPaths: []string{
				"第1页 第二章 价格异议处理",
				"第4页 2.1.2 价值认知不足",
				"第7页 2.3 示范对话",
				"第11页 2.7 练习",
			},
			wantInText: []string{"部分采购人员会习惯性地压价", "你们报价二十八万", "1. 价值重构法"},
			chunks:     10, // eleven slides; slide 2 has a title only
		},
		{
			file:  "testdata/libreoffice/03-regulation-operations.pptx",
			title: "第三章 《员工安全生产管理规定》解读（下）：作业安全、事故报告与奖惩",
			wantPaths: []string{
				regTitle,
				regTitle + " > 第三章 作业安全管理 > 第十二条",
				regTitle + " > 第五章 奖励与处罚 > 第二十四条",
			},
			wantInText: []string{"有限空间", "第十二条 | 有限空间：先通风、再检测、后作业"},
			chunks:     14,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			ins, err := pptxInputs("testdata/libreoffice", tt.file, b)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Build(ins[0], ChunkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Chunks) != tt.chunks {
				t.Errorf("%d chunks, want %d", len(d.Chunks), tt.chunks)
			}
			checkConverted(t, d, tt.title, tt.wantPaths, tt.wantInText)
		})
	}
}

// checkConverted checks a document read from a converted file: its title, a
// chunk under each wanted heading path, and each wanted string in its text.
func checkConverted(t *testing.T, d index.Document, title string, wantPaths, wantInText []string) {
	t.Helper()
	if d.Title != title {
		t.Errorf("title = %q, want %q", d.Title, title)
	}
	paths := map[string]bool{}
	var all strings.Builder
	for _, c := range d.Chunks {
		paths[index.HeadingString(c.HeadingPath)] = true
		all.WriteString(c.Text + "\n")
	}
	for _, p := range wantPaths {
		if !paths[p] {
			t.Errorf("no chunk under %q; paths: %v", p, paths)
		}
	}
	for _, s := range wantInText {
		if !strings.Contains(all.String(), s) {
			t.Errorf("text lacks %q", s)
		}
	}
}
