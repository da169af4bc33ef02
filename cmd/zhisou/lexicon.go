package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// maxLexiconFile bounds a lexicon file: 50 000 entries of 64 characters fit.
const maxLexiconFile = 16 << 20

const lexiconUsage = `usage: zhisou lexicon get [flags]
       zhisou lexicon set -file FILE [flags]

get prints a collection's lexicon (normalised) as JSON on stdout, and its
version and re-indexing state on stderr. set replaces the lexicon with the one
in FILE ("-" for stdin), in the format get prints:

  {"terms": ["三明治反馈法", "天枢X9"],
   "synonyms": [{"term": "汉堡包反馈法", "alternatives": ["三明治反馈法"]}],
   "stop_words": ["请问"]}

Both talk to the server at -addr, or open the data directory -store when that
flag (or ZHISOU_STORE) is set; set then waits for the re-indexing to finish.

`

func cmdLexicon(ctx context.Context, env *cmdEnv, args []string) error {
	verb, err := subcommand(env, args, lexiconUsage, "get", "set")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("zhisou lexicon "+verb, flag.ContinueOnError)
	var c common
	c.register(fs)
	file := fs.String("file", "", "set: the lexicon file (JSON), or - for stdin")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, lexiconUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lexicon %s: unexpected argument %q (the lexicon comes from -file)", verb, fs.Arg(0))
	}
	var want *retrievalv1.Lexicon
	if verb == "set" {
		if *file == "" {
			return fmt.Errorf("lexicon set: -file is required (a JSON lexicon, or - for stdin)")
		}
		var err error
		if want, err = readLexiconFile(*file); err != nil {
			return fmt.Errorf("lexicon set: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if isSet(fs, "store") {
		return lexiconLocal(ctx, env, &c, verb, want)
	}
	conn, client, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if verb == "get" {
		resp, err := client.GetLexicon(ctx, &retrievalv1.GetLexiconRequest{Collection: c.collection})
		if err != nil {
			return fmt.Errorf("lexicon get: %w", grpcapi.ClientErr(c.addr, err))
		}
		return printLexicon(env, c.collection, resp.GetLexicon(), resp.GetVersion(), resp.GetPendingReindex())
	}
	resp, err := client.ReplaceLexicon(ctx, &retrievalv1.ReplaceLexiconRequest{Collection: c.collection, Lexicon: want})
	if err != nil {
		return fmt.Errorf("lexicon set: %w", grpcapi.ClientErr(c.addr, err))
	}
	fmt.Fprintf(env.stdout, "lexicon of %s set (version %d): %d terms, %d synonyms, %d stop words; %d chunks to re-index in the background\n",
		c.collection, resp.GetVersion(), len(resp.GetLexicon().GetTerms()), len(resp.GetLexicon().GetSynonyms()), len(resp.GetLexicon().GetStopWords()), resp.GetReindexedChunks())
	return nil
}

// lexiconLocal runs get or set on a data directory opened in this process.
func lexiconLocal(ctx context.Context, env *cmdEnv, c *common, verb string, want *retrievalv1.Lexicon) error {
	logger, err := env.logger(c)
	if err != nil {
		return err
	}
	store, err := env.openStore(ctx, c, logger)
	if err != nil {
		return fmt.Errorf("lexicon %s: %w", verb, err)
	}
	defer store.Close()
	if verb == "get" {
		info, err := store.Lexicon(c.collection)
		if err != nil {
			return fmt.Errorf("lexicon get: %w", err)
		}
		return printLexicon(env, c.collection, grpcapi.LexiconToProto(info.Lexicon), info.Version, int64(info.PendingReindex))
	}
	info, err := store.ReplaceLexicon(ctx, c.collection, grpcapi.LexiconFromProto(want))
	if err != nil {
		return fmt.Errorf("lexicon set: %w", err)
	}
	// The process ends here, so wait for the background re-indexing (it
	// would resume at the next open otherwise).
	if err := store.WaitReindex(ctx, c.collection); err != nil {
		return fmt.Errorf("lexicon set: %w", err)
	}
	fmt.Fprintf(env.stdout, "lexicon of %s set (version %d): %d terms, %d synonyms, %d stop words; %d chunks re-indexed\n",
		c.collection, info.Version, len(info.Terms), len(info.Synonyms), len(info.StopWords), info.PendingReindex)
	return nil
}

func readLexiconFile(path string) (*retrievalv1.Lexicon, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLexiconFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxLexiconFile {
		return nil, fmt.Errorf("%s is over %d MB", name, maxLexiconFile>>20)
	}
	var l retrievalv1.Lexicon
	if err := protojson.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: want a JSON lexicon {\"terms\": [...], \"synonyms\": [{\"term\": ..., \"alternatives\": [...]}], \"stop_words\": [...]}: %w", name, err)
	}
	return &l, nil
}

func printLexicon(env *cmdEnv, collection string, l *retrievalv1.Lexicon, version uint64, pending int64) error {
	if l == nil {
		l = &retrievalv1.Lexicon{}
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(l)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s\n", b)
	fmt.Fprintf(env.stderr, "lexicon of %s: version %d, %d chunks waiting to be re-indexed\n", collection, version, pending)
	return nil
}
