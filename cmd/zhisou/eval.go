package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/retrieve"
)

func cmdEval(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou eval", flag.ContinueOnError)
	var c common
	c.register(fs)
	data := fs.String("data", "", "eval set folder with queries.jsonl and qrels.tsv (and corpus.jsonl)")
	corpus := fs.String("corpus", "", "corpus file or folder (default: DATA/corpus.jsonl)")
	baseline := fs.String("baseline", "", "also run this baseline side by side: 'bleve' (stock bleve BM25, same analyzer)")
	jsonOut := fs.Bool("json", false, "print one JSON object with the metrics on the last line")
	runFile := fs.String("run", "", "write each query's ranked list (qid, docid, rank, score) to this file; the baseline's goes to FILE.bleve")
	var rf rerankFlags
	rf.register(fs)
	withRerank := fs.Bool("rerank", false, "rerank with the LLM configured by -rerank-url or -rerank-config, and report status counts, tokens and cost")
	modeName := fs.String("mode", "fused", "candidate sources: fused, bm25, outline or graph")
	warm := fs.Bool("warm", false, "run every query twice, untimed, before the timed pass (zhisou and the baseline): steady-state latency instead of a cold first pass")
	folds := fs.Int("folds", 0, "cross-validate learning from labelled pairs: for each of N folds, learn the other folds' (question, relevant document) pairs and score this fold's questions (query i is in fold i mod N)")
	var fw fusionFlags
	fw.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou eval -data DIR [-corpus PATH] [-baseline bleve] [-json] [-run FILE]\n\nWithout -collection the corpus is ingested into a temporary store; with -collection NAME\n(and -store DIR) the queries run against that existing collection instead.\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	// Flag mistakes first, before seconds or minutes of work.
	switch {
	case *data == "":
		fs.Usage()
		return errors.New("eval: -data is required")
	case *baseline != "" && *baseline != "bleve":
		return fmt.Errorf("eval: -baseline %q: the only baseline is 'bleve'", *baseline)
	case *baseline != "" && isSet(fs, "collection"):
		return errors.New("eval: -baseline needs the corpus ingested by eval itself; drop -collection")
	}
	mode, err := retrieve.ParseMode(*modeName)
	if err != nil {
		return fmt.Errorf("eval: -mode: %w", err)
	}
	weights, err := fw.weights(fs)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	reranker, err := rf.build(env.getenv)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	switch {
	case *withRerank && reranker == nil:
		return errors.New("eval: -rerank needs -rerank-url or -rerank-config")
	case !*withRerank:
		reranker = nil // retrieval alone unless asked
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	set, err := eval.LoadSet(*data, *corpus)
	if err != nil {
		return err
	}
	an, err := env.loadAnalyzer(&c, logger)
	if err != nil {
		return err
	}
	cfg := eval.Config{Set: set, Analyzer: an, Baseline: *baseline == "bleve", Reranker: reranker, Mode: mode, Weights: weights, Warm: *warm, Folds: *folds}
	if isSet(fs, "collection") {
		cfg.Collection, cfg.StoreDir = c.collection, c.store
	}
	res, err := eval.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return printEval(env, res, *runFile, *jsonOut)
}

// printEval writes the run files when runFile is set, the report, and with
// jsonOut the metrics as JSON on the last line.
func printEval(env *cmdEnv, res *eval.Result, runFile string, jsonOut bool) error {
	if runFile != "" {
		if err := res.WriteRuns(runFile); err != nil {
			return err
		}
	}
	eval.Print(env.stdout, res)
	if jsonOut {
		b, err := res.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, string(b))
	}
	return nil
}
