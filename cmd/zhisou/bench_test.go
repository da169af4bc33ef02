package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchFlags checks that bad bench flags are errors naming the flag,
// before any connection is made.
func TestBenchFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-warmup", "-1s"}, "-warmup"},
		{[]string{"-warmup", "2h"}, "-warmup"},
		{[]string{"-duration", "0s"}, "-duration"},
	} {
		var out, errOut bytes.Buffer
		err := runT(t, append([]string{"bench", "-addr", "127.0.0.1:1"}, tt.args...), envOf(nil), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("bench %v = %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}
