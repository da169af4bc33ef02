package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/grpcapi"
)

func cmdIngest(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou ingest", flag.ContinueOnError)
	var c common
	c.register(fs)
	prune := fs.Bool("prune", false, "delete documents that came from these folders but whose files are gone")
	maxSize := fs.Int64("max-file-size", 32<<20, "refuse files larger than this many bytes (not applied to a .jsonl corpus, which is written as it is read, a batch at a time; its lines may be up to 64 MiB each)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	var ef enrichFlags
	ef.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, `usage: zhisou ingest [flags] PATH...

Ingests files and folders into a collection: Markdown, text, HTML, transcripts
(.srt, .vtt, speaker-labelled .txt), CSV and XLSX question banks or tables, DOCX,
PPTX, PDF (text layer) and corpus .jsonl.
By default it sends them to the server at -addr; with -store DIR (or ZHISOU_STORE)
it opens that data directory itself, which works only while no server holds it.

`)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{code: 2, msg: "ingest: no PATH given"}
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	enricher, err := ef.build(env.getenv, logger)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	var sink ingest.Sink
	if enricher != nil && !isSet(fs, "store") {
		return exitError{code: 2, msg: "ingest: -enrich-url and -enrich-config work with -store; a server enriches what it is sent when it runs with them"}
	}
	if isSet(fs, "store") {
		c.enricher = storeEnricher(enricher)
		st, err := env.openStore(ctx, &c, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := ensureLocalCollection(ctx, st, c.collection); err != nil {
			return err
		}
		sink = ingest.Local{Store: st}
	} else {
		conn, client, err := c.dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		gs := grpcapi.Sink{Addr: c.addr, Client: client}
		if err := gs.EnsureCollection(ctx, c.collection); err != nil {
			return err
		}
		sink = gs
	}
	opts := ingest.Options{Collection: c.collection, Prune: *prune, MaxFileSize: *maxSize}
	var finish func()
	if !*quiet {
		opts.Progress, finish = progress(env)
	}
	rep, err := ingest.Run(ctx, sink, fs.Args(), opts)
	if finish != nil {
		finish()
	}
	printReport(env, rep)
	if enricher != nil {
		fmt.Fprintf(env.stdout, "enrich: %s\n", enricher.Stats())
	}
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if len(rep.Failed) > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("ingest: %d of %d files failed", len(rep.Failed), rep.Files)}
	}
	return nil
}

// progress returns ingest's progress callback and what to call when the
// ingest ends: a progress bar on a terminal, else (a log, a pipe) a line at
// every tenth of the files.
func progress(env *cmdEnv) (func(done, total int), func()) {
	if f, ok := asFile(env.stderr); !ok || !term.IsTerminal(int(f.Fd())) {
		return func(done, total int) {
			if done == total || done*10/total != (done-1)*10/total {
				fmt.Fprintf(env.stderr, "ingest: %d/%d files\n", done, total)
			}
		}, nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(env.stderr), progressbar.OptionSetDescription("ingest"),
					progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			}
			_ = bar.Set(done) // drawing errors do not matter
		}, func() {
			if bar != nil {
				_ = bar.Finish() // drawing errors do not matter
			}
		}
}

func printReport(env *cmdEnv, rep ingest.Report) {
	for _, f := range rep.Skipped {
		fmt.Fprintf(env.stderr, "skipped %s\n", f)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(env.stderr, "FAILED  %s\n", f)
	}
	fmt.Fprintf(env.stdout, "files %d: added %d, updated %d, unchanged %d, stale %d, deleted %d, skipped %d, failed %d\n",
		rep.Files, rep.Added, rep.Updated, rep.Unchanged, rep.Stale, rep.Deleted, len(rep.Skipped), len(rep.Failed))
	printFormats(env.stdout, rep)
}

// printFormats writes one line per format: files read, failed and skipped,
// the text extracted, and the reading throughput (parsing and extraction;
// indexing is in the last line's total).
func printFormats(w io.Writer, rep ingest.Report) {
	exts := slices.Sorted(maps.Keys(rep.Formats))
	var text int64
	for _, ext := range exts {
		st := rep.Formats[ext]
		text += st.TextBytes
		name := cmp.Or(ext, "(none)")
		fmt.Fprintf(w, "  %-6s %4d files: read %d, failed %d, skipped %d; %7.3f MB text, read in %.3f s", name, st.Files, st.Read, st.Failed, st.Skipped, float64(st.TextBytes)/1e6, st.Took.Seconds())
		if s := st.Took.Seconds(); s > 0 && st.Read > 0 {
			fmt.Fprintf(w, " (%.2f MB/s, %.1f files/s)", float64(st.TextBytes)/1e6/s, float64(st.Files)/s)
		}
		fmt.Fprintln(w)
	}
	if s := rep.Took.Seconds(); s > 0 {
		fmt.Fprintf(w, "  total  %.3f MB text in %.3f s, indexing included (%.2f MB/s, %.1f files/s)\n", float64(text)/1e6, s, float64(text)/1e6/s, float64(rep.Files)/s)
	}
}

// errNoQuery is returned by search without a query.
var errNoQuery = errors.New("search: no query given")

// ensureLocalCollection creates the collection in a store if it is missing.
func ensureLocalCollection(ctx context.Context, st *store.Store, name string) error {
	_, err := st.Collection(name)
	if errors.Is(err, index.ErrNotFound) {
		err = st.CreateCollection(ctx, index.DefaultCollection(name))
		if errors.Is(err, index.ErrExists) {
			err = nil
		}
	}
	return err
}
