package rerank_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/rerank/fakellm"
)

// dashScopeStreamRefusal is DashScope's inspection failure as an error
// event inside a 200 stream.
const dashScopeStreamRefusal = `{"error":{"code":"data_inspection_failed","message":"Output data may contain inappropriate content.","type":"data_inspection_failed"}}`

func TestStreamFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		modes        []fakellm.Mode
		timeout      time.Duration
		wantStatus   rerank.Status
		wantOrder    []int // nil: the fused order
		wantPartial  bool
		wantRequests int // 0: not checked
	}{
		{name: "permutation", modes: []fakellm.Mode{fakellm.StreamPermutation(0, 3, 1, 2)},
			wantStatus: rerank.StatusOK, wantOrder: []int{2, 0, 1, 3, 4}, wantRequests: 1},
		{name: "permutation with intervals", modes: []fakellm.Mode{fakellm.StreamPermutation(20*time.Millisecond, 5, 4)},
			wantStatus: rerank.StatusOK, wantOrder: []int{4, 3, 0, 1, 2}, wantRequests: 1},
		{name: "bracket chain split across chunks", modes: []fakellm.Mode{fakellm.StreamChunks(0, "［", "2", "］ > [", "1", "]")},
			wantStatus: rerank.StatusOK, wantOrder: []int{1, 0, 2, 3, 4}, wantRequests: 1},
		{name: "number split across chunks", modes: []fakellm.Mode{fakellm.StreamChunks(0, "4", ",", "5")},
			wantStatus: rerank.StatusOK, wantOrder: []int{3, 4, 0, 1, 2}, wantRequests: 1},
		{name: "none relevant", modes: []fakellm.Mode{fakellm.StreamChunks(0, "0")},
			wantStatus: rerank.StatusOK, wantRequests: 1},
		{name: "prose", modes: []fakellm.Mode{fakellm.StreamChunks(0, "抱歉，", "我无法完成这个请求。")},
			wantStatus: rerank.StatusMalformed, wantRequests: 1},
		{name: "keep-alive lines", modes: []fakellm.Mode{fakellm.StreamKeepAlive(20, fakellm.StreamPermutation(0, 2, 1))},
			wantStatus: rerank.StatusOK, wantOrder: []int{1, 0, 2, 3, 4}, wantRequests: 1},
		{name: "keep-alive lines beyond go-openai's limit", modes: []fakellm.Mode{fakellm.StreamKeepAlive(1000, fakellm.StreamPermutation(0, 2, 1))},
			wantStatus: rerank.StatusOK, wantOrder: []int{1, 0, 2, 3, 4}, wantRequests: 1},
		{name: "cut after 2 ids", modes: []fakellm.Mode{fakellm.StreamCut(3, 1)},
			wantStatus: rerank.StatusOK, wantOrder: []int{2, 0, 1, 3, 4}, wantPartial: true, wantRequests: 1},
		{name: "cut after keep-alives and 1 id", modes: []fakellm.Mode{fakellm.StreamKeepAlive(400, fakellm.StreamCut(4))},
			wantStatus: rerank.StatusOK, wantOrder: []int{3, 0, 1, 2, 4}, wantPartial: true, wantRequests: 1},
		{name: "cut before any id is retried", modes: []fakellm.Mode{fakellm.StreamCut()},
			wantStatus: rerank.StatusStreamCut, wantRequests: 2},
		{name: "cut then ok", modes: []fakellm.Mode{fakellm.StreamCut(), fakellm.StreamPermutation(0, 2)},
			wantStatus: rerank.StatusOK, wantOrder: []int{1, 0, 2, 3, 4}, wantRequests: 2},
		{name: "content_filter chunk", modes: []fakellm.Mode{fakellm.StreamRefusal()},
			wantStatus: rerank.StatusRefused, wantRequests: 1},
		{name: "error event is retried", modes: []fakellm.Mode{fakellm.StreamError()},
			wantStatus: rerank.StatusServerError, wantRequests: 2},
		{name: "error event after keep-alives", modes: []fakellm.Mode{fakellm.StreamKeepAlive(10, fakellm.StreamError())},
			wantStatus: rerank.StatusServerError, wantRequests: 2},
		{name: "error event after an id", modes: []fakellm.Mode{fakellm.StreamErrorEvent(`{"error":{"message":"overloaded","type":"server_error"}}`, 2)},
			wantStatus: rerank.StatusOK, wantOrder: []int{1, 0, 2, 3, 4}, wantPartial: true, wantRequests: 1},
		{name: "refusal event after an id", modes: []fakellm.Mode{fakellm.StreamErrorEvent(dashScopeStreamRefusal, 2)},
			wantStatus: rerank.StatusRefused, wantRequests: 1},
		{name: "HTTP refusal", modes: []fakellm.Mode{fakellm.DashScopeRefusal()},
			wantStatus: rerank.StatusRefused, wantRequests: 1},
		{name: "HTTP 429 beyond budget", modes: []fakellm.Mode{fakellm.RateLimited("30")},
			wantStatus: rerank.StatusRateLimited, wantRequests: 1},
		{name: "slow headers", modes: []fakellm.Mode{fakellm.Delay(10*time.Second, fakellm.StreamPermutation(0, 2, 1))},
			timeout: 200 * time.Millisecond, wantStatus: rerank.StatusTimeout, wantRequests: 1},
		{name: "stall before any id", modes: []fakellm.Mode{fakellm.StreamChunks(time.Minute, "", "2,1")},
			timeout: 300 * time.Millisecond, wantStatus: rerank.StatusTimeout, wantRequests: 1},
		{name: "stall after an unfinished id", modes: []fakellm.Mode{fakellm.StreamChunks(time.Minute, "1", "2,")},
			timeout: 300 * time.Millisecond, wantStatus: rerank.StatusTimeout, wantRequests: 1},
		{name: "stall while thinking", modes: []fakellm.Mode{fakellm.StreamChunks(time.Minute, "<think>先看 1, 2, ", "</think>3")},
			timeout: 300 * time.Millisecond, wantStatus: rerank.StatusTimeout, wantRequests: 1},
		{name: "last id completed by the end of the stream", modes: []fakellm.Mode{fakellm.StreamChunks(0, "3,", "1")},
			wantStatus: rerank.StatusOK, wantOrder: []int{2, 0, 1, 3, 4}, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := fakellm.New(t, tt.modes...)
			l := newLLM(t, rerank.Options{Stream: true, Timeout: tt.timeout}, fake)
			timeout := l.Options().Timeout

			start := time.Now()
			got := l.Rerank(t.Context(), "如何报价", cands(5))
			took := time.Since(start)

			want := tt.wantOrder
			if want == nil {
				want = identity(5)
			}
			if got.Status != tt.wantStatus || !cmp.Equal(got.Order, want) || got.Partial != tt.wantPartial {
				t.Errorf("Rerank() = %v %v partial=%v (%s), want %v %v partial=%v",
					got.Status, got.Order, got.Partial, got.Detail, tt.wantStatus, want, tt.wantPartial)
			}
			if got.Provider != "p0" {
				t.Errorf("Rerank().Provider = %q, want p0", got.Provider)
			}
			if tt.wantRequests > 0 && fake.Count() != tt.wantRequests {
				t.Errorf("server got %d requests, want %d", fake.Count(), tt.wantRequests)
			}
			if slack := time.Second; took > timeout+slack {
				t.Errorf("Rerank() took %v, want at most %v + %v", took, timeout, slack)
			}
			if (got.Err() == nil) != (got.Status == rerank.StatusOK) {
				t.Errorf("Result.Err() = %v with status %v", got.Err(), got.Status)
			}
		})
	}
}

// isPrefixOrder reports whether order is the completion of a non-empty
// proper prefix of ids (0-based): the ids received before the stream was
// cut short, then the others in fused order.
func isPrefixOrder(order, ids []int) bool {
	for k := 1; k < len(ids); k++ {
		want := slices.Clone(ids[:k])
		for i := range len(order) {
			if !slices.Contains(want, i) {
				want = append(want, i)
			}
		}
		if slices.Equal(order, want) {
			return true
		}
	}
	return false
}

// TestStreamDeadlinePartial streams 3 ids 500 ms apart (the last one
// unfinished until the finish chunk at 1.5 s) and ends the call at 1.2 s,
// by the Timeout option or by the caller's deadline: the ids received so
// far are used. The margins are wide: any of the first two ids may have
// arrived, but not the third.
func TestStreamDeadlinePartial(t *testing.T) {
	t.Parallel()
	const interval, deadline = 500 * time.Millisecond, 1200 * time.Millisecond
	tests := []struct {
		name      string
		opts      rerank.Options
		callerTTL time.Duration // 0: none
	}{
		{"Timeout option", rerank.Options{Timeout: deadline}, 0},
		{"caller deadline", rerank.Options{Timeout: 10 * time.Second}, deadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := fakellm.New(t, fakellm.StreamPermutation(interval, 3, 1, 2))
			tt.opts.Stream = true
			l := newLLM(t, tt.opts, fake)
			ctx := t.Context()
			if tt.callerTTL > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.callerTTL)
				defer cancel()
			}
			start := time.Now()
			got := l.Rerank(ctx, "q", cands(5))
			took := time.Since(start)
			if got.Status != rerank.StatusOK || !got.Partial || !isPrefixOrder(got.Order, []int{2, 0, 1}) {
				t.Errorf("Rerank() = %v %v partial=%v (%s), want ok, partial, starting with a prefix of [2 0 1]",
					got.Status, got.Order, got.Partial, got.Detail)
			}
			if took > deadline+time.Second {
				t.Errorf("Rerank() took %v, want about %v", took, deadline)
			}
			if fake.Count() != 1 {
				t.Errorf("server got %d requests, want 1", fake.Count())
			}
			select {
			case <-fake.Canceled():
			case <-time.After(5 * time.Second):
				t.Errorf("the stream was not abandoned by the client")
			}
		})
	}
}

func TestStreamUsageAndRequest(t *testing.T) {
	t.Parallel()
	fake := fakellm.New(t, fakellm.StreamPermutation(0, 2, 1))
	l := newLLM(t, rerank.Options{Stream: true}, fake)
	got := l.Rerank(t.Context(), "q", cands(3))
	if got.Status != rerank.StatusOK || got.Partial {
		t.Fatalf("Rerank() = %v partial=%v (%s), want ok", got.Status, got.Partial, got.Detail)
	}
	if diff := cmp.Diff(rerank.Usage{Prompt: 120, Completion: 6, Cached: 96}, got.Usage); diff != "" {
		t.Errorf("Rerank().Usage mismatch (-want +got):\n%s", diff)
	}
	fields := fake.Requests()[0].Fields()
	if string(fields["stream"]) != "true" {
		t.Errorf("request stream = %s, want true", fields["stream"])
	}
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	if err := json.Unmarshal(fields["stream_options"], &so); err != nil || !so.IncludeUsage {
		t.Errorf("request stream_options = %s, want include_usage true", fields["stream_options"])
	}

	// Without Stream, no stream is asked for.
	plain := fakellm.New(t, fakellm.Permutation(2, 1))
	newLLM(t, rerank.Options{}, plain).Rerank(t.Context(), "q", cands(3))
	if f := plain.Requests()[0].Fields(); string(f["stream"]) == "true" || f["stream_options"] != nil {
		t.Errorf("plain request has stream fields: %s", plain.Requests()[0].Body)
	}
}

func TestStreamHedging(t *testing.T) {
	t.Parallel()
	// p0 sends its headers and then nothing; p1, asked after the hedge
	// delay, answers in full.
	slow := fakellm.New(t, fakellm.StreamChunks(time.Minute, ""))
	fast := fakellm.New(t, fakellm.StreamPermutation(0, 3, 2, 1))
	l := newLLM(t, rerank.Options{Stream: true, Timeout: 3 * time.Second, HedgeDelay: 50 * time.Millisecond}, slow, fast)
	got := l.Rerank(t.Context(), "q", cands(3))
	if want := []int{2, 1, 0}; got.Status != rerank.StatusOK || got.Provider != "p1" || got.Partial || !cmp.Equal(got.Order, want) {
		t.Errorf("Rerank() = %v %v from %q partial=%v, want ok %v from p1", got.Status, got.Order, got.Provider, got.Partial, want)
	}
	select {
	case <-slow.Canceled():
	case <-time.After(5 * time.Second):
		t.Errorf("the slow provider's stream was not canceled")
	}
}

func TestStreamPartialNotCached(t *testing.T) {
	t.Parallel()
	fake := fakellm.New(t, fakellm.StreamCut(2))
	l := newLLM(t, rerank.Options{Stream: true}, fake)
	for i := range 3 {
		got := l.Rerank(t.Context(), "q", cands(3))
		if got.Status != rerank.StatusOK || !got.Partial || got.Cached || !cmp.Equal(got.Order, []int{1, 0, 2}) {
			t.Errorf("call %d: Rerank() = %v %v partial=%v cached=%v, want ok partial [1 0 2], not cached",
				i, got.Status, got.Order, got.Partial, got.Cached)
		}
		time.Sleep(20 * time.Millisecond) // time for an (unwanted) async cache write
	}
	if fake.Count() != 3 {
		t.Errorf("server got %d requests, want 3 (partial answers are not cached)", fake.Count())
	}
}

func TestStreamCircuitBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		mode         fakellm.Mode
		calls        int
		wantLast     rerank.Status
		wantRequests int
	}{
		// Two attempts per call; the breaker opens after the second failure.
		{"cuts without ids open", fakellm.StreamCut(), 3, rerank.StatusCircuitOpen, 2},
		{"partial answers do not open", fakellm.StreamCut(1), 3, rerank.StatusOK, 3},
		{"refusals do not open", fakellm.StreamRefusal(), 3, rerank.StatusRefused, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := fakellm.New(t, tt.mode)
			l := newLLM(t, rerank.Options{Stream: true, BreakerFailures: 2, BreakerCooldown: time.Minute, CacheSize: -1}, fake)
			var got rerank.Result
			for range tt.calls {
				got = l.Rerank(t.Context(), "q", cands(3))
			}
			if got.Status != tt.wantLast {
				t.Errorf("last Rerank() = %v (%s), want %v", got.Status, got.Detail, tt.wantLast)
			}
			if fake.Count() != tt.wantRequests {
				t.Errorf("server got %d requests, want %d", fake.Count(), tt.wantRequests)
			}
		})
	}
}

func TestStreamNoGoroutineLeak(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	if testing.Short() {
		t.Skip("slow")
	}
	// stall sends headers and then nothing; oneID sends one id and stalls.
	// Every call ends at the deadline: the first LLM's calls time out, the
	// second's (oneID as hedge) time out or use oneID's partial id.
	stall := fakellm.New(t, fakellm.StreamChunks(time.Minute, "", "1"))
	oneID := fakellm.New(t, fakellm.StreamPermutation(time.Minute, 2, 1))
	opts := rerank.Options{Stream: true, Timeout: 40 * time.Millisecond, HedgeDelay: 5 * time.Millisecond,
		BreakerFailures: -1, CacheSize: -1}
	timeouts := newLLM(t, opts, stall)
	mixed := newLLM(t, opts, stall, oneID)
	before := runtime.NumGoroutine()

	const calls, workers = 400, 40
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := make(map[string]int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				l, name := timeouts, "stall"
				if i%2 == 1 {
					l, name = mixed, "stall+hedge"
				}
				got := l.Rerank(t.Context(), fmt.Sprint("q", i), cands(3)) // distinct: no singleflight sharing
				switch {
				case got.Status == rerank.StatusTimeout && cmp.Equal(got.Order, identity(3)):
				case l == mixed && got.Status == rerank.StatusOK && got.Partial && cmp.Equal(got.Order, []int{1, 0, 2}):
				default:
					t.Errorf("%s: Rerank() = %v %v partial=%v (%s), want timeout (or, with the hedge, ok partial [1 0 2])",
						name, got.Status, got.Order, got.Partial, got.Detail)
				}
				mu.Lock()
				outcomes[fmt.Sprintf("%s: %s partial=%v", name, got.Status, got.Partial)]++
				mu.Unlock()
			}
		})
	}
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	timeouts.Close()
	mixed.Close()
	t.Logf("outcomes: %v", outcomes)

	// Connections close asynchronously on both sides; poll until the
	// count settles or a generous deadline passes.
	const slack = 5
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for now := runtime.NumGoroutine(); now > before+slack; now = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after %d calls\n%s", before, now, calls, buf[:runtime.Stack(buf, true)])
		}
		timeouts.Close()
		mixed.Close()
		runtime.Gosched()
		<-tick.C
	}
}
