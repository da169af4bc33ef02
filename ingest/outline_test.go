package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/index"
)

// outlineSec is a section as the tests compare it: its heading path and its
// non-blank body lines joined with "\n".
type outlineSec struct {
	Path []string
	Body string
}

func outlineOf(secs []section) []outlineSec {
	var out []outlineSec
	for _, s := range secs {
		var lines []string
		for _, l := range s.body {
			if l != "" {
				lines = append(lines, l)
			}
		}
		out = append(out, outlineSec{Path: s.path, Body: strings.Join(lines, "\n")})
	}
	return out
}

func path(p ...string) []string { return p }

func TestParseOutline(t *testing.T) {
	longList := "一、" + strings.Repeat("公司对员工的考勤、请假、加班和出差进行统一管理", 2)
	tests := []struct {
		name    string
		format  Format
		content string
		want    []outlineSec
	}{
		{
			name:    "markdown levels",
			format:  Markdown,
			content: "# 员工手册\n本手册适用于全体员工。\n\n## 第一章 总则\n总则正文。\n### 1.1 目的\n目的正文。\n### 1.2 范围\n范围正文。\n## 第二章 考勤\n考勤正文。\n",
			want: []outlineSec{
				{path("员工手册"), "本手册适用于全体员工。"},
				{path("员工手册", "第一章 总则"), "总则正文。"},
				{path("员工手册", "第一章 总则", "1.1 目的"), "目的正文。"},
				{path("员工手册", "第一章 总则", "1.2 范围"), "范围正文。"},
				{path("员工手册", "第二章 考勤"), "考勤正文。"},
			},
		},
		{
			name:    "an article cited at the start of a line is body text",
			format:  Text,
			content: "第三条 本制度所称员工是指正式员工。\n第三条所称员工不包括实习生。\n第四条：员工应当遵守本制度。",
			want: []outlineSec{
				{path("第三条"), "本制度所称员工是指正式员工。\n第三条所称员工不包括实习生。"},
				{path("第四条"), "员工应当遵守本制度。"},
			},
		},
		{
			name:    "markdown closing hashes",
			format:  Markdown,
			content: "## 价格异议 ##\n正文。\n# C#\nC# 入门。\n## a #b\n正文。",
			want: []outlineSec{
				{path("价格异议"), "正文。"},
				{path("C#"), "C# 入门。"},
				{path("C#", "a #b"), "正文。"},
			},
		},
		{
			name:    "markdown heading needs a space and a title",
			format:  Markdown,
			content: "#话题标签\n#\n# \u2003 #\n正文。",
			want:    []outlineSec{{nil, "#话题标签\n#\n# \u2003 #\n正文。"}},
		},
		{
			name:    "shallower heading pops deeper ones",
			format:  Markdown,
			content: "### 深\n深层。\n# 顶\n顶层。\n## 中\n中层。",
			want: []outlineSec{
				{path("深"), "深层。"},
				{path("顶"), "顶层。"},
				{path("顶", "中"), "中层。"},
			},
		},
		{
			name:    "chapter section article",
			format:  Text,
			content: "第一章 总则\n第一节 目的\n第一条 为了规范公司管理，制定本制度。\n第二条 适用范围\n本制度适用于全体员工。\n第二节 原则\n第十二条 员工应当遵守劳动纪律，按时上下班。\n第二章 考勤\n第十三条\n员工每日打卡两次。",
			want: []outlineSec{
				{path("第一章 总则"), ""},
				{path("第一章 总则", "第一节 目的"), ""},
				{path("第一章 总则", "第一节 目的", "第一条"), "为了规范公司管理，制定本制度。"},
				{path("第一章 总则", "第一节 目的", "第二条 适用范围"), "本制度适用于全体员工。"},
				{path("第一章 总则", "第二节 原则"), ""},
				{path("第一章 总则", "第二节 原则", "第十二条"), "员工应当遵守劳动纪律，按时上下班。"},
				{path("第二章 考勤"), ""},
				{path("第二章 考勤", "第十三条"), "员工每日打卡两次。"},
			},
		},
		{
			name:    "article text on the same line is body",
			format:  Text,
			content: "第十二条 员工应当……。",
			want:    []outlineSec{{path("第十二条"), "员工应当……。"}},
		},
		{
			name:    "part above chapter",
			format:  Text,
			content: "第一编 总则\n第一章 一般规定\n正文。\n第二编 物权\n正文二。",
			want: []outlineSec{
				{path("第一编 总则"), ""},
				{path("第一编 总则", "第一章 一般规定"), "正文。"},
				{path("第二编 物权"), "正文二。"},
			},
		},
		{
			name:    "chinese list and parenthesised list",
			format:  Text,
			content: "一、总则\n（一）目的\n目的正文。\n（二）范围\n范围正文。\n二、细则\n细则正文。\n三.附则\n四．其他\n(五)半角括号",
			want: []outlineSec{
				{path("一、总则"), ""},
				{path("一、总则", "（一）目的"), "目的正文。"},
				{path("一、总则", "（二）范围"), "范围正文。"},
				{path("二、细则"), "细则正文。"},
				{path("三.附则"), ""},
				{path("四．其他"), ""},
				{path("四．其他", "(五)半角括号"), ""},
			},
		},
		{
			name:    "decimal numbering",
			format:  Text,
			content: "1.2 概述\n概述正文。\n1.2.3 细节\n细节正文。\n1.3. 其他\n其他正文。\n1.4概述无空格\n2 不是标题",
			want: []outlineSec{
				{path("1.2 概述"), "概述正文。"},
				{path("1.2 概述", "1.2.3 细节"), "细节正文。"},
				{path("1.3. 其他"), "其他正文。\n1.4概述无空格\n2 不是标题"},
			},
		},
		{
			name:    "numbering nests under markdown",
			format:  Markdown,
			content: "# 销售手册\n## 2.3 价格异议\n一、识别异议\n（一）常见说法\n客户说太贵了。\n（二）真实原因\n预算不足。\n二、应对方法\n先认同，再说明价值。\n## 2.4 拖延异议\n客户说再考虑。",
			want: []outlineSec{
				{path("销售手册"), ""},
				{path("销售手册", "2.3 价格异议"), ""},
				{path("销售手册", "2.3 价格异议", "一、识别异议"), ""},
				{path("销售手册", "2.3 价格异议", "一、识别异议", "（一）常见说法"), "客户说太贵了。"},
				{path("销售手册", "2.3 价格异议", "一、识别异议", "（二）真实原因"), "预算不足。"},
				{path("销售手册", "2.3 价格异议", "二、应对方法"), "先认同，再说明价值。"},
				{path("销售手册", "2.4 拖延异议"), "客户说再考虑。"},
			},
		},
		{
			name:    "sentence starting with a list marker is body",
			format:  Text,
			content: "一、总则\n一、员工应当遵守公司的各项规章制度。\n" + longList + "\n二、包括以下内容：\n三、是否适用？",
			want: []outlineSec{
				{path("一、总则"), "一、员工应当遵守公司的各项规章制度。\n" + longList + "\n二、包括以下内容：\n三、是否适用？"},
			},
		},
		{
			name:    "code fence is not parsed",
			format:  Markdown,
			content: "# 部署\n```bash\n# 安装依赖\n第一章 不是标题\n\n一、也不是\n```\n## 验证\n运行测试。",
			want: []outlineSec{
				{path("部署"), "```bash\n# 安装依赖\n第一章 不是标题\n一、也不是\n```"},
				{path("部署", "验证"), "运行测试。"},
			},
		},
		{
			name:    "text before the first heading",
			format:  Markdown,
			content: "前言：本文说明报销流程。\n\n# 报销\n正文。",
			want: []outlineSec{
				{nil, "前言：本文说明报销流程。"},
				{path("报销"), "正文。"},
			},
		},
		{
			name:    "markdown heading in plain text is body",
			format:  Text,
			content: "# 标题\n正文。",
			want:    []outlineSec{{nil, "# 标题\n正文。"}},
		},
		{
			name:    "crlf and indentation",
			format:  Markdown,
			content: "# 标题\r\n  正文一。  \r\n\r\n\t第一章 总则\r\n正文二。\r\n",
			want: []outlineSec{
				{path("标题"), "正文一。"},
				{path("标题", "第一章 总则"), "正文二。"},
			},
		},
		{
			name:    "no headings",
			format:  Text,
			content: "只有一段正文。没有标题。",
			want:    []outlineSec{{nil, "只有一段正文。没有标题。"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outlineOf(parseOutline(tt.content, tt.format))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseOutline(%q) mismatch (-want +got):\n%s", tt.content, diff)
			}
		})
	}
}

// chunkView is a chunk as the tests compare it.
type chunkView struct {
	Path []string
	Text string
}

func chunksOf(d index.Document) []chunkView {
	var out []chunkView
	for _, c := range d.Chunks {
		out = append(out, chunkView{c.HeadingPath, c.Text})
	}
	return out
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name      string
		in        Input
		wantTitle string
		want      []chunkView
	}{
		{
			name:      "title from the first # heading",
			in:        Input{ID: "hr/leave", Format: Markdown, Content: "前言。\n## 概述\n概述正文。\n# 请假制度\n正文。\n# 第二个一级标题\n正文二。"},
			wantTitle: "请假制度",
			want: []chunkView{
				{nil, "前言。"},
				{path("概述"), "概述正文。"},
				{path("请假制度"), "正文。"},
				{path("第二个一级标题"), "正文二。"},
			},
		},
		{
			name:      "input title wins over the heading",
			in:        Input{ID: "a", Title: "给定标题", Format: Markdown, Content: "# 文内标题\n正文。"},
			wantTitle: "给定标题",
			want:      []chunkView{{path("文内标题"), "正文。"}},
		},
		{
			name:      "input title without a # heading",
			in:        Input{ID: "a", Title: "给定标题", Format: Markdown, Content: "## 二级\n正文。"},
			wantTitle: "给定标题",
			want:      []chunkView{{path("二级"), "正文。"}},
		},
		{
			name:      "id when there is no title",
			in:        Input{ID: "sales/objection", Format: Markdown, Content: "## 二级\n正文。"},
			wantTitle: "sales/objection",
			want:      []chunkView{{path("二级"), "正文。"}},
		},
		{
			name:      "# in plain text is not a title",
			in:        Input{ID: "t", Format: Text, Content: "# 不是标题\n正文。"},
			wantTitle: "t",
			want:      []chunkView{{nil, "# 不是标题\n正文。"}},
		},
		{
			name:      "article text after its number",
			in:        Input{ID: "law", Format: Text, Content: "第一章 总则\n第十二条 员工应当遵守劳动纪律。违者按本制度处理。"},
			wantTitle: "law",
			want:      []chunkView{{path("第一章 总则", "第十二条"), "员工应当遵守劳动纪律。违者按本制度处理。"}},
		},
		{
			name:      "lines of one paragraph keep their newlines",
			in:        Input{ID: "p", Format: Text, Content: "第一行。\n第二行。\n\n第三段。"},
			wantTitle: "p",
			want:      []chunkView{{nil, "第一行。\n第二行。\n第三段。"}},
		},
		{
			name:      "headings only",
			in:        Input{ID: "toc", Format: Markdown, Content: "# 目录\n## 第一章\n## 第二章"},
			wantTitle: "目录",
			want:      []chunkView{{nil, "目录\n目录 > 第一章\n目录 > 第二章"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Build(tt.in, ChunkOptions{})
			if err != nil {
				t.Fatalf("Build(%q) error = %v, want nil", tt.in.Content, err)
			}
			if d.Title != tt.wantTitle {
				t.Errorf("Build(%q).Title = %q, want %q", tt.in.Content, d.Title, tt.wantTitle)
			}
			if diff := cmp.Diff(tt.want, chunksOf(d)); diff != "" {
				t.Errorf("Build(%q) chunks mismatch (-want +got):\n%s", tt.in.Content, diff)
			}
			checkDocument(t, tt.in, d, ChunkOptions{}.withDefaults())
		})
	}
}

// checkDocument asserts what every built document satisfies.
func checkDocument(t *testing.T, in Input, d index.Document, opts ChunkOptions) {
	t.Helper()
	if d.ID != in.ID || d.Source != in.Source || d.Version != in.Version || !cmp.Equal(d.Metadata, in.Metadata) {
		t.Errorf("Build(%q) = {ID %q Source %q Version %d Metadata %v}, want the input's {%q %q %d %v}",
			in.ID, d.ID, d.Source, d.Version, d.Metadata, in.ID, in.Source, in.Version, in.Metadata)
	}
	if d.Hash == "" {
		t.Errorf("Build(%q).Hash is empty, want the sealed hash", in.ID)
	}
	if len(d.Chunks) == 0 {
		t.Errorf("Build(%q) has no chunks, want at least one", in.ID)
	}
	ids := map[string]int{}
	for i, c := range d.Chunks {
		if prev, dup := ids[c.ID]; dup {
			t.Errorf("Build(%q): chunks %d and %d share the id %q", in.ID, prev, i, c.ID)
		}
		ids[c.ID] = i
		if c.Ordinal != i {
			t.Errorf("Build(%q).Chunks[%d].Ordinal = %d, want %d", in.ID, i, c.Ordinal, i)
		}
		if c.DocID != d.ID || c.DocTitle != d.Title || c.Hash == "" {
			t.Errorf("Build(%q).Chunks[%d] = {DocID %q DocTitle %q Hash %q}, want {%q %q non-empty}", in.ID, i, c.DocID, c.DocTitle, c.Hash, d.ID, d.Title)
		}
		if strings.TrimSpace(c.Text) == "" || c.Text != strings.TrimSpace(c.Text) {
			t.Errorf("Build(%q).Chunks[%d].Text = %q, want non-empty and trimmed", in.ID, i, c.Text)
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("Build(%q).Chunks[%d].Text = %q, want valid UTF-8", in.ID, i, c.Text)
		}
		if n := utf8.RuneCountInString(c.Text); n > opts.Max {
			t.Errorf("Build(%q).Chunks[%d] has %d runes, want at most %d", in.ID, i, n, opts.Max)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		wantIs  error
		wantMsg string
	}{
		{"empty", Input{ID: "a", Content: ""}, ErrEmpty, "empty"},
		{"whitespace", Input{ID: "a", Content: " \n\t\u3000\r\n"}, ErrEmpty, "empty"},
		{"invalid utf-8", Input{ID: "a", Content: "abc\xff\xfe"}, nil, "not valid UTF-8"},
		{"no id", Input{Content: "正文。"}, index.ErrInvalid, "id is empty"},
		{"newline in id", Input{ID: "a\nb", Content: "正文。"}, index.ErrInvalid, "NUL or newline"},
		{"bad metadata key", Input{ID: "a", Content: "正文。", Metadata: map[string]string{"a=b": "c"}}, index.ErrInvalid, "metadata key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.in, ChunkOptions{})
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Build(%q) error = %v, want %v containing %q", tt.in.Content, err, tt.wantIs, tt.wantMsg)
			}
		})
	}
}

func TestChunkOptionsDefaults(t *testing.T) {
	tests := []struct {
		in, want ChunkOptions
	}{
		{ChunkOptions{}, ChunkOptions{Target: 300, Max: 600}},
		{ChunkOptions{Target: 100}, ChunkOptions{Target: 100, Max: 200}},
		{ChunkOptions{Target: 100, Max: 50}, ChunkOptions{Target: 100, Max: 100}},
		{ChunkOptions{Target: -1, Max: 1000}, ChunkOptions{Target: 300, Max: 1000}},
		{ChunkOptions{Max: 100}, ChunkOptions{Target: 300, Max: 300}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("ChunkOptions(%+v).withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"没有句末标点", []string{"没有句末标点"}},
		{"第一句。第二句！第三句？第四句；尾巴", []string{"第一句。", "第二句！", "第三句？", "第四句；", "尾巴"}},
		{"他说：“好。”然后走了。", []string{"他说：“好。”", "然后走了。"}},
		{"（注意！）下一句。", []string{"（注意！）", "下一句。"}},
		{"Really?! Yes; ok", []string{"Really?", "!", " Yes;", " ok"}},
		{"逗号，冒号：不算", []string{"逗号，冒号：不算"}},
	}
	for _, tt := range tests {
		if got := splitSentences(tt.in); !cmp.Equal(got, tt.want) {
			t.Errorf("splitSentences(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCutChunks(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		opts  ChunkOptions
		want  []string
	}{
		{
			name:  "nothing",
			lines: []string{"", ""},
			opts:  ChunkOptions{Target: 10, Max: 20},
			want:  nil,
		},
		{
			name:  "sentences pack up to target",
			lines: []string{"一二三四五。六七八九十。甲乙丙。"},
			opts:  ChunkOptions{Target: 10, Max: 20},
			want:  []string{"一二三四五。", "六七八九十。甲乙丙。"},
		},
		{
			name:  "cut after a sentence end, not inside the sentence",
			lines: []string{"短句。这是一个比较长的句子，后面还有逗号，一直到句号。尾句！"},
			opts:  ChunkOptions{Target: 8, Max: 40},
			want:  []string{"短句。", "这是一个比较长的句子，后面还有逗号，一直到句号。", "尾句！"},
		},
		{
			name:  "lines join with newlines",
			lines: []string{"第一行。", "", "第二行。"},
			opts:  ChunkOptions{Target: 100, Max: 200},
			want:  []string{"第一行。\n第二行。"},
		},
		{
			name:  "hard cut of a sentence over max",
			lines: []string{strings.Repeat("字", 25)},
			opts:  ChunkOptions{Target: 5, Max: 10},
			want:  []string{strings.Repeat("字", 10), strings.Repeat("字", 10), strings.Repeat("字", 5)},
		},
		{
			name:  "hard cut after a pending chunk",
			lines: []string{"前句。" + strings.Repeat("字", 12) + "。后句。"},
			opts:  ChunkOptions{Target: 10, Max: 10},
			want:  []string{"前句。", strings.Repeat("字", 10), "字字。后句。"},
		},
		{
			name:  "newlines count toward max",
			lines: []string{"aaaaa", "bbbbb", "ccccc"},
			opts:  ChunkOptions{Target: 10, Max: 10},
			want:  []string{"aaaaa", "bbbbb", "ccccc"},
		},
		{
			name:  "short lines pack",
			lines: []string{"aaaa", "bbbb"},
			opts:  ChunkOptions{Target: 10, Max: 10},
			want:  []string{"aaaa\nbbbb"},
		},
		{
			name:  "spaces at a cut are trimmed",
			lines: []string{"one! two! three!"},
			opts:  ChunkOptions{Target: 5, Max: 10},
			want:  []string{"one!", "two!", "three!"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cutChunks(tt.lines, tt.opts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cutChunks(%q) mismatch (-want +got):\n%s", tt.lines, diff)
			}
		})
	}
}

// handbook builds a Markdown document whose sections each hold n sentences
// that name their section, so that a test can tell which section a chunk's
// text came from.
func handbook(sections []string, n int) string {
	var b strings.Builder
	b.WriteString("# 员工手册\n")
	for i, s := range sections {
		fmt.Fprintf(&b, "## %s\n", s)
		for j := range n {
			fmt.Fprintf(&b, "【节%d】这是第%d句，讲述本节的规定和适用的具体情形。", i, j)
			if j%4 == 3 {
				b.WriteString("\n\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestBuildChunks(t *testing.T) {
	sections := []string{"考勤", "请假", "报销", "培训"}
	in := Input{ID: "handbook", Format: Markdown, Content: handbook(sections, 40)}
	for _, opts := range []ChunkOptions{{}, {Target: 100, Max: 150}, {Target: 60, Max: 60}} {
		t.Run(fmt.Sprintf("target %d max %d", opts.Target, opts.Max), func(t *testing.T) {
			d, err := Build(in, opts)
			if err != nil {
				t.Fatalf("Build(%q) error = %v, want nil", in.ID, err)
			}
			opts := opts.withDefaults()
			checkDocument(t, in, d, opts)
			perSection := map[int]int{}
			for i, c := range d.Chunks {
				// A chunk never spans two headings: all its sentences name the
				// section of its heading path.
				sec := -1
				for j, s := range sections {
					if cmp.Equal(c.HeadingPath, path("员工手册", s)) {
						sec = j
					}
				}
				if sec < 0 {
					t.Fatalf("Build(%q).Chunks[%d].HeadingPath = %q, want one of the sections", in.ID, i, c.HeadingPath)
				}
				perSection[sec]++
				if want := strings.Count(c.Text, "【"); strings.Count(c.Text, fmt.Sprintf("【节%d】", sec)) != want {
					t.Errorf("Build(%q).Chunks[%d] (%q) = %q, want only sentences of its section", in.ID, i, c.HeadingPath, c.Text)
				}
				// Sentences are short, so every chunk ends at a sentence end and
				// none grows past the target.
				if !strings.HasSuffix(c.Text, "。") {
					t.Errorf("Build(%q).Chunks[%d].Text = %q, want it to end at a sentence end", in.ID, i, c.Text)
				}
				if n := utf8.RuneCountInString(c.Text); n > opts.Target {
					t.Errorf("Build(%q).Chunks[%d] has %d runes, want at most the target %d", in.ID, i, n, opts.Target)
				}
			}
			if len(perSection) != len(sections) {
				t.Errorf("Build(%q) has chunks in %d sections, want %d", in.ID, len(perSection), len(sections))
			}
			// Nothing is lost: the chunks hold every sentence.
			var all strings.Builder
			for _, c := range d.Chunks {
				all.WriteString(c.Text)
			}
			if got, want := strings.Count(all.String(), "【"), 40*len(sections); got != want {
				t.Errorf("Build(%q) chunks hold %d sentences, want %d", in.ID, got, want)
			}
		})
	}
}

func TestBuildLongSentence(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteRune(rune('一' + i%500))
	}
	long := b.String()
	in := Input{ID: "long", Format: Text, Content: "# 标题\n" + long}
	d, err := Build(in, ChunkOptions{})
	if err != nil {
		t.Fatalf("Build(%q) error = %v, want nil", in.ID, err)
	}
	checkDocument(t, in, d, ChunkOptions{}.withDefaults())
	var got []int
	var text strings.Builder
	for _, c := range d.Chunks[1:] { // Chunks[0] is the "# 标题" line
		got = append(got, utf8.RuneCountInString(c.Text))
		text.WriteString(c.Text)
	}
	want := []int{600, 600, 600, 600, 600, 600, 600, 600, 200}
	if !cmp.Equal(got, want) {
		t.Errorf("Build(%q) chunk sizes = %v, want %v", in.ID, got, want)
	}
	if text.String() != long {
		t.Errorf("Build(%q) chunks joined differ from the sentence", in.ID)
	}
}

func TestBuildStableIDs(t *testing.T) {
	sections := []string{"考勤", "请假", "报销", "培训"}
	in := Input{ID: "handbook", Source: "/docs/handbook.md", Format: Markdown, Content: handbook(sections, 30), Metadata: map[string]string{"folder": "hr"}}
	d1, err := Build(in, ChunkOptions{})
	if err != nil {
		t.Fatalf("Build(%q) error = %v, want nil", in.ID, err)
	}
	d2, err := Build(in, ChunkOptions{})
	if err != nil {
		t.Fatalf("Build(%q) error = %v, want nil", in.ID, err)
	}
	if diff := cmp.Diff(d1, d2); diff != "" {
		t.Errorf("Build(%q) twice differs (-first +second):\n%s", in.ID, diff)
	}

	// Edit two sections: change a sentence of 请假, and add text to 报销 so
	// that it grows by chunks and the ordinals of 培训 after it shift.
	edited := in
	edited.Content = strings.Replace(in.Content, "## 报销\n", "## 报销\n"+strings.Repeat("报销须在发生后三十日内提交，并附原始发票。", 20)+"\n", 1)
	edited.Content = strings.Replace(edited.Content, "【节1】这是第0句", "【节1】这是修改过的第0句", 1)
	d3, err := Build(edited, ChunkOptions{})
	if err != nil {
		t.Fatalf("Build(%q) error = %v, want nil", edited.ID, err)
	}
	if d3.Hash == d1.Hash {
		t.Errorf("Build(%q).Hash = %q after an edit, want a new hash", edited.ID, d3.Hash)
	}
	type idHash struct{ ID, Hash string }
	bySection := func(d index.Document) map[string][]idHash {
		m := map[string][]idHash{}
		for _, c := range d.Chunks {
			k := index.HeadingString(c.HeadingPath)
			m[k] = append(m[k], idHash{c.ID, c.Hash})
		}
		return m
	}
	firstOrdinal := func(d index.Document, sec string) int {
		for _, c := range d.Chunks {
			if index.HeadingString(c.HeadingPath) == sec {
				return c.Ordinal
			}
		}
		return -1
	}
	if o1, o3 := firstOrdinal(d1, "员工手册 > 培训"), firstOrdinal(d3, "员工手册 > 培训"); o3 <= o1 {
		t.Errorf("section 培训 starts at ordinal %d after the edit, want more than %d", o3, o1)
	}
	before, after := bySection(d1), bySection(d3)
	if len(before) != len(after) {
		t.Fatalf("Build(%q) sections = %d after the edit, want %d", edited.ID, len(after), len(before))
	}
	for sec, was := range before {
		now := after[sec]
		switch sec {
		case "员工手册 > 请假", "员工手册 > 报销":
			// Edited sections: the first chunk changed, and 报销 grew.
			if now[0].Hash == was[0].Hash {
				t.Errorf("section %q: first chunk hash %q unchanged after the edit, want a new hash", sec, now[0].Hash)
			}
			if now[0].ID != was[0].ID {
				t.Errorf("section %q: first chunk id = %q after the edit, want %q (ids follow heading path and ordinal)", sec, now[0].ID, was[0].ID)
			}
		default:
			if diff := cmp.Diff(was, now); diff != "" {
				t.Errorf("section %q: chunks changed although the section was not edited (-before +after):\n%s", sec, diff)
			}
		}
	}
	if n1, n3 := len(after["员工手册 > 报销"]), len(before["员工手册 > 报销"]); n1 <= n3 {
		t.Errorf("section 报销 has %d chunks after the edit, want more than %d", n1, n3)
	}
}

func TestBuildRepeatedHeadings(t *testing.T) {
	tests := []struct {
		name string
		in   Input
	}{
		{"repeated markdown heading", Input{ID: "faq", Format: Markdown, Content: "# 常见问题\n## 注意\n注意事项甲。\n## 注意\n注意事项乙。\n## 注意\n注意事项丙。"}},
		{"article cited at the start of a line", Input{ID: "law", Format: Text, Content: "第一章 总则\n第三条 本制度所称员工是指正式员工。\n第四条 员工应当遵守本制度。\n第三条所称员工不包括实习生。"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Build(tt.in, ChunkOptions{})
			if err != nil {
				t.Fatalf("Build(%q) error = %v, want nil", tt.in.Content, err)
			}
			checkDocument(t, tt.in, d, ChunkOptions{}.withDefaults())
		})
	}
}

func TestBuildHeadingsOnly(t *testing.T) {
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "## 第%d部分的标题\n", i)
	}
	in := Input{ID: "toc", Format: Markdown, Content: b.String()}
	opts := ChunkOptions{Target: 20, Max: 30}
	d, err := Build(in, opts)
	if err != nil {
		t.Fatalf("Build(%q) error = %v, want nil", in.Content, err)
	}
	checkDocument(t, in, d, opts)
	var all []string
	for _, c := range d.Chunks {
		if c.HeadingPath != nil {
			t.Errorf("Build(%q) chunk %q has heading path %q, want none", in.ID, c.Text, c.HeadingPath)
		}
		all = append(all, c.Text)
	}
	if got, want := strings.Join(all, "\n"), strings.TrimSpace(strings.ReplaceAll(b.String(), "## ", "")); got != want {
		t.Errorf("Build(%q) chunks = %q, want the headings %q", in.ID, got, want)
	}
	if d.Chunks[0].ID != index.ChunkID(in.ID, nil, 0) {
		t.Errorf("Build(%q).Chunks[0].ID = %q, want %q", in.ID, d.Chunks[0].ID, index.ChunkID(in.ID, nil, 0))
	}
}

// TestCutChunksHugeLine cuts a 3 MB line without punctuation: the hard cut
// must stay linear (it was quadratic, minutes for a 32 MiB file).
func TestCutChunksHugeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("3 MB of text")
	}
	line := strings.Repeat("字", 1<<20)
	opts := ChunkOptions{Target: 50, Max: 100}
	got := cutChunks([]string{line}, opts)
	if len(got) != (1<<20+99)/100 {
		t.Errorf("cutChunks(%d runes) = %d chunks, want %d", 1<<20, len(got), (1<<20+99)/100)
	}
	for i, c := range got {
		if n := utf8.RuneCountInString(c); n > opts.Max || (n < opts.Max && i < len(got)-1) {
			t.Fatalf("cutChunks(%d runes)[%d] has %d runes, want %d", 1<<20, i, n, opts.Max)
		}
	}
	if strings.Join(got, "") != line {
		t.Errorf("cutChunks(%d runes) joined differs from the line", 1<<20)
	}
}
