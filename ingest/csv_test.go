package ingest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/retrieve"
)

// bankQuestions are the questions of testdata/bank.csv, in file order.
var bankQuestions = []index.Question{
	{Stem: "客户认为报价太贵时，销售人员首先应该怎么做？", Options: opts("立即给出折扣", "先倾听并确认客户的顾虑", "转移话题", "请客户去找别家"), Answer: "B", Analysis: "处理价格异议要先倾听，弄清客户觉得贵的原因，再谈价值。", Knowledge: "价格异议处理", Difficulty: "易", Type: "单选题"},
	{Stem: "下列哪种说法最能体现产品的价值而不是价格？", Options: opts("我们是全市最便宜的", "今天下单有赠品", "每天成本不到一杯咖啡，却能节省两小时人工", "别人都买了"), Answer: "C", Analysis: "把价格拆分到每天，并和客户得到的收益比较，\n客户更容易接受。", Knowledge: "价格异议处理", Difficulty: "中", Type: "单选题"},
	{Stem: "回访老客户时，以下哪些做法是恰当的？", Options: opts("提前预约回访时间", "一上来就推销新产品", "记录客户反馈并跟进", "根据客户的使用情况给出建议"), Answer: "ABD", Analysis: "回访以了解需求为主，推销要放在后面。", Knowledge: "客户关系管理", Difficulty: "中", Type: "多选题"},
	{Stem: "客户投诉处理完毕后不需要再做任何跟进。", Options: opts("正确", "错误"), Answer: "B", Analysis: "投诉处理后应在三天内回访，确认问题已经解决。", Knowledge: "客户关系管理", Difficulty: "易", Type: "判断题"},
	{Stem: "发现电气设备起火时，第一步应当做什么？", Options: opts("切断电源", "用水扑救", "打开门窗通风", "继续观察"), Answer: "A", Analysis: "电气火灾先断电，严禁用水扑救带电设备。", Knowledge: "消防安全", Difficulty: "易", Type: "单选题"},
	{Stem: "干粉灭火器使用时应对准火焰的哪个部位喷射？", Options: opts("火焰顶部", "火焰中部", "烟雾最浓处", "火焰根部"), Answer: "D", Analysis: "对准火焰根部喷射才能有效灭火。", Knowledge: "消防安全", Difficulty: "易", Type: "单选题"},
	{Stem: "发生轻伤事故后，班组长应当在多长时间内上报安全部门？", Options: opts("24小时", "1小时", "一周", "不需要上报"), Answer: "B", Analysis: "事故发生后1小时内上报，重伤以上立即上报。", Knowledge: "事故上报", Difficulty: "难", Type: "单选题"},
	{Stem: "事故报告应当包括哪些内容：时间, 地点, 伤亡情况？", Options: opts("事故发生的时间和地点", "伤亡人数和受伤程度", "已经采取的应急措施", "责任人的处罚决定"), Answer: "ABC", Analysis: "处罚决定要等调查结束后再作出，不属于初次报告的内容。", Knowledge: "事故上报", Difficulty: "中", Type: "多选题"},
}

// opts labels options A, B, ... in order.
func opts(texts ...string) []index.Option {
	out := make([]index.Option, len(texts))
	for i, t := range texts {
		out[i] = index.Option{Label: string(rune('A' + i)), Text: t}
	}
	return out
}

func unset() bankColumns {
	c := bankColumns{Stem: -1, Answer: -1, Analysis: -1, Knowledge: -1, Difficulty: -1, Type: -1, Options: -1}
	for i := range c.Option {
		c.Option[i] = -1
	}
	return c
}

func TestHeaderColumns(t *testing.T) {
	with := func(f func(*bankColumns)) bankColumns {
		c := unset()
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		row    []string
		want   bankColumns
		wantOK bool
	}{
		{
			name: "chinese", row: []string{"题型", "题干", "选项A", "选项B", "选项C", "答案", "答案解析", "知识点", "难度"},
			want: with(func(c *bankColumns) {
				c.Type, c.Stem, c.Option[0], c.Option[1], c.Option[2], c.Answer, c.Analysis, c.Knowledge, c.Difficulty = 0, 1, 2, 3, 4, 5, 6, 7, 8
			}),
			wantOK: true,
		},
		{
			name: "english, any case and spacing", row: []string{" Question ", "Option A", "option_b", "OPTION C", "d", "Correct Answer", "Explanation", "Knowledge Point", "Difficulty", "Type"},
			want: with(func(c *bankColumns) {
				c.Stem, c.Option[0], c.Option[1], c.Option[2], c.Option[3], c.Analysis, c.Knowledge, c.Difficulty, c.Type = 0, 1, 2, 3, 4, 6, 7, 8, 9
			}),
			wantOK: true,
		},
		{
			name: "single options column", row: []string{"试题", "选项", "正确答案", "topic"},
			want:   with(func(c *bankColumns) { c.Stem, c.Options, c.Answer, c.Knowledge = 0, 1, 2, 3 }),
			wantOK: true,
		},
		{
			name: "letters and stem", row: []string{"stem", "A", "B", "E", "F", "answer", "analysis"},
			want: with(func(c *bankColumns) {
				c.Stem, c.Option[0], c.Option[1], c.Option[4], c.Option[5], c.Answer, c.Analysis = 0, 1, 2, 3, 4, 5, 6
			}),
			wantOK: true,
		},
		{
			name: "no question column", row: []string{"姓名", "部门", "答案"},
			want: with(func(c *bankColumns) { c.Answer = 2 }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := headerColumns(tt.row)
			if ok != tt.wantOK {
				t.Errorf("headerColumns(%q) ok = %v, want %v", tt.row, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headerColumns(%q) mismatch (-want +got):\n%s", tt.row, diff)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		want      []index.Question
		wantTable string
		wantErr   error
	}{
		{
			name: "header after a title row, english",
			text: "销售题库 2024,,\n\nquestion,answer,options\n报价后客户沉默怎么办？,A,\"A. 主动询问顾虑 B. 再次降价\"\n",
			want: []index.Question{{Stem: "报价后客户沉默怎么办？", Answer: "A", Options: opts("主动询问顾虑", "再次降价")}},
		},
		{
			name: "single options column, separators",
			text: "题目,选项\n灭火器放在哪里？,A、走廊；B、仓库；C、办公室\n只有题干？\n",
			want: []index.Question{
				{Stem: "灭火器放在哪里？", Options: opts("走廊", "仓库", "办公室")},
				{Stem: "只有题干？"},
			},
		},
		{
			name: "unlabelled options, one a line",
			text: "题目,选项\n灭火器放在哪里？,\"走廊\n仓库\"\n",
			want: []index.Question{{Stem: "灭火器放在哪里？", Options: opts("走廊", "仓库")}},
		},
		{
			name:      "no question column: a plain table",
			text:      "姓名,部门,电话\n张三,销售部,1001\n李四,,1002\n",
			wantTable: "姓名: 张三 | 部门: 销售部 | 电话: 1001\n姓名: 李四 | 电话: 1002\n",
		},
		{
			name:    "header and no rows",
			text:    "题目,答案\n,,\n",
			wantErr: ErrEmpty,
		},
		{
			name:    "only blank cells",
			text:    ",,\n , \n",
			wantErr: ErrEmpty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, table, err := parseCSV(tt.text)
			if tt.wantErr != nil {
				if err == nil || (!errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error())) {
					t.Fatalf("parseCSV(%q) error = %v, want %v", tt.text, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCSV(%q) error = %v", tt.text, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseCSV(%q) questions mismatch (-want +got):\n%s", tt.text, diff)
			}
			if table != tt.wantTable {
				t.Errorf("parseCSV(%q) table = %q, want %q", tt.text, table, tt.wantTable)
			}
		})
	}
}

// TestReadCSVFile reads the fixture as UTF-8 and as GBK, and checks that bad
// CSV files fail with a clear per-file error.
func TestReadCSVFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "bank.csv"))
	if err != nil {
		t.Fatal(err)
	}
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	// A UTF-8 bank with one line pasted from a GBK file.
	gbkLine, err := simplifiedchinese.GBK.NewEncoder().String("发现初起火灾时首先应该？,报警,A\n")
	if err != nil {
		t.Fatal(err)
	}
	mixed := "题目,选项A,答案\n客户说太贵时第一步应该做什么？,确认预算,A\n" + gbkLine + "谁负责审批超过百分之十五的折扣？,区域经理,A\n"
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"bad/mixed.csv":      mixed,
		"sales/bank.csv":     string(b),
		"sales/bank-gbk.csv": string(gbk),
		"staff.csv":          "姓名,部门\n张三,销售部\n",
		"bad/binary.csv":     "题目,答案\x00\x01\x02",
		"bad/header.csv":     "题目,选项A,答案\n",
		"bad/nostem.csv":     "题目,答案\n什么是异议？,A\n,B\n",
	})
	ins, failed, err := ReadAll([]string{root}, 0)
	if err != nil {
		t.Fatalf("ReadAll error = %v", err)
	}
	byID := map[string]Input{}
	for _, in := range ins {
		byID[in.ID] = in
	}
	for _, id := range []string{"sales/bank", "sales/bank-gbk"} {
		in := byID[id]
		if diff := cmp.Diff(bankQuestions, in.Questions); diff != "" {
			t.Errorf("ReadAll: %s questions mismatch (-want +got):\n%s", id, diff)
		}
		if in.Title != filepath.Base(id) || in.Metadata["folder"] != "sales" {
			t.Errorf("ReadAll: %s title, metadata = %q, %v, want %q, folder=sales", id, in.Title, in.Metadata, filepath.Base(id))
		}
	}
	if got, want := byID["staff"].Content, "姓名: 张三 | 部门: 销售部\n"; got != want || byID["staff"].Questions != nil {
		t.Errorf("ReadAll: staff content = %q, %d questions, want %q and none", got, len(byID["staff"].Questions), want)
	}
	got := map[string]string{}
	for _, fe := range failed {
		rel, _ := filepath.Rel(root, fe.Path)
		got[filepath.ToSlash(rel)] = fe.Err.Error()
	}
	wantErr := map[string]string{
		"bad/binary.csv": "binary",
		"bad/header.csv": "header on line 1 and no questions",
		"bad/nostem.csv": `line 3: no question in column "题目"`,
		"bad/mixed.csv":  "mixed encodings: 3 lines are UTF-8 and 1 are not (the first at line 3, GBK?)",
	}
	if len(got) != len(wantErr) {
		t.Errorf("ReadAll failed = %v, want %v", got, wantErr)
	}
	for path, want := range wantErr {
		if !strings.Contains(got[path], want) {
			t.Errorf("ReadAll: %s error = %q, want it to contain %q", path, got[path], want)
		}
	}
}

func TestBuildQuestions(t *testing.T) {
	in := Input{ID: "bank", Title: "销售题库", Questions: bankQuestions[:2]}
	d, err := Build(in, ChunkOptions{})
	if err != nil {
		t.Fatalf("Build error = %v", err)
	}
	if len(d.Chunks) != 2 {
		t.Fatalf("Build: %d chunks, want 2", len(d.Chunks))
	}
	c := d.Chunks[0]
	wantText := "题目：客户认为报价太贵时，销售人员首先应该怎么做？\nA. 立即给出折扣\nB. 先倾听并确认客户的顾虑\nC. 转移话题\nD. 请客户去找别家\n答案：B\n解析：处理价格异议要先倾听，弄清客户觉得贵的原因，再谈价值。\n知识点：价格异议处理\n题型：单选题\n难度：易"
	if c.Text != wantText {
		t.Errorf("Build: chunk text = %q, want %q", c.Text, wantText)
	}
	wantPath := []string{"销售题库", "价格异议处理"}
	if diff := cmp.Diff(wantPath, c.HeadingPath); diff != "" {
		t.Errorf("Build: heading path mismatch (-want +got):\n%s", diff)
	}
	if c.ID != index.ChunkID("bank", wantPath, 0) || d.Chunks[1].ID != index.ChunkID("bank", wantPath, 1) {
		t.Errorf("Build: chunk ids %q, %q, want index.ChunkID(doc, path, row)", c.ID, d.Chunks[1].ID)
	}
	if diff := cmp.Diff(&bankQuestions[0], c.Question); diff != "" {
		t.Errorf("Build: question mismatch (-want +got):\n%s", diff)
	}

	// No knowledge point: the heading path is the title alone.
	d, err = Build(Input{ID: "bank", Questions: []index.Question{{Stem: "题"}}}, ChunkOptions{})
	if err != nil || len(d.Chunks) != 1 || !cmp.Equal(d.Chunks[0].HeadingPath, []string{"bank"}) {
		t.Errorf("Build(no knowledge point) = %+v, %v, want one chunk under [bank]", d.Chunks, err)
	}

	// Any field changes the chunk hash.
	base, _ := Build(in, ChunkOptions{})
	changed := append([]index.Question(nil), in.Questions...)
	changed[0].Options = opts("立即给出折扣", "先倾听并确认客户的顾虑", "转移话题", "请客户去找别家 ")
	changed[0].Options[3].Text = "另一个选项"
	d2, _ := Build(Input{ID: in.ID, Title: in.Title, Questions: changed}, ChunkOptions{})
	if d2.Chunks[0].Hash == base.Chunks[0].Hash || d2.Chunks[1].Hash != base.Chunks[1].Hash {
		t.Errorf("Build: hashes after changing an option = %q, %q; before %q, %q; want only the first to change",
			d2.Chunks[0].Hash, d2.Chunks[1].Hash, base.Chunks[0].Hash, base.Chunks[1].Hash)
	}

	if _, err := Build(Input{ID: "bank", Questions: []index.Question{{Stem: " "}}}, ChunkOptions{}); err == nil {
		t.Errorf("Build(question without stem) error = nil, want an error")
	}
}

// TestSearchQuestionBank ingests the fixture into a store and finds every
// question by a phrase from its stem, with its structured fields.
func TestSearchQuestionBank(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the segmentation dictionary")
	}
	store := newStore(t)
	root := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "bank.csv"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, map[string]string{"bank.csv": string(b), "notes.md": "# 笔记\n灭火器每月检查一次。"})
	rep, err := Run(t.Context(), Local{Store: store}, []string{root}, Options{Collection: "c"})
	if err != nil || rep.Added != 2 || len(rep.Failed) != 0 {
		t.Fatalf("Run = %+v, %v, want 2 added", rep, err)
	}
	s := retrieve.New(store, retrieve.Options{})
	phrases := []string{"报价太贵", "体现产品的价值", "回访老客户", "客户投诉处理完毕", "电气设备起火", "干粉灭火器", "轻伤事故", "事故报告应当包括"}
	for i, phrase := range phrases {
		res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: phrase, TopK: 3})
		if err != nil {
			t.Fatalf("Search(%q) error = %v", phrase, err)
		}
		if len(res.Hits) == 0 {
			t.Errorf("Search(%q) = no hits, want question %d", phrase, i)
			continue
		}
		h := res.Hits[0]
		if diff := cmp.Diff(&bankQuestions[i], h.Question); diff != "" {
			t.Errorf("Search(%q) top hit question mismatch (-want +got):\n%s", phrase, diff)
		}
		if want := []string{"bank", bankQuestions[i].Knowledge}; !cmp.Equal(h.HeadingPath, want) {
			t.Errorf("Search(%q) top hit heading path = %q, want %q", phrase, h.HeadingPath, want)
		}
	}

	// A heading filter scopes by knowledge point.
	res, err := s.Search(t.Context(), retrieve.Request{Collection: "c", Query: "灭火器", TopK: 10, Filter: index.Filter{HeadingPrefix: []string{"bank", "消防安全"}}})
	if err != nil {
		t.Fatalf("Search(灭火器, heading 消防安全) error = %v", err)
	}
	if len(res.Hits) == 0 {
		t.Fatalf("Search(灭火器, heading 消防安全) = no hits")
	}
	for _, h := range res.Hits {
		if h.Question == nil || h.Question.Knowledge != "消防安全" {
			t.Errorf("Search(灭火器, heading 消防安全) hit %s question = %+v, want knowledge point 消防安全", h.ChunkID, h.Question)
		}
	}
}

// FuzzParseCSV parses any text as CSV. It must not panic; a question bank's
// questions all have stems and build into one chunk each.
func FuzzParseCSV(f *testing.F) {
	f.Add("题目,选项,答案\n报价太贵怎么办？,\"A. 倾听 B. 降价\",A\n")
	f.Add("note\n\nquestion,option a,option b\n\"a, \"\"b\"\"\nc\",x,y\n,,\n")
	f.Add("姓名,部门\n张三\n李四,销售部,多余\n")
	f.Fuzz(func(t *testing.T, text string) {
		qs, table, err := parseCSV(text)
		if err != nil {
			return
		}
		if len(qs) > 0 && table != "" {
			t.Fatalf("parseCSV(%q) = questions and table %q, want one of them", text, table)
		}
		if len(qs) == 0 {
			return
		}
		d, err := Build(Input{ID: "fuzz", Questions: qs}, ChunkOptions{})
		if !utf8.ValidString(text) {
			return
		}
		if err != nil || len(d.Chunks) != len(qs) {
			t.Fatalf("Build(parseCSV(%q)) = %d chunks, %v; want %d chunks", text, len(d.Chunks), err, len(qs))
		}
	})
}
