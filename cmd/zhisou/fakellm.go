package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zhisou/zhisou/rerank/fakellm"
)

// cmdFakeLLM runs the fake OpenAI-protocol server that the tests use, for
// demos of the reranker and its fallbacks without a real vendor.
func cmdFakeLLM(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou fake-llm", flag.ContinueOnError)
	mode := fs.String("mode", "answer:1", `how to answer: answer:TEXT (e.g. answer:3,1,2), stream:IDS (streamed, one id per 200 ms), slow:DURATION (answer "1" after it), refuse (DashScope content-safety error), rate-limit (429, Retry-After 30), server-error (502 HTML), thinking (spends max_tokens), prose, questions (for -enrich-url: two questions about each passage, made from its heading and first words)`)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou fake-llm [-mode answer:3,1,2]\n\nPrints the base URL to pass as -rerank-url (any key works, e.g. ZHISOU_RERANK_API_KEY=x).\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	m, err := fakeMode(*mode)
	if err != nil {
		return fmt.Errorf("fake-llm: %w", err)
	}
	srv := fakellm.New(nil, m)
	defer srv.Close()
	fmt.Fprintf(env.stdout, "fake OpenAI-protocol server at %s (mode %s); stop with Ctrl-C\n", srv.URL, *mode)
	<-ctx.Done()
	return nil
}

func parseIDList(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		ids = append(ids, n)
	}
	return ids, nil
}

func fakeMode(s string) (fakellm.Mode, error) {
	name, arg, _ := strings.Cut(s, ":")
	switch name {
	case "answer":
		return fakellm.Answer(arg), nil
	case "slow":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return nil, fmt.Errorf("-mode %q: %w", s, err)
		}
		return fakellm.Delay(d, fakellm.Answer("1")), nil
	case "stream":
		ids, err := parseIDList(arg)
		if err != nil {
			return nil, fmt.Errorf("-mode %q: %w", s, err)
		}
		return fakellm.StreamPermutation(200*time.Millisecond, ids...), nil
	case "refuse":
		return fakellm.DashScopeRefusal(), nil
	case "rate-limit":
		return fakellm.RateLimited(strconv.Itoa(30)), nil
	case "server-error":
		return fakellm.HTMLError(502), nil
	case "thinking":
		return fakellm.Thinking(), nil
	case "prose":
		return fakellm.Prose(), nil
	case "questions":
		return fakellm.Compute(demoQuestions), nil
	}
	return nil, fmt.Errorf("-mode %q: unknown mode", s)
}

// demoQuestions stands in for a model writing questions about a passage
// (ingest -enrich-url): it asks what the passage's heading and its first
// words mean.
func demoQuestions(msgs []fakellm.Message) string {
	user := msgs[len(msgs)-1].Content
	field := func(label string) string {
		_, v, ok := strings.Cut(user, label)
		if !ok {
			return ""
		}
		v, _, _ = strings.Cut(v, "\n")
		return strings.TrimSpace(v)
	}
	var qs []string
	if h := field("章节："); h != "" {
		qs = append(qs, h+"讲的是什么？")
	}
	if p := []rune(field("段落：")); len(p) > 0 {
		qs = append(qs, string(p[:min(len(p), 12)])+"是什么意思？")
	}
	b, _ := json.Marshal(map[string][]string{"questions": qs, "keywords": {}}) // strings always marshal
	return string(b)
}
