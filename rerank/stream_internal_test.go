package rerank

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func TestCompleteIDs(t *testing.T) {
	tests := []struct {
		name    string
		content string
		n       int
		want    []int
	}{
		{"last id may go on", "3,1,2", 5, []int{2, 0}},
		{"separator completes", "3,1,2,", 5, []int{2, 0, 1}},
		{"a lone digit is not complete", "1", 20, nil},
		{"1 then 2 is 12, not 1", "12", 20, nil},
		{"12 complete", "12,", 20, []int{11}},
		{"12 out of range", "12,", 5, nil},
		{"full-width", "３，１", 5, []int{2}},
		{"bracket chain, last open", "[3] > [1", 5, []int{2}},
		{"bracket started: bare numbers do not count", "前5个：[", 5, nil},
		{"bracket started after a bracketed id", "[3] > [", 5, []int{2}},
		{"thinking not finished", "<think>先看 1, 2, 3 ", 5, nil},
		{"after thinking", "<think>1,2,3</think>4,", 5, []int{3}},
		{"zero is not an id", "0,", 5, nil},
		{"empty", "", 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := completeIDs(tt.content, tt.n); !cmp.Equal(got, tt.want) {
				t.Errorf("completeIDs(%q, %d) = %v, want %v", tt.content, tt.n, got, tt.want)
			}
		})
	}
}

func TestSSEFilter(t *testing.T) {
	in := ": keep-alive\n\n\n: keep-alive\n\n" +
		"data: {\"a\":1}\n\n" +
		": keep-alive\n\n\n\n" +
		"data: {\"error\":{\"message\":\"x\"}}\n\n" +
		"data: [DONE]\n\n" +
		"data: tail-without-newline"
	rec := &recorder{}
	// One byte at a time: lines must survive any read size.
	f := &sseFilter{body: io.NopCloser(strings.NewReader(in)), r: bufio.NewReader(iotest.OneByteReader(strings.NewReader(in))), rec: rec, blank: true}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("ReadAll = %v", err)
	}
	want := "data: {\"a\":1}\n\n" +
		"data: {\"error\":{\"message\":\"x\"}}\n\n" +
		"data: [DONE]\n\n" +
		"data: tail-without-newline"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("filtered stream mismatch (-want +got):\n%s", diff)
	}
	if !rec.done {
		t.Errorf("recorder.done = false, want true after data: [DONE]")
	}

	// A read error after the last line is delivered after that line, and
	// stays.
	broken := io.MultiReader(strings.NewReader("data: 1\n: ka\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	f = &sseFilter{body: io.NopCloser(broken), r: bufio.NewReader(broken), rec: &recorder{}, blank: true}
	got, err = io.ReadAll(f)
	if string(got) != "data: 1\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAll(broken) = %q, %v; want %q, unexpected EOF", got, err, "data: 1\n")
	}
	if _, err := f.Read(make([]byte, 8)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Read after the error = %v, want unexpected EOF again", err)
	}
}
