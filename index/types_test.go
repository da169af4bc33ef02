package index

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestValidateLimits checks that a document over a size limit is refused
// with ErrInvalid and a message naming the limit, and one at the limit is not.
func TestValidateLimits(t *testing.T) {
	chunk := func(text string) Chunk { return Chunk{ID: "d#1", Text: text} }
	meta := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	for _, tt := range []struct {
		name string
		d    Document
		want string // "" for valid
	}{
		{"text at the limit", Document{ID: "d", Chunks: []Chunk{chunk(strings.Repeat("x", MaxDocumentBytes))}}, ""},
		{"text over the limit", Document{ID: "d", Title: "t", Chunks: []Chunk{chunk(strings.Repeat("x", MaxDocumentBytes))}}, "over the limit of 64 MiB"},
		{"metadata at the limit", Document{ID: "d", Metadata: meta(MaxMetadataKeys)}, ""},
		{"metadata over the limit", Document{ID: "d", Metadata: meta(MaxMetadataKeys + 1)}, "257 metadata keys, over the limit of 256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.want)):
				t.Errorf("Validate() = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
}
