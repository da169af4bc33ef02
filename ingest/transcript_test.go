package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Turns of the fixtures in testdata.
var (
	roleplaySRT = []turn{
		{"讲师", "今天我们做一个价格异议的角色扮演，我来演客户，小王演销售。大家注意听开场白。"},
		{"销售", "王总您好，我是星云软件的小王，上周给您发过报价单。"},
		{"客户", "报价我看了，太贵了，比别家高了三成。"},
		{"销售", "理解您的顾虑。我们的价格里包含了三年的驻场服务，别家是按次收费的，算下来总成本更低。"},
		{"客户", "那你们能不能再便宜一点？"},
		{"销售", "价格我们可以谈，但我想先确认一下您最看重的是什么。"},
		{"讲师", "好，停一下。这里小王做得很好，没有急着降价。"},
	}
	roleplayVTT = []turn{
		{"讲师", "下面演练续约谈判，注意倾听客户的真实需求。"},
		{"客户", "合同快到期了，我们在考虑换供应商。主要是响应速度太慢。"},
		{"销售", "非常抱歉给您带来不便，能具体说说是哪次故障吗？"},
		{"客户", "上个月系统宕机，等了四个小时才有人回复。"},
		{"销售", "明白了。续约后我们会给您配专属客户经理，<两小时>内响应。"},
	}
	meetingTXT = []turn{
		{"张经理", "上周新签了三个客户，回款情况还可以。"},
		{"李娜", "华东区的渠道还在谈，预计月底有结果。"},
		{"张经理", "渠道那边要抓紧。另外，下周一之前把报价模板更新一下。"},
		{"王强", "好的，我来负责模板。"},
		{"李娜", "我补充一点，客户反馈培训资料太少。"},
		{"张经理", "那就把培训录音整理出来，放到知识库里。"},
	}
)

func TestParseSubtitles(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantTitle string
		want      []turn
	}{
		{name: "srt fixture", in: readTestdata(t, "roleplay.srt"), want: roleplaySRT},
		{name: "vtt fixture", in: readTestdata(t, "roleplay.vtt"), wantTitle: "续约谈判演练", want: roleplayVTT},
		{
			name: "srt with crlf and no speakers",
			in:   "1\r\n00:00:01,000 --> 00:00:02,000\r\nHello\r\nthere.\r\n\r\n2\r\n00:00:02,500 --> 00:00:04,000\r\n<font color=\"red\">大家好</font>\r\n",
			want: []turn{{"", "Hello there.大家好"}},
		},
		{
			name: "speakers change inside a cue",
			in:   "1\n00:00:01,000 --> 00:00:03,000\nQ：价格能谈吗？\nA：可以谈。\n\n2\n00:00:03,000 --> 00:00:04,000\nQ: 多少？",
			want: []turn{{"Q", "价格能谈吗？"}, {"A", "可以谈。"}, {"Q", "多少？"}},
		},
		{
			name: "a blank line inside a cue's text",
			in:   "1\n00:00:01,000 --> 00:00:03,000\n讲师：第一句。\n\n第二句。\n\n2\n\n3\n00:00:04,000 --> 00:00:05,000\n学员：明白。",
			want: []turn{{"讲师", "第一句。第二句。"}, {"学员", "明白。"}},
		},
		{
			name:      "vtt header, notes and a voice with a label",
			in:        "WEBVTT\n\nNOTE 一行注释\n\n00:01.000 --> 00:02.000\n<v 讲师>注意：这是重点。\n\n00:02.000 --> 00:03.000\n<v 讲师>讲师：继续。",
			wantTitle: "",
			want:      []turn{{"讲师", "注意：这是重点。继续。"}},
		},
		{
			name: "a label alone on its cue",
			in:   "1\n00:00:01,000 --> 00:00:02,000\n销售：\n\n2\n00:00:02,000 --> 00:00:03,000\n您好。",
			want: []turn{{"销售", "您好。"}},
		},
		{
			name: "webvtt in the text is not a header",
			in:   "1\n00:00:01,000 --> 00:00:02,000\nWEBVTT 是字幕格式。",
			want: []turn{{"", "WEBVTT 是字幕格式。"}},
		},
		{name: "nothing", in: "WEBVTT\n\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, got := parseSubtitles(tt.in)
			if title != tt.wantTitle {
				t.Errorf("parseSubtitles(%q) title = %q, want %q", tt.in, title, tt.wantTitle)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseSubtitles(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseTranscript(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantOK    bool
		wantTitle string
		want      []turn
	}{
		{name: "meeting fixture", in: readTestdata(t, "meeting.txt"), wantOK: true, wantTitle: "周例会记录", want: meetingTXT},
		{
			name:   "q and a with half-width colons",
			in:     "Q: 试用期多长？\nA: 三个月。\n\nQ: 可以提前转正吗?\nA: 表现优秀可以申请。",
			wantOK: true,
			want:   []turn{{"Q", "试用期多长？"}, {"A", "三个月。"}, {"Q", "可以提前转正吗?"}, {"A", "表现优秀可以申请。"}},
		},
		{
			name:   "exactly 60 percent",
			in:     "讲师：第一。\n补充一。\n学员：第二。\n补充二。\n讲师：第三。",
			wantOK: true,
			want:   []turn{{"讲师", "第一。补充一。"}, {"学员", "第二。补充二。"}, {"讲师", "第三。"}},
		},
		{
			name:   "text before the first turn has no speaker",
			in:     "以下是录音整理，仅供内部参考。\n销售：您好。\n客户：你好。\n销售：打扰了。",
			wantOK: true,
			want:   []turn{{"", "以下是录音整理，仅供内部参考。"}, {"销售", "您好。"}, {"客户", "你好。"}, {"销售", "打扰了。"}},
		},
		{name: "under 60 percent", in: "讲师：第一。\n补充一。\n学员：第二。\n补充二。\n补充三。\n讲师：第三。"},
		{name: "prose", in: "第一章 总则\n第一条 员工应当遵守公司制度。\n注意：本制度自发布之日起施行。"},
		{name: "a form has no repeated speaker", in: "姓名：张三\n电话：123\n部门：销售部"},
		{name: "times are not speakers", in: "10:30 开会\n11:00 培训\n12:00 午饭"},
		{name: "links are not speakers", in: "https://a.example\nhttps://b.example\nhttps://c.example"},
		{name: "labels too long", in: "这是一个超过十个字的说话人：你好。\n这是一个超过十个字的说话人：再见。"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, got, ok := parseTranscript(tt.in)
			if ok != tt.wantOK || title != tt.wantTitle {
				t.Errorf("parseTranscript(%q) = %q, ok %v, want %q, ok %v", tt.in, title, ok, tt.wantTitle, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseTranscript(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSpeakerLabel(t *testing.T) {
	tests := []struct {
		in            string
		speaker, rest string
		ok            bool
	}{
		{"讲师：今天讲价格异议。", "讲师", "今天讲价格异议。", true},
		{"销售: 您好", "销售", "您好", true},
		{"Q：", "Q", "", true},
		{"[00:01:02] 张经理：开始吧。", "张经理", "开始吧。", true},
		{"00:01:02,500 张经理：开始吧。", "张经理", "开始吧。", true},
		{"(01:02) Speaker 1: hello", "Speaker 1", "hello", true},
		{"客户（王总）：太贵了。", "客户（王总）", "太贵了。", true},
		{"一二三四五六七八九十：十个字。", "一二三四五六七八九十", "十个字。", true},
		{"一二三四五六七八九十一：十一个字。", "", "", false},
		{"他说，价格：太贵。", "", "", false},
		{"12：30", "", "", false},
		{"http://example.com", "", "", false},
		{"：没有说话人", "", "", false},
		{"没有冒号的一行", "", "", false},
		{"a b c d: 三个空格", "", "", false},
	}
	for _, tt := range tests {
		speaker, rest, ok := speakerLabel(tt.in, maxLabelRunes)
		if speaker != tt.speaker || rest != tt.rest || ok != tt.ok {
			t.Errorf("speakerLabel(%q) = %q, %q, %v, want %q, %q, %v", tt.in, speaker, rest, ok, tt.speaker, tt.rest, tt.ok)
		}
	}
}

func TestCutTurns(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		opts  ChunkOptions
		want  []string
	}{
		{
			name:  "whole turns pack up to target",
			lines: []string{"甲：一二三。", "乙：四五。", "", "甲：六七八九。"},
			opts:  ChunkOptions{Target: 12, Max: 20},
			want:  []string{"甲：一二三。\n乙：四五。", "甲：六七八九。"},
		},
		{
			name:  "a turn over target and within max stays whole",
			lines: []string{"甲：短。", "乙：这一轮比目标长，但没有超过上限。", "甲：短。"},
			opts:  ChunkOptions{Target: 8, Max: 30},
			want:  []string{"甲：短。", "乙：这一轮比目标长，但没有超过上限。", "甲：短。"},
		},
		{
			name:  "a turn over max is cut at sentence ends with its label",
			lines: []string{"甲：开场。", "乙：第一句话。第二句话。第三句话。", "甲：好。"},
			opts:  ChunkOptions{Target: 8, Max: 12},
			want:  []string{"甲：开场。", "乙：第一句话。", "乙：第二句话。", "乙：第三句话。", "甲：好。"},
		},
		{
			name:  "a label too long to repeat",
			lines: []string{"很长的名字：一二三四五六"},
			opts:  ChunkOptions{Target: 5, Max: 10},
			want:  []string{"很长的名字：一二三四", "五六"},
		},
		{
			name:  "lines without a speaker",
			lines: []string{"一二三。四五六。七八九。"},
			opts:  ChunkOptions{Target: 4, Max: 8},
			want:  []string{"一二三。", "四五六。", "七八九。"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cutTurns(tt.lines, tt.opts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cutTurns(%q) mismatch (-want +got):\n%s", tt.lines, diff)
			}
		})
	}
}

func TestBuildTranscript(t *testing.T) {
	long := strings.Repeat("我们的方案包含驻场服务和培训，总成本比按次收费更低。", 80) // 2,080 runes
	tests := []struct {
		name  string
		turns []turn
		title string
		opts  ChunkOptions
	}{
		{name: "srt fixture, default sizes", turns: roleplaySRT, title: "roleplay", opts: ChunkOptions{}},
		{name: "srt fixture, small chunks", turns: roleplaySRT, title: "roleplay", opts: ChunkOptions{Target: 60, Max: 80}},
		{name: "vtt fixture, tiny target", turns: roleplayVTT, title: "续约谈判演练", opts: ChunkOptions{Target: 10, Max: 50}},
		{name: "meeting fixture", turns: meetingTXT, opts: ChunkOptions{Target: 40, Max: 60}},
		{name: "a 2,000-character turn", turns: []turn{{"客户", "太贵了。"}, {"销售", long}, {"客户", "明白了。"}}, title: "长回答", opts: ChunkOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{ID: "t", Title: tt.title, Format: Transcript, Content: formatTurns(tt.turns), Metadata: map[string]string{"speakers": "x"}}
			d, err := Build(in, tt.opts)
			if err != nil {
				t.Fatalf("Build(%q) error = %v, want nil", in.Content, err)
			}
			opts := tt.opts.withDefaults()
			checkDocument(t, in, d, opts)
			var texts []string
			for i, c := range d.Chunks {
				var wantPath []string
				if tt.title != "" {
					wantPath = path(tt.title)
				}
				if !cmp.Equal(c.HeadingPath, wantPath) {
					t.Errorf("Build(%q).Chunks[%d].HeadingPath = %q, want %q", in.ID, i, c.HeadingPath, wantPath)
				}
				for line := range strings.Lines(c.Text) {
					if _, _, ok := speakerLabel(line, maxLabelRunes); !ok {
						t.Errorf("Build(%q).Chunks[%d] line %q does not start with a speaker label", in.ID, i, line)
					}
				}
				texts = append(texts, c.Text)
			}
			for _, tn := range tt.turns {
				line := tn.Speaker + "：" + tn.Text
				if utf8.RuneCountInString(line) > opts.Max {
					// Cut at sentence ends: each piece keeps the label, and the
					// pieces hold the whole turn in order.
					var joined strings.Builder
					for _, text := range texts {
						if rest, ok := strings.CutPrefix(text, tn.Speaker+"："); ok && strings.Contains(tn.Text, rest) {
							joined.WriteString(rest)
							if !strings.HasSuffix(rest, "。") || utf8.RuneCountInString(text) > opts.Max {
								t.Errorf("Build(%q) piece %q of a long turn, want it cut at a sentence end within %d runes", in.ID, text, opts.Max)
							}
						}
					}
					if joined.String() != tn.Text {
						t.Errorf("Build(%q) pieces of the long turn join to %d runes, want the turn's %d", in.ID, utf8.RuneCountInString(joined.String()), utf8.RuneCountInString(tn.Text))
					}
					continue
				}
				n := 0
				for _, text := range texts {
					for l := range strings.Lines(text) {
						if strings.TrimSuffix(l, "\n") == line {
							n++
						}
					}
				}
				if n != 1 {
					t.Errorf("Build(%q) has the turn %q whole in %d chunks, want 1", in.ID, line, n)
				}
			}
		})
	}
}

func TestReadTranscripts(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"training/roleplay.srt": readTestdata(t, "roleplay.srt"),
		"training/renew.vtt":    readTestdata(t, "roleplay.vtt"),
		"meeting.txt":           readTestdata(t, "meeting.txt"),
		"notes.txt":             "会议纪要\n时间：周一上午\n地点：三楼会议室\n内容：讨论了报价模板的更新。\n请大家按时参加。",
		"empty.vtt":             "WEBVTT\n\nNOTE 只有注释\n",
	})
	ins, failed, err := ReadAll([]string{root}, 0)
	if err != nil {
		t.Fatalf("ReadAll(%q) error = %v, want nil", root, err)
	}
	if got := summarize(t, root, Report{Failed: failed}).Failed; !cmp.Equal(got, []string{"empty.vtt: ErrEmpty"}) {
		t.Errorf("ReadAll(%q) failed = %q, want only empty.vtt empty", root, got)
	}
	type input struct {
		Title, Content string
		Format         Format
		Metadata       map[string]string
	}
	want := map[string]input{
		"training/roleplay": {"roleplay", formatTurns(roleplaySRT), Transcript, map[string]string{"folder": "training", "speakers": "讲师,销售,客户"}},
		"training/renew":    {"续约谈判演练", formatTurns(roleplayVTT), Transcript, map[string]string{"folder": "training", "speakers": "讲师,客户,销售"}},
		"meeting":           {"周例会记录", formatTurns(meetingTXT), Transcript, map[string]string{"speakers": "张经理,李娜,王强"}},
		"notes":             {"", "会议纪要\n时间：周一上午\n地点：三楼会议室\n内容：讨论了报价模板的更新。\n请大家按时参加。", Text, nil},
	}
	got := map[string]input{}
	for _, in := range ins {
		got[in.ID] = input{in.Title, in.Content, in.Format, in.Metadata}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadAll(%q) inputs mismatch (-want +got):\n%s", root, diff)
	}
	if c := got["training/roleplay"].Content; !strings.HasPrefix(c, "讲师：今天我们做一个价格异议的角色扮演，我来演客户，小王演销售。大家注意听开场白。\n销售：") {
		t.Errorf("ReadAll(%q) roleplay.srt content = %q, want one \"说话人：内容\" line per turn", root, c)
	}
}
