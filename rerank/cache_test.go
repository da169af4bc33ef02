package rerank_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zhisou/zhisou/rerank"
	"github.com/zhisou/zhisou/rerank/fakellm"
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCache(t *testing.T) {
	ctx := t.Context()
	fake := fakellm.New(t, fakellm.Permutation(2, 1))
	l := newLLM(t, rerank.Options{}, fake)
	cs := cands(3)
	first := l.Rerank(ctx, "客户 价格", cs)
	if first.Status != rerank.StatusOK || first.Cached {
		t.Fatalf("first Rerank = %+v, want ok, not cached", first)
	}
	// The cache is filled asynchronously (ristretto): wait until it answers.
	var second rerank.Result
	waitFor(t, func() bool {
		second = l.Rerank(ctx, " 客户  价格 ", cs) // same query after normalisation
		return second.Cached
	})
	calls := fake.Count()
	if diff := cmp.Diff(first.Order, second.Order); diff != "" || second.Usage != (rerank.Usage{}) || second.Cost != 0 {
		t.Errorf("cached Rerank = %+v (order diff %s), want the same order with no usage or cost", second, diff)
	}
	if again := l.Rerank(ctx, "客户 价格", cs); !again.Cached || fake.Count() != calls {
		t.Errorf("third identical Rerank: cached %v, calls %d -> %d; want served from the cache", again.Cached, calls, fake.Count())
	}
	// Other content is another key.
	changed := cands(3)
	changed[1].Text = "改过的段落"
	if r := l.Rerank(ctx, "客户 价格", changed); r.Cached || fake.Count() != calls+1 {
		t.Errorf("Rerank with changed candidate text: cached %v, calls %d; want a new call", r.Cached, fake.Count())
	}
}

func TestCacheSkipsFallbacks(t *testing.T) {
	ctx := t.Context()
	fake := fakellm.New(t, fakellm.HTMLError(502), fakellm.HTMLError(502), fakellm.Permutation(2, 1))
	l := newLLM(t, rerank.Options{}, fake)
	if r := l.Rerank(ctx, "q", cands(3)); r.Status != rerank.StatusServerError {
		t.Fatalf("Rerank = %s, want server_error (a 502, retried once)", r.Status)
	}
	if r := l.Rerank(ctx, "q", cands(3)); r.Status != rerank.StatusOK || r.Cached {
		t.Errorf("Rerank after a fallback = %s (cached %v), want a fresh ok: fallbacks are not cached", r.Status, r.Cached)
	}
}

// TestSingleflight: identical requests in flight share one provider call;
// the usage is reported once.
func TestSingleflight(t *testing.T) {
	ctx := t.Context()
	fake := fakellm.New(t, fakellm.Delay(300*time.Millisecond, fakellm.Permutation(2, 1)))
	l := newLLM(t, rerank.Options{CacheSize: -1}, fake)
	const n = 10
	res := make([]rerank.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = l.Rerank(ctx, "客户", cands(3)) }()
	}
	wg.Wait()
	billed := 0
	for i, r := range res {
		if r.Status != rerank.StatusOK || r.Order[0] != 1 {
			t.Errorf("call %d = %s %v, want ok with the model's order", i, r.Status, r.Order)
		}
		if r.Usage.Prompt > 0 {
			billed++
		}
	}
	if fake.Count() != 1 || billed != 1 {
		t.Errorf("%d identical concurrent calls made %d provider calls and reported usage %d times; want 1 and 1", n, fake.Count(), billed)
	}
}

// TestOverloaded: over MaxInflight distinct calls, a call sheds at once.
func TestOverloaded(t *testing.T) {
	ctx := t.Context()
	fake := fakellm.New(t, fakellm.Delay(2*time.Second, fakellm.Permutation(1)))
	l := newLLM(t, rerank.Options{MaxInflight: 1, Timeout: 3 * time.Second, CacheSize: -1}, fake)
	done := make(chan rerank.Result, 1)
	go func() { done <- l.Rerank(ctx, "第一个问题", cands(3)) }()
	waitFor(t, func() bool { return fake.Count() == 1 })
	start := time.Now()
	r := l.Rerank(ctx, "第二个问题", cands(3))
	if r.Status != rerank.StatusOverloaded || time.Since(start) > time.Second {
		t.Errorf("second call while one is in flight = %s after %v, want overloaded at once", r.Status, time.Since(start))
	}
	if diff := cmp.Diff(identity(3), r.Order); diff != "" {
		t.Errorf("overloaded order (-want +got):\n%s", diff)
	}
	<-done
}

// TestRateLimit: a provider over its request rate is skipped: the next
// provider answers, or the call falls back with status throttled.
func TestRateLimit(t *testing.T) {
	ctx := t.Context()
	limited := fakellm.New(t, fakellm.Permutation(2, 1))
	l := newLLM(t, rerank.Options{CacheSize: -1}, limited)
	// newLLM gives no rate; build one with a limit of 1 per second.
	opts := l.Options()
	opts.Providers[0].RequestsPerSecond = 1
	l2, err := rerank.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if r := l2.Rerank(ctx, "问题一", cands(3)); r.Status != rerank.StatusOK {
		t.Fatalf("first call = %s, want ok", r.Status)
	}
	if r := l2.Rerank(ctx, "问题二", cands(3)); r.Status != rerank.StatusThrottled || limited.Count() != 1 {
		t.Errorf("second call within the second = %s after %d requests, want throttled without a request", r.Status, limited.Count())
	}

	spare := fakellm.New(t, fakellm.Permutation(3, 2, 1))
	opts.Providers = append(opts.Providers, rerank.Provider{Name: "spare", BaseURL: spare.URL, Model: "m", APIKeyEnv: "TEST_KEY"})
	l3, err := rerank.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	l3.Rerank(ctx, "问题三", cands(3))
	if r := l3.Rerank(ctx, "问题四", cands(3)); r.Status != rerank.StatusOK || r.Provider != "spare" {
		t.Errorf("call over the first provider's rate = %s from %q, want ok from spare", r.Status, r.Provider)
	}
}

// TestProviderMaxInflight: a provider at its concurrency cap is skipped for
// the next one.
func TestProviderMaxInflight(t *testing.T) {
	ctx := t.Context()
	slow := fakellm.New(t, fakellm.Delay(2*time.Second, fakellm.Permutation(1)))
	spare := fakellm.New(t, fakellm.Permutation(2, 1))
	opts := rerank.Options{CacheSize: -1, Timeout: 3 * time.Second, HedgeDelay: -1, Getenv: getenv, Providers: []rerank.Provider{
		{Name: "slow", BaseURL: slow.URL, Model: "m", APIKeyEnv: "TEST_KEY", MaxInflight: 1},
		{Name: "spare", BaseURL: spare.URL, Model: "m", APIKeyEnv: "TEST_KEY"},
	}}
	l, err := rerank.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan rerank.Result, 1)
	go func() { done <- l.Rerank(ctx, "第一个问题", cands(3)) }()
	waitFor(t, func() bool { return slow.Count() == 1 })
	if r := l.Rerank(ctx, "第二个问题", cands(3)); r.Status != rerank.StatusOK || r.Provider != "spare" {
		t.Errorf("call while slow is at its cap = %s from %q, want ok from spare", r.Status, r.Provider)
	}
	<-done
}
