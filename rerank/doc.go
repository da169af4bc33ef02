// Package rerank will hold the LLM reranker: one listwise call through an
// OpenAI-protocol endpoint (github.com/sashabaranov/go-openai) under a hard
// deadline, falling back to the fused order on every vendor failure. It is not
// built yet (see the issue "LLM rerank under a hard deadline"); retrieval
// works without it.
package rerank
