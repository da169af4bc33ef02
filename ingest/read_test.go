package ingest

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	xunicode "golang.org/x/text/encoding/unicode"
)

const sample = "第一章 总则\n第一条 员工应当遵守公司制度。\n"

func encode(t *testing.T, enc encoding.Encoding, s string) []byte {
	t.Helper()
	b, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode %q: %v", s, err)
	}
	return b
}

// randomBytes returns n bytes from a fixed seed; with noNUL they avoid 0 so
// that Decode cannot stop at a NUL byte.
func randomBytes(seed uint64, n int, noNUL bool) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
		if noNUL && b[i] == 0 {
			b[i] = 1
		}
	}
	return b
}

// gbkRange maps bytes into 0x81–0xFE, where GBK's lead and trail bytes lie.
func gbkRange(b []byte) []byte {
	for i := range b {
		b[i] = 0x81 + b[i]%0x7E
	}
	return b
}

func TestDecode(t *testing.T) {
	utf16LE := xunicode.UTF16(xunicode.LittleEndian, xunicode.UseBOM)
	utf16BE := xunicode.UTF16(xunicode.BigEndian, xunicode.UseBOM)
	supplementary := "生僻字𠮷和欧元符号€。"
	tests := []struct {
		name     string
		in       []byte
		wantText string
		wantEnc  string
		wantErr  error
	}{
		{name: "utf-8", in: []byte(sample), wantText: sample, wantEnc: "utf-8"},
		{name: "utf-8 ascii", in: []byte("plain ASCII text\r\n"), wantText: "plain ASCII text\r\n", wantEnc: "utf-8"},
		{name: "utf-8 with bom", in: append([]byte{0xEF, 0xBB, 0xBF}, sample...), wantText: sample, wantEnc: "utf-8"},
		{name: "utf-16 le with bom", in: encode(t, utf16LE, sample), wantText: sample, wantEnc: "utf-16"},
		{name: "utf-16 be with bom", in: encode(t, utf16BE, sample), wantText: sample, wantEnc: "utf-16"},
		{name: "utf-16 le supplementary", in: encode(t, utf16LE, supplementary), wantText: supplementary, wantEnc: "utf-16"},
		{name: "gbk", in: encode(t, simplifiedchinese.GBK, sample), wantText: sample, wantEnc: "gb18030"},
		{name: "gb18030 four-byte", in: encode(t, simplifiedchinese.GB18030, supplementary), wantText: supplementary, wantEnc: "gb18030"},
		{name: "nul bytes", in: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), wantErr: ErrBinary},
		{name: "nul after text", in: []byte("看起来像文本\x00\x01\x02"), wantErr: ErrBinary},
		{name: "random bytes", in: randomBytes(1, 4096, false), wantErr: ErrBinary},
		{name: "random bytes without nul", in: randomBytes(2, 4096, true), wantErr: ErrBinary},
		{name: "random gbk-range bytes", in: gbkRange(randomBytes(3, 2048, false)), wantErr: ErrBinary},
		{name: "control characters", in: []byte("\x01\x02\x03\x04\x05\x06abcdefghij"), wantErr: ErrBinary},
		{name: "utf-16 with nul characters", in: encode(t, utf16LE, "ab\x00\x00cd"), wantErr: ErrBinary},
		{name: "empty", in: nil, wantErr: ErrEmpty},
		{name: "whitespace", in: []byte(" \r\n\t \n"), wantErr: ErrEmpty},
		{name: "ideographic space", in: []byte("\u3000\u3000\n"), wantErr: ErrEmpty},
		{name: "utf-8 bom only", in: []byte{0xEF, 0xBB, 0xBF}, wantErr: ErrEmpty},
		{name: "utf-8 bom and spaces", in: []byte("\xEF\xBB\xBF  \n"), wantErr: ErrEmpty},
		{name: "utf-16 bom only", in: []byte{0xFF, 0xFE}, wantErr: ErrEmpty},
		{name: "utf-16 spaces", in: encode(t, utf16BE, "  \n "), wantErr: ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, enc, err := Decode(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Decode(%q) = %q, %q, %v, want error %v", tt.in, text, enc, err, tt.wantErr)
				}
				return
			}
			if err != nil || text != tt.wantText || enc != tt.wantEnc {
				t.Errorf("Decode(%q) = %q, %q, %v, want %q, %q, nil", tt.in, text, enc, err, tt.wantText, tt.wantEnc)
			}
		})
	}
}

func TestReadCorpus(t *testing.T) {
	const src = "/data/corpus.jsonl"
	tests := []struct {
		name    string
		in      string
		want    []Input
		wantErr string
		wantIs  error
	}{
		{
			name: "good lines",
			in: `{"id":"q1","title":"请假","text":"员工请假须提前申请。"}
{"id":"q2","title":"报销","text":"报销须附发票。","extra":1}
{"id":"q3","text":"没有标题。"}
`,
			want: []Input{
				{ID: "q1", Title: "请假", Source: src, Format: Text, Content: "员工请假须提前申请。"},
				{ID: "q2", Title: "报销", Source: src, Format: Text, Content: "报销须附发票。"},
				{ID: "q3", Source: src, Format: Text, Content: "没有标题。"},
			},
		},
		{
			name: "blank lines and crlf",
			in:   "\n  \r\n{\"id\":\"a\",\"text\":\"甲。\"}\r\n\n{\"id\":\"b\",\"title\":\"只有标题\"}",
			want: []Input{
				{ID: "a", Source: src, Format: Text, Content: "甲。"},
				{ID: "b", Title: "只有标题", Source: src, Format: Text},
			},
		},
		{
			name:    "bad json names the line",
			in:      "{\"id\":\"a\",\"text\":\"甲。\"}\n\n{\"id\":\"b\",\"text\":",
			wantErr: "line 3: ",
		},
		{
			name:    "not an object",
			in:      `["a","b"]`,
			wantErr: "line 1: ",
		},
		{
			name:    "missing id",
			in:      "{\"id\":\"a\",\"text\":\"甲。\"}\n{\"title\":\"乙\",\"text\":\"乙。\"}",
			wantErr: `line 2: no "id"`,
		},
		{
			name:    "duplicate id",
			in:      "{\"id\":\"a\",\"text\":\"甲。\"}\n{\"id\":\"b\",\"text\":\"乙。\"}\n{\"id\":\"a\",\"text\":\"丙。\"}",
			wantErr: `line 3: id "a" already used on line 1`,
		},
		{
			name:    "no title or text",
			in:      `{"id":"a","title":" ","text":""}`,
			wantErr: `line 1: id "a" has no title or text`,
		},
		{
			name:   "empty file",
			in:     "",
			wantIs: ErrEmpty,
		},
		{
			name:   "only blank lines",
			in:     "\n\n  \n",
			wantIs: ErrEmpty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadCorpus(strings.NewReader(tt.in), src)
			switch {
			case tt.wantIs != nil:
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("ReadCorpus(%q) = %v, %v, want error %v", tt.in, got, err, tt.wantIs)
				}
			case tt.wantErr != "":
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("ReadCorpus(%q) = %v, %v, want error starting with %q", tt.in, got, err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("ReadCorpus(%q) = %v, %v, want nil error", tt.in, got, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ReadCorpus(%q) mismatch (-want +got):\n%s", tt.in, diff)
				}
			}
		})
	}
}

func TestReadCorpusLongLine(t *testing.T) {
	text := strings.Repeat("很长的一行。", 200_000) // 3.6 MB, over bufio's default 64 KiB
	in := `{"id":"long","text":"` + text + `"}`
	got, err := ReadCorpus(strings.NewReader(in), "x")
	if err != nil || len(got) != 1 || got[0].Content != text {
		t.Errorf("ReadCorpus(%d-byte line) = %d inputs, %v, want 1 input with the text", len(in), len(got), err)
	}
}
