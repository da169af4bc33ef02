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
// Every outcome is a Result whose Status says why its Order is what it is;
// Result.Err turns a fallback into an error wrapping ErrUnavailable for
// callers that demanded reranking.
package rerank
