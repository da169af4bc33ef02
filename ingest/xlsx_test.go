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
	"github.com/xuri/excelize/v2"

	"github.com/zhisou/zhisou/index"
)

// workbook writes an .xlsx with a question-bank sheet (columns in an unusual
// order, an empty row) and a plain table sheet.
func workbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	bank := [][]any{
		{"知识点", "题干", "选项A", "选项B", "选项C", "答案", "解析"},
		{"价格异议", "客户说太贵时第一步应该做什么？", "立即降价", "确认预算与顾虑", "结束拜访", "B", "先弄清异议背后的原因。"},
		{},
		{"消防安全", "发现初起火灾时首先应该？", "报警并使用灭火器", "收拾个人物品", "乘坐电梯离开", "A", "先报警，再扑救初起火灾。"},
	}
	for r, row := range bank {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.NewSheet("培训安排"); err != nil {
		t.Fatal(err)
	}
	for r, row := range [][]any{{"课程", "讲师", "日期"}, {"价格异议处理", "王老师", "2026-12-01"}} {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("培训安排", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadXLSX(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "题库.xlsx")
	if err := os.WriteFile(path, workbook(t), 0o644); err != nil {
		t.Fatal(err)
	}
	ins, err := readFile(dir, path, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("readFile(workbook) = %d inputs, want 2 (the bank sheet and the table sheet)", len(ins))
	}
	bank, table := ins[0], ins[1]
	if bank.ID != "题库/Sheet1" || len(bank.Questions) != 2 || bank.Metadata["sheet"] != "Sheet1" {
		t.Fatalf("bank sheet = %+v, want id 题库/Sheet1 with 2 questions", bank)
	}
	q := bank.Questions[0]
	if q.Stem != "客户说太贵时第一步应该做什么？" || q.Answer != "B" || q.Knowledge != "价格异议" || len(q.Options) != 3 || q.Options[1].Text != "确认预算与顾虑" {
		t.Errorf("first question = %+v", q)
	}
	if table.ID != "题库/培训安排" || len(table.Questions) != 0 || !strings.Contains(table.Content, "王老师") {
		t.Errorf("table sheet = %+v, want plain table text", table)
	}
	for _, in := range ins {
		if _, err := Build(in, ChunkOptions{}); err != nil {
			t.Errorf("Build(%s) = %v", in.ID, err)
		}
	}
}

func TestReadXLSXBadFiles(t *testing.T) {
	good := workbook(t)
	var otherZip bytes.Buffer
	zw := zip.NewWriter(&otherZip)
	w, _ := zw.Create("readme.txt")
	w.Write([]byte("这不是工作簿"))
	zw.Close()

	tests := []struct {
		name string
		data []byte
		want error // nil: just an error whose text contains msg
		msg  string
	}{
		{"renamed zip of something else", otherZip.Bytes(), nil, "workbook"},
		{"truncated workbook", good[:len(good)/2], ErrBinary, "not an .xlsx"},
		{"password-protected or legacy .xls", append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 512)...), nil, "password"},
		{"plain text named .xlsx", []byte("题目,答案\n1+1=?,2\n"), ErrBinary, "not an .xlsx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readXLSX(tt.data)
			if err == nil {
				t.Fatal("readXLSX succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("readXLSX = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("readXLSX = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

// TestReadXLSXZipBomb: a small file whose worksheet unpacks past the limit is
// refused instead of being inflated into memory.
func TestReadXLSXZipBomb(t *testing.T) {
	const limit = 8 << 20 // the same check as the 256 MiB default, on a smaller file
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"} {
		w, _ := zw.Create(name)
		w.Write([]byte(`<?xml version="1.0"?><x/>`))
	}
	w, err := zw.Create("xl/worksheets/sheet1.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, limit+1<<20); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d bytes packed, %d unpacked", buf.Len(), limit+1<<20)
	_, err = readXLSXLimited(buf.Bytes(), limit, limit/2)
	t.Logf("readXLSX(zip bomb) = %v", err)
	if err == nil || !errors.Is(err, ErrTooLarge) && !strings.Contains(err.Error(), "limit") {
		t.Fatalf("readXLSX(zip bomb) = %v, want a size-limit error", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestReadXLSXMergedHeader reads a bank whose header takes two rows, with
// "选项" merged across the four option columns above A–D and "题干"/"答案"
// merged down, and blank rows between the questions: the options land in
// their own fields.
func TestReadXLSXMergedHeader(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{
		{"题干", "选项", nil, nil, nil, "答案", "解析"},
		{nil, "A", "B", "C", "D"},
		{},
		{"客户说太贵时第一步应该做什么？", "立即降价", "确认预算与顾虑", "结束拜访", "转移话题", "B", "先弄清异议背后的原因。"},
		{},
		{},
		{"发现初起火灾时首先应该？", "报警并使用灭火器", "收拾个人物品", "乘坐电梯离开", "继续工作", "A", "先报警，再扑救初起火灾。"},
	}
	for r, row := range rows {
		for c, v := range row {
			if v == nil {
				continue
			}
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range [][2]string{{"B1", "E1"}, {"A1", "A2"}, {"F1", "F2"}, {"G1", "G2"}} {
		if err := f.MergeCell("Sheet1", m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sheets, err := readXLSX(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(sheets) != 1 || len(sheets[0].questions) != 2 {
		t.Fatalf("readXLSX = %+v, want one sheet with 2 questions", sheets)
	}
	want := []index.Question{
		{Stem: "客户说太贵时第一步应该做什么？", Answer: "B", Analysis: "先弄清异议背后的原因。",
			Options: []index.Option{{Label: "A", Text: "立即降价"}, {Label: "B", Text: "确认预算与顾虑"}, {Label: "C", Text: "结束拜访"}, {Label: "D", Text: "转移话题"}}},
		{Stem: "发现初起火灾时首先应该？", Answer: "A", Analysis: "先报警，再扑救初起火灾。",
			Options: []index.Option{{Label: "A", Text: "报警并使用灭火器"}, {Label: "B", Text: "收拾个人物品"}, {Label: "C", Text: "乘坐电梯离开"}, {Label: "D", Text: "继续工作"}}},
	}
	if diff := cmp.Diff(want, sheets[0].questions); diff != "" {
		t.Errorf("readXLSX questions (-want +got):\n%s", diff)
	}
}
