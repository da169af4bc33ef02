package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/eval"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

const learnUsage = `usage: zhisou learn [flags] FILE
       zhisou learn -info [flags]

learn teaches a collection labelled questions: pairs of a question as a learner
asked it and the chunk (or document) that answers it. Searches then find the
chunks that questions like it named (the "learned" source) and expand the
query's words with the passage words they stood for ("用人单位 ← 老板").

FILE is either
  - a JSONL file, one pair a line:
      {"question": "老板不给钱怎么办", "chunk_id": "labour-law#3a9f…"}
      {"question": "房东不退押金", "doc_id": "civil-code-703"}
    (a document stands for its chunk that shares the most with the question), or
  - a folder in the format 'zhisou eval' reads, with queries.jsonl and qrels.tsv:
    each relevant document of a query is a pair.

The file is read as a stream and sent in batches of 1000 pairs. A line that is
not a pair, and a pair the collection refuses (no such chunk, a question of one
character), is reported with its line number; the others are learned. -replace
replaces every pair the collection held with the file's; -replace with an empty
file forgets them all. -info prints the collection's model.

Talks to the server at -addr, or opens the data directory -store when that flag
(or ZHISOU_STORE) is set.

`

// maxPairLine bounds one line of a pairs file.
const maxPairLine = 1 << 20

// maxRefusedShown is how many refused pairs learn prints one by one.
const maxRefusedShown = 20

func cmdLearn(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou learn", flag.ContinueOnError)
	var c common
	c.register(fs)
	replace := fs.Bool("replace", false, "replace all the collection's pairs with the file's")
	info := fs.Bool("info", false, "print the collection's learned model and exit")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, learnUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *info && fs.NArg() > 0:
		return errors.New("learn: -info takes no file")
	case !*info && fs.NArg() != 1:
		fs.Usage()
		return errors.New("learn: want one pairs file or eval folder")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var t learnTarget
	if isSet(fs, "store") {
		logger, err := env.logger(&c)
		if err != nil {
			return err
		}
		st, err := env.openStore(ctx, &c, logger)
		if err != nil {
			return fmt.Errorf("learn: %w", err)
		}
		defer st.Close()
		t = localLearn{st: st, collection: c.collection}
	} else {
		conn, client, err := c.dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		t = remoteLearn{client: client, collection: c.collection, addr: c.addr}
	}
	if *info {
		i, err := t.info(ctx)
		if err != nil {
			return fmt.Errorf("learn -info: %w", err)
		}
		fmt.Fprintf(env.stdout, "%s: %s\n", c.collection, describeModel(i))
		return nil
	}
	return learnFile(ctx, env, t, c.collection, fs.Arg(0), *replace)
}

func describeModel(i store.LearnInfo) string {
	s := fmt.Sprintf("%d pairs, %d questions, %d words with expansions, reliability %.3f, trust %.2f", i.Pairs, i.Questions, i.Words, i.Reliability, i.Trust)
	if i.Generated > 0 {
		s += fmt.Sprintf("; %d generated pairs", i.Generated)
	}
	if i.Building {
		s += " (rebuilding)"
	}
	if i.BuildError != "" {
		s += "; last rebuild failed: " + i.BuildError
	}
	return s
}

// learnFile streams the pairs of path to t, in batches.
func learnFile(ctx context.Context, env *cmdEnv, t learnTarget, collection, path string, replace bool) error {
	var batch []index.Pair
	var lines []int // the line of each pair in batch
	added, refused, bad := 0, 0, 0
	shown := 0
	name := path // the file the line numbers count in
	st, statErr := os.Stat(path)
	folder := statErr == nil && st.IsDir()
	if folder {
		name = filepath.Join(path, "qrels.tsv")
	}
	report := func(line int, reason string) {
		if shown < maxRefusedShown {
			fmt.Fprintf(env.stderr, "%s:%d: %s\n", name, line, reason)
		}
		shown++
	}
	var last store.LearnInfo
	first := true
	flush := func(final bool) error {
		rep, err := t.learn(ctx, batch, replace && first, !final)
		if err != nil {
			return err
		}
		first = false
		added += rep.Added
		refused += len(rep.Refused)
		for _, r := range rep.Refused {
			report(lines[r.Index], r.Reason)
		}
		last = rep.Info
		batch, lines = batch[:0], lines[:0]
		return nil
	}
	emit := func(line int, p index.Pair, problem string) error {
		if problem != "" {
			bad++
			report(line, problem)
			return nil
		}
		batch = append(batch, p)
		lines = append(lines, line)
		if len(batch) == store.MaxPairsPerWrite {
			return flush(false)
		}
		return nil
	}
	var err error
	if folder {
		err = readEvalPairs(path, emit)
	} else {
		err = readPairsFile(path, emit)
	}
	if err == nil {
		err = flush(true) // the last batch (perhaps empty) waits for the model
	}
	if err != nil {
		return fmt.Errorf("learn %s: %w (%d pairs learned before)", path, err, added)
	}
	if shown > maxRefusedShown {
		fmt.Fprintf(env.stderr, "… and %d more\n", shown-maxRefusedShown)
	}
	fmt.Fprintf(env.stdout, "learned %d pairs into %s (%d refused, %d lines not pairs); model: %s\n", added, collection, refused, bad, describeModel(last))
	return nil
}

// pairLine is one line of a JSONL pairs file.
type pairLine struct {
	Question string `json:"question"`
	ChunkID  string `json:"chunk_id"`
	DocID    string `json:"doc_id"`
}

// readPairsFile reads a JSONL pairs file ("-": stdin) line by line, calling
// emit with each pair or with what is wrong with the line.
func readPairsFile(path string, emit func(int, index.Pair, string) error) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxPairLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var pl pairLine
		if err := json.Unmarshal([]byte(text), &pl); err != nil {
			if err := emit(line, index.Pair{}, fmt.Sprintf("not a JSON pair: %v", err)); err != nil {
				return err
			}
			continue
		}
		p := index.Pair{Question: pl.Question, ChunkID: pl.ChunkID}
		problem := ""
		switch {
		case pl.ChunkID != "" && pl.DocID != "":
			problem = "both chunk_id and doc_id: name one"
		case pl.ChunkID == "" && pl.DocID == "":
			problem = `no "chunk_id" or "doc_id"`
		case pl.DocID != "":
			p.ChunkID = pl.DocID
		}
		if err := emit(line, p, problem); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d is over %d bytes", line+1, maxPairLine)
		}
		return err
	}
	return nil
}

// readEvalPairs reads an eval folder's qrels.tsv against its queries.jsonl,
// each relevant (query, document) a pair; lines are those of qrels.tsv.
func readEvalPairs(dir string, emit func(int, index.Pair, string) error) error {
	queries, err := eval.LoadQueries(filepath.Join(dir, "queries.jsonl"))
	if err != nil {
		return err
	}
	text := make(map[string]string, len(queries))
	for _, q := range queries {
		text[q.ID] = q.Text
	}
	f, err := os.Open(filepath.Join(dir, "qrels.tsv"))
	if err != nil {
		return err
	}
	defer f.Close()
	return eval.ScanQrels(f, func(line int, qid, docID string, _ int, bad error) error {
		if bad != nil {
			return emit(line, index.Pair{}, bad.Error())
		}
		q, ok := text[qid]
		if !ok {
			return emit(line, index.Pair{}, fmt.Sprintf("query %q is not in queries.jsonl", qid))
		}
		return emit(line, index.Pair{Question: q, ChunkID: docID}, "")
	})
}

// learnTarget is where learn sends pairs: a data directory opened here, or a
// server.
type learnTarget interface {
	learn(ctx context.Context, pairs []index.Pair, replace, noWait bool) (store.LearnReport, error)
	info(ctx context.Context) (store.LearnInfo, error)
}

type localLearn struct {
	st         *store.Store
	collection string
}

func (l localLearn) learn(ctx context.Context, pairs []index.Pair, replace, noWait bool) (store.LearnReport, error) {
	return l.st.Learn(ctx, l.collection, pairs, replace, noWait)
}

func (l localLearn) info(ctx context.Context) (store.LearnInfo, error) {
	if err := l.st.WaitLearned(ctx, l.collection); err != nil {
		return store.LearnInfo{}, err
	}
	return l.st.LearnInfo(l.collection)
}

type remoteLearn struct {
	client     retrievalv1.RetrievalServiceClient
	collection string
	addr       string
}

func (r remoteLearn) learn(ctx context.Context, pairs []index.Pair, replace, noWait bool) (store.LearnReport, error) {
	req := &retrievalv1.LearnRequest{Collection: r.collection, Replace: replace, NoWait: noWait}
	for _, p := range pairs {
		req.Pairs = append(req.Pairs, &retrievalv1.LearnPair{Question: p.Question, ChunkId: p.ChunkID})
	}
	var resp *retrievalv1.LearnResponse
	for wait := time.Second; ; wait *= 2 {
		var err error
		resp, err = r.client.Learn(ctx, req)
		if err == nil {
			break
		}
		err = grpcapi.ClientErr(r.addr, err)
		// Over the server's rate of pairs (or busy): wait and send again,
		// for about a minute in all.
		if !errors.Is(err, ingest.ErrSinkBusy) || wait > 32*time.Second {
			return store.LearnReport{}, err
		}
		select {
		case <-ctx.Done():
			return store.LearnReport{}, err
		case <-time.After(wait):
		}
	}
	rep := store.LearnReport{Added: int(resp.GetAdded()), Info: grpcapi.LearnedFromProto(resp.GetModel())}
	for _, rf := range resp.GetRefused() {
		i := int(rf.GetIndex())
		if i < 0 || i >= len(pairs) {
			return rep, fmt.Errorf("the server refused pair %d of a batch of %d", i, len(pairs))
		}
		rep.Refused = append(rep.Refused, store.RefusedPair{Index: i, Pair: pairs[i], Reason: rf.GetReason()})
	}
	return rep, nil
}

func (r remoteLearn) info(ctx context.Context) (store.LearnInfo, error) {
	resp, err := r.client.GetLearned(ctx, &retrievalv1.GetLearnedRequest{Collection: r.collection})
	if err != nil {
		return store.LearnInfo{}, grpcapi.ClientErr(r.addr, err)
	}
	return grpcapi.LearnedFromProto(resp.GetModel()), nil
}
