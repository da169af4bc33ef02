// Package rerank reorders fused retrieval candidates with one listwise call
// to an OpenAI-protocol chat endpoint (github.com/sashabaranov/go-openai),
// under a hard deadline, and falls back to the fused order on any failure.
//
// # Use
//
//	llm, err := rerank.New(rerank.Options{Providers: []rerank.Provider{{
//		Name:      "qwen",
//		BaseURL:   "https://dashscope.aliyuncs.com/compatible-mode/v1",
//		Model:     "qwen-flash",
//		APIKeyEnv: "ZHISOU_QWEN_API_KEY",
//		Quirks:    rerank.DashScopeQuirks(),
//	}}})
//	...
//	res := llm.Rerank(ctx, query, cands) // never an error
//	for _, i := range res.Order { ... cands[i] ... }
//	if res.Status != rerank.StatusOK { log the fallback: res.Status, res.Detail }
//
// # How a call goes
//
// The first Options.Candidates candidates become numbered passages [1]..[N],
// each cut to Options.PassageChars characters, and the model is asked for
// the ids of the most relevant ones, best first. The reply is parsed
// tolerantly (full-width digits, Chinese separators, brackets, "a > b"
// chains); duplicate and unknown ids are dropped and the candidates the
// model did not list follow in fused order. The result may be blended with
// the fused order (Options.FusedWeight).
//
// Providers are asked in priority order. If one has not answered after
// Options.HedgeDelay, or has failed, the next is asked too; the first valid
// answer wins and the other calls are canceled. Each provider retries at
// most once (429, 5xx, transport errors), and only when the budget left
// allows it; a Retry-After that does not fit is not waited for. Content
// refusals, unreadable replies and arrears are not retried. A
// consecutive-failure circuit breaker per provider skips a provider that
// keeps timing out or failing with 5xx.
//
// With Options.Stream the reply is streamed (SSE) and collected as it
// arrives. An id counts once a non-digit follows it or the reply is
// finished, so "1" arriving before "2" is not mistaken for id 1 of "12".
// If the deadline, the caller's deadline, a broken connection or a vendor
// error event ends the stream after at least one complete id, those ids are
// used and the Result is StatusOK with Partial set (and is not cached);
// with no complete id it is the usual failure (StatusTimeout,
// StatusStreamCut, ...). SSE keep-alive comments and blank lines are
// skipped, however many arrive. A caller that cancels (rather than times
// out) gets StatusCanceled at once: the call may be shared with identical
// requests and goes on for them.
//
// Every outcome is a Result whose Status says why its Order is what it is;
// Result.Err turns a fallback into an error wrapping ErrUnavailable for
// callers that demanded reranking.
package rerank
