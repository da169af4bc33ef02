package eval

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index/indextest"
)

// TestConfigValidate: configurations Run cannot carry out fail before any
// work, naming the problem.
func TestConfigValidate(t *testing.T) {
	an := indextest.Analyzer(t)
	set := &Set{Corpus: "/does/not/exist"}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no set", Config{Analyzer: an}, "no set"},
		{"no analyzer", Config{Set: set}, "no analyzer"},
		{"baseline on an existing collection", Config{Set: set, Analyzer: an, Baseline: true, Collection: "kb"}, "baseline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%s) = %v, want an error mentioning %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestSleepCancelled: the warm-up pause ends when ctx does.
func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("sleep(cancelled ctx) = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("sleep(cancelled ctx) took %v, want at once", d)
	}
	if err := sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("sleep(1ms) = %v, want nil", err)
	}
}
