package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

func TestHTMLToMarkdown(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantTitle string
		want      string
	}{
		{
			name: "headings and paragraphs",
			in: `<html><head><title>销售培训 - 价格异议</title></head><body>
<h1>价格异议处理</h1>
<p>客户说“太贵了”时，
   先认同，再说明价值。</p>
<h2>常见  说法</h2><div>第一种：<b>直接</b>  说贵。</div>
<h3>注意</h3>Text  outside
a paragraph&nbsp;&amp; more.
</body></html>`,
			wantTitle: "销售培训 - 价格异议",
			want:      "# 价格异议处理\n客户说“太贵了”时，先认同，再说明价值。\n## 常见 说法\n第一种：直接 说贵。\n### 注意\nText outside a paragraph & more.\n",
		},
		{
			name: "dropped elements",
			in: `<head><style>p { color: red }</style><script>var s = "<p>脚本</p>";</script></head>
<body><header><h1>网站抬头</h1></header><nav><ul><li>首页</li></ul></nav>
<noscript>请启用脚本</noscript><template><p>模板</p></template>
<main><p>正文一。</p>
<aside>侧栏广告</aside><form><label>搜索</label><input name="q"><button>提交</button></form>
<svg><title>图标标题</title><text>图标文字</text></svg>
<div hidden>隐藏的</div><p aria-hidden="true">读屏隐藏</p><p aria-hidden="false">读屏可见。</p>
<span style="display: none">样式隐藏</span>
<p>正文二。</p></main>
<footer>版权所有</footer>`,
			want: "正文一。\n读屏可见。\n正文二。\n",
		},
		{
			name:      "a dropped element left open ends with its parent",
			in:        `<div><nav>菜单<a>链接</div><p>正文。</p><div><aside>广告<p>更多广告`,
			wantTitle: "",
			want:      "正文。\n",
		},
		{
			name: "lists",
			in:   `<p>步骤：</p><ol><li>先认同<li>再说明<ul><li>价值</li><li><p>服务</p></li></ul></li><li></li></ol><p>结束。</p><dl><dt>术语<dd>解释</dl>`,
			want: "步骤：\n- 先认同\n- 再说明\n- 价值\n- 服务\n结束。\n术语\n解释\n",
		},
		{
			name: "tables",
			in: `<table><caption>价格表</caption><thead><tr><th>版本</th><th>价格</th></tr></thead>
<tbody><tr><td>标准版</td><td>1,000 元</td></tr>
<tr><td>企业版<td><p>面议</p><p>含驻场</p>
<tr><td></td><td></td></tr>
<tr><td>旗舰版</td><td><table><tr><td>内</td><td>嵌</td></tr></table></td></tr></tbody></table><p>表后。</p>`,
			want: "价格表\n版本 | 价格\n标准版 | 1,000 元\n企业版 | 面议 含驻场\n旗舰版 | 内 | 嵌\n表后。\n",
		},
		{
			name: "line breaks",
			in:   `<p>第一行<br>第二行<br/>第三行</p><h2>标题<br>副标题</h2><p>a</br>b</p>`,
			want: "第一行\n第二行\n第三行\n## 标题 副标题\na\nb\n",
		},
		{
			name:      "title from the first h1",
			in:        `<svg><title>图标</title></svg><h2>二级</h2><h1> 页面 <i>标题</i> </h1><h1>第二个</h1>`,
			wantTitle: "页面 标题",
			want:      "## 二级\n# 页面 标题\n# 第二个\n",
		},
		{
			name:      "title element wins over the h1",
			in:        "<title>\n  文档\n  标题 </title><h1>正文标题</h1>",
			wantTitle: "文档标题", // a line break between CJK characters is nothing
			want:      "# 正文标题\n",
		},
		{
			name: "implicit ends",
			in:   `<p>一<p>二<div>三</div>四<h2>五<h3>六</h3>七`,
			want: "一\n二\n三\n四\n## 五\n### 六\n七\n",
		},
		{
			name: "markdown in text is escaped",
			in:   "<p># 不是标题</p><p>```</p><pre>\n# 代码注释\n  缩进\n```\n</pre>",
			want: "\\# 不是标题\n\\```\n```\n# 代码注释\n  缩进\n\\```\n```\n",
		},
		{
			name: "an h1 left open is text",
			in:   "<h1>" + strings.Repeat("很长的标题", 30),
			want: strings.Repeat("很长的标题", 30) + "\n",
		},
		{
			name: "empty",
			in:   "<html><head><script>x()</script></head><body> \n </body></html>",
			want: "",
		},
		{
			name: "not html",
			in:   "纯文本，没有标签。",
			want: "纯文本，没有标签。\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, got := htmlToMarkdown(tt.in)
			if title != tt.wantTitle {
				t.Errorf("htmlToMarkdown(%q) title = %q, want %q", tt.in, title, tt.wantTitle)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("htmlToMarkdown(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeHTML(t *testing.T) {
	const body = "<p>价格异议：先认同，再说明价值。</p>"
	tests := []struct {
		name     string
		in       []byte
		wantText string
		wantEnc  string
		wantErr  error
	}{
		{
			name:     "utf-8",
			in:       []byte(`<meta charset="gbk">` + body),
			wantText: `<meta charset="gbk">` + body,
			wantEnc:  "utf-8",
		},
		{
			name:     "gbk with meta charset",
			in:       []byte(`<html><head><meta charset="GBK"></head>` + gbkString(t, body)),
			wantText: `<html><head><meta charset="GBK"></head>` + body,
			wantEnc:  "gb18030",
		},
		{
			name:     "gb2312 with http-equiv",
			in:       []byte(`<meta http-equiv="Content-Type" content="text/html; charset=gb2312">` + gbkString(t, body)),
			wantText: `<meta http-equiv="Content-Type" content="text/html; charset=gb2312">` + body,
			wantEnc:  "gb18030",
		},
		{
			name:     "gbk without meta",
			in:       []byte(gbkString(t, body)),
			wantText: body,
			wantEnc:  "gb18030",
		},
		{
			name:     "big5 with meta charset",
			in:       append([]byte(`<meta charset=big5>`), encode(t, traditionalchinese.Big5, "<p>價格異議</p>")...),
			wantText: `<meta charset=big5><p>價格異議</p>`,
			wantEnc:  "big5",
		},
		{
			name:     "windows-1252 with meta charset",
			in:       append([]byte(`<meta charset="windows-1252">`), encode(t, charmap.Windows1252, "<p>Café à la carte – menu</p>")...),
			wantText: `<meta charset="windows-1252"><p>Café à la carte – menu</p>`,
			wantEnc:  "windows-1252",
		},
		{
			name:     "declared utf-8 with a broken byte",
			in:       []byte(`<meta charset="utf-8"><p>价格异议` + "\xff" + `先认同，再说明价值。</p>`),
			wantText: `<meta charset="utf-8"><p>价格异议` + "\uFFFD" + `先认同，再说明价值。</p>`,
			wantEnc:  "utf-8",
		},
		{
			name:    "nul bytes",
			in:      []byte("<p>\x00\x01\x02</p>\xff"),
			wantErr: ErrBinary,
		},
		{
			name:    "empty",
			in:      []byte(" \n"),
			wantErr: ErrEmpty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, enc, err := decodeHTML(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("decodeHTML(%q) = %q, %q, %v, want error %v", tt.in, text, enc, err, tt.wantErr)
				}
				return
			}
			if err != nil || text != tt.wantText || enc != tt.wantEnc {
				t.Errorf("decodeHTML(%q) = %q, %q, %v, want %q, %q, nil", tt.in, text, enc, err, tt.wantText, tt.wantEnc)
			}
		})
	}
}

func gbkString(t *testing.T, s string) string {
	t.Helper()
	return string(encode(t, simplifiedchinese.GBK, s))
}

// salesPage is an HTML page with the usual chrome around two sections.
const salesPage = `<!DOCTYPE html>
<html lang="zh-CN"><head>
<meta charset="utf-8"><title>价格异议处理 | 销售学院</title>
<style>.nav { display: flex } /* 样式文字 */</style>
<script>window.track("脚本文字");</script>
</head><body>
<header><div class="logo">销售学院</div><nav><a href="/">首页</a><a href="/c">课程</a></nav></header>
<main><article>
<h1>价格异议处理</h1>
<p>客户说“太贵了”，往往不是预算问题，而是没看到价值。</p>
<h2>识别异议</h2>
<p>先问清楚客户和谁比较。</p>
<ul><li>和竞品比较</li><li>和预算比较</li></ul>
<h2>应对方法</h2>
<h3>报价对比</h3>
<table><tr><th>项目</th><th>我方</th><th>竞品</th></tr>
<tr><td>驻场服务</td><td>含三年</td><td>按次收费</td></tr></table>
<p>先认同，再说明总成本。</p>
</article>
<aside>热门课程：侧栏文字</aside></main>
<footer>© 2025 页脚文字</footer>
</body></html>`

func TestReadHTML(t *testing.T) {
	root := t.TempDir()
	gbkPage := `<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>员工手册</title></head>
<body><h1>考勤制度</h1><p>员工每日打卡两次。</p><h2>请假</h2><p>请假须提前申请。</p></body></html>`
	writeFiles(t, root, map[string]string{
		"sales/price.html": salesPage,
		"hr.HTM":           gbkString(t, gbkPage),
		"chrome.html":      "<html><head><title>空页面</title><script>x()</script></head><body><nav>菜单</nav></body></html>",
	})
	ins, failed, err := ReadAll([]string{root}, 0)
	if err != nil {
		t.Fatalf("ReadAll(%q) error = %v, want nil", root, err)
	}
	if got := summarize(t, root, Report{Failed: failed}).Failed; !cmp.Equal(got, []string{"chrome.html: ErrEmpty"}) {
		t.Errorf("ReadAll(%q) failed = %q, want only chrome.html empty", root, got)
	}
	type doc struct {
		Title    string
		Metadata map[string]string
		Chunks   []chunkView
	}
	want := map[string]doc{
		"sales/price": {
			Title:    "价格异议处理 | 销售学院",
			Metadata: map[string]string{"folder": "sales"},
			Chunks: []chunkView{
				{path("价格异议处理"), "客户说“太贵了”，往往不是预算问题，而是没看到价值。"},
				{path("价格异议处理", "识别异议"), "先问清楚客户和谁比较。\n- 和竞品比较\n- 和预算比较"},
				{path("价格异议处理", "应对方法", "报价对比"), "项目 | 我方 | 竞品\n驻场服务 | 含三年 | 按次收费\n先认同，再说明总成本。"},
			},
		},
		"hr": {
			Title:  "员工手册",
			Chunks: []chunkView{{path("考勤制度"), "员工每日打卡两次。"}, {path("考勤制度", "请假"), "请假须提前申请。"}},
		},
	}
	got := map[string]doc{}
	for _, in := range ins {
		if in.Format != Markdown {
			t.Errorf("ReadAll(%q) input %q format = %v, want Markdown", root, in.ID, in.Format)
		}
		d, err := Build(in, ChunkOptions{})
		if err != nil {
			t.Fatalf("Build(%q) error = %v, want nil", in.ID, err)
		}
		checkDocument(t, in, d, ChunkOptions{}.withDefaults())
		got[in.ID] = doc{d.Title, d.Metadata, chunksOf(d)}
		for _, c := range d.Chunks {
			for _, junk := range []string{"样式文字", "脚本文字", "首页", "课程", "侧栏文字", "页脚文字", "销售学院"} {
				if strings.Contains(c.Text, junk) || strings.Contains(strings.Join(c.HeadingPath, "\n"), junk) {
					t.Errorf("Build(%q) chunk %q holds %q from the page's chrome", in.ID, c.Text, junk)
				}
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadAll(%q) documents mismatch (-want +got):\n%s", root, diff)
	}
}

// TestReadHTMLSize checks the size limit on a 50 MB page (a sparse file, so
// the test writes almost nothing) and that a large allowed page, with
// markup built to trip a quadratic parser, converts.
func TestReadHTMLSize(t *testing.T) {
	root := t.TempDir()
	huge := filepath.Join(root, "huge.html")
	if err := os.WriteFile(huge, []byte("<html><body><p>大页面</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 50<<20); err != nil {
		t.Fatal(err)
	}
	_, failed, err := ReadAll([]string{huge}, 0)
	if err != nil || len(failed) != 1 || !errors.Is(failed[0].Err, ErrTooLarge) {
		t.Errorf("ReadAll(50 MB page) = %v, %v, want one %v failure", failed, err, ErrTooLarge)
	}

	if testing.Short() {
		t.Skip("converts a 5 MB page")
	}
	var b strings.Builder
	b.WriteString("<html><head><title>大页面</title></head><body>")
	for i := 0; b.Len() < 2<<20; i++ {
		fmt.Fprintf(&b, "<h2>第%d节</h2><div><p>这是第%d段正文，讲述<b>价格异议</b>的处理。</p><ul><li>要点一<li>要点二</ul>"+
			"<table><tr><td>甲<td>乙<tr><td>丙</table><script>var x = '<p>不要</p>';</script></div>\n", i, i)
	}
	// Deep nesting left open, stray end tags and open dropped elements: each
	// costs a search of the element stack in a naive converter.
	b.WriteString(strings.Repeat("<div><span>", 100_000))
	b.WriteString(strings.Repeat("</em></li>", 100_000))
	b.WriteString(strings.Repeat("<li><td><nav>", 50_000))
	page := filepath.Join(root, "big.html")
	if err := os.WriteFile(page, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ins, failed, err := ReadAll([]string{page}, 8<<20)
	if err != nil || len(failed) != 0 || len(ins) != 1 {
		t.Fatalf("ReadAll(%d-byte page) = %d inputs, %v, %v, want 1 input", b.Len(), len(ins), failed, err)
	}
	d, err := Build(ins[0], ChunkOptions{})
	if err != nil {
		t.Fatalf("Build(%d-byte page) error = %v, want nil", b.Len(), err)
	}
	if d.Title != "大页面" || len(d.Chunks) < 1000 || strings.Contains(ins[0].Content, "不要") {
		t.Errorf("Build(%d-byte page) = title %q, %d chunks, want 大页面, over 1000 chunks and no script text", b.Len(), d.Title, len(d.Chunks))
	}
}
