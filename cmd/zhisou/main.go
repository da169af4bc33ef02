// Command zhisou is a Chinese retrieval engine for RAG: a gRPC server over an
// embedded store (Badger + bleve), and the tools around it.
//
//	zhisou serve     run the gRPC server (loopback by default)
//	zhisou ingest    add a folder of documents, to a server or a store
//	zhisou search    query a server or a store
//	zhisou eval      score recall on a labelled set, optionally against stock bleve
//	zhisou bench     load-test a running server
//
// Every flag can also be set as ZHISOU_<FLAG> (for example ZHISOU_STORE for
// -store); a flag on the command line wins.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"google.golang.org/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee exitError
		if !errors.As(err, &ee) || ee.msg != "" {
			fmt.Fprintln(os.Stderr, "zhisou:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitDamaged is the exit status of a command that refused a damaged data
// directory (see store.StateFile).
const exitDamaged = 3

// exitCode is the process's exit status for a command's error.
func exitCode(err error) int {
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, index.ErrDamaged):
		return exitDamaged
	}
	return 1
}

// exitError asks main for a specific exit code; an empty msg prints nothing
// (the command already reported).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

const usage = `usage: zhisou <command> [flags]

commands:
  serve    run the gRPC server on an embedded data directory
  ingest   ingest files or folders: Markdown (.md .markdown), text (.txt .text),
           HTML (.html .htm), transcripts (.srt .vtt, speaker-labelled .txt),
           Word (.docx), PowerPoint (.pptx), PDF with a text layer (.pdf),
           question banks or tables (.xlsx .csv), and corpus files (.jsonl)
  search   search a collection
  eval     score retrieval quality and latency on a labelled set
  bench    load-test a running server with eval queries (QPS, p50/p95/p99)
  fake-llm run a fake OpenAI-protocol server for reranker demos
  lexicon  get or replace a collection's lexicon (terms kept whole, synonyms, stop words)
  learn    teach a collection labelled questions (question → chunk pairs, or an eval set's qrels)
  keys     create, list or revoke API keys (a store with keys asks every call for one)
  verify   check a data directory (the write log, Badger against bleve, statistics, graph); -repair rebuilds bleve
  backup   write a consistent, checksummed backup (of a directory, or of a running server)
  restore  load a backup into a new data directory
  repair   rebuild a damaged data directory from its write log (and the newest backup)
  mcp      serve zhisou's tools to an agent over MCP on stdin/stdout (search, outlines, sections)
  health   ask a running server whether it serves (exit status 0 when it does)
  status   show each server's place in the write log: position, lag (replicas)
  version  the build: module version and commit, Go, the segmentation dictionary's hash
  help     show this text

Run 'zhisou <command> -h' for the flags of a command.
Every flag can also be set through ZHISOU_<FLAG_NAME> (e.g. ZHISOU_STORE); the flag wins.
`

// run is main without the process: testable with its own args, environment
// and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{code: 2}
	}
	return runEnv(ctx, &cmdEnv{getenv: getenv, stdout: stdout, stderr: stderr}, args)
}

// runEnv runs a command with a prepared environment (tests preload the
// analyzer into it).
func runEnv(ctx context.Context, env *cmdEnv, args []string) error {
	// Background work (the store's learner and re-indexer) logs to stderr
	// while the command prints: one lock for both streams.
	mu := &sync.Mutex{}
	env.stdout, env.stderr = &lockedWriter{mu: mu, w: env.stdout}, &lockedWriter{mu: mu, w: env.stderr}
	defer func() {
		for _, f := range env.atExit {
			f()
		}
	}()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, env, rest)
	case "ingest":
		return cmdIngest(ctx, env, rest)
	case "search":
		return cmdSearch(ctx, env, rest)
	case "eval":
		return cmdEval(ctx, env, rest)
	case "bench":
		return cmdBench(ctx, env, rest)
	case "fake-llm":
		return cmdFakeLLM(ctx, env, rest)
	case "lexicon":
		return cmdLexicon(ctx, env, rest)
	case "learn":
		return cmdLearn(ctx, env, rest)
	case "keys":
		return cmdKeys(ctx, env, rest)
	case "verify":
		return cmdVerify(ctx, env, rest)
	case "backup":
		return cmdBackup(ctx, env, rest)
	case "restore":
		return cmdRestore(ctx, env, rest)
	case "repair":
		return cmdRepair(ctx, env, rest)
	case "mcp":
		return cmdMCP(ctx, env, rest)
	case "health":
		return cmdHealth(ctx, env, rest)
	case "status":
		return cmdStatus(ctx, env, rest)
	case "version", "-version", "--version":
		return cmdVersion(ctx, env, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.stdout, usage)
		return nil
	}
	fmt.Fprintf(env.stderr, "zhisou: unknown command %q\n\n%s", cmd, usage)
	return exitError{code: 2}
}

// cmdEnv is what every subcommand gets from run.
type cmdEnv struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// an, when set, is used instead of loading the dictionary.
	an *analysis.Analyzer
	// atExit runs when the command ends (the profiles are written then).
	atExit []func()
	// writeMemProfile writes -memprofile's profile, once (nil without it):
	// at the end of the command, or earlier for a server, while its data is
	// still in memory.
	writeMemProfile func()
}

// common are the flags shared by the subcommands.
type common struct {
	store      string
	addr       string
	collection string
	logLevel   string
	logFormat  string
	cpuProfile string
	memProfile string
	dict       string
	// apiKey is sent to the server with every call.
	apiKey string
	// TLS: the client connects with TLS when tls or tlsCA is set; tlsCert
	// and tlsKey are this process's certificate (the server's for serve,
	// a client certificate for mTLS otherwise).
	tls                                   bool
	tlsCA, tlsCert, tlsKey, tlsServerName string
	// memoryBytes is serve's -memory budget (0: none), which sizes the
	// store's caches.
	memoryBytes uint64
	// acceptDamage opens a data directory that holds less than it had
	// applied (store.Options.AcceptDamage).
	acceptDamage bool
	// enricher writes generated questions into the chunks of every write
	// (serve's and ingest's -enrich-* flags; nil: none).
	enricher store.Enricher
	// nats lists the NATS servers of a shared write log (empty: the data
	// directory's own log); natsStream and natsReplicas name and size its
	// stream.
	nats, natsStream string
	natsReplicas     int
	natsTimeout      time.Duration
	natsToken        string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.store, "store", "zhisou-data", "data directory (Badger + bleve)")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:7700", "server address")
	fs.StringVar(&c.collection, "collection", "default", "collection (knowledge base)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text (key=value lines) or json (one object a line)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the command to FILE (go tool pprof reads it)")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile (allocations, and what is in use) to FILE when the command ends")
	fs.StringVar(&c.dict, "dict", "", "gse dictionary file(s), comma-separated (default: the embedded simplified-Chinese dictionary)")
	fs.StringVar(&c.apiKey, "api-key", "", "API key sent to the server (zhisou keys create makes one); better given as ZHISOU_API_KEY, which ps does not show")
	fs.BoolVar(&c.tls, "tls", false, "clients: connect to the server with TLS, trusting the system's CAs (or -tls-ca)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "clients: connect with TLS, trusting the CA certificate(s) in this PEM file")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate: serve's TLS certificate, or a client's certificate for mTLS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.tlsServerName, "tls-server-name", "", "clients: the name the server's certificate must carry (default: -addr's host)")
	fs.StringVar(&c.nats, "nats", "", "NATS server URL(s), comma-separated: the write log is the JetStream stream there, shared with every node given the same servers, and the data directory is one replica of it (empty: the data directory's own log)")
	fs.StringVar(&c.natsStream, "nats-stream", natslog.DefaultStream, "with -nats: the stream that holds the write log (made when missing)")
	fs.IntVar(&c.natsReplicas, "nats-replicas", 1, "with -nats: copies of the stream the NATS cluster keeps, when zhisou makes it (3 on a three-server cluster)")
	fs.StringVar(&c.natsToken, "nats-token", "", "with -nats or -nats-listen: the secret the NATS servers require of clients and of each other; better given as ZHISOU_NATS_TOKEN, which ps does not show (needed when -nats-listen or -nats-cluster is beyond loopback)")
	fs.DurationVar(&c.natsTimeout, "nats-timeout", natslog.DefaultAppendTimeout, "with -nats: how long a write waits for the stream to store it (a leader election takes 4-9 s) before it fails with UNAVAILABLE")
	fs.BoolVar(&c.acceptDamage, "accept-damage", false, "open a data directory that holds less than it had applied (its badger files damaged or replaced), serving what is left; without it such a directory is refused with exit status 3")
}

// parse parses args, then fills every flag not given on the command line from
// ZHISOU_<NAME> (upper case, '-' as '_').
func (e *cmdEnv) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{code: 0}
		}
		return exitError{code: 2}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := "ZHISOU_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := e.getenv(name); v != "" {
			// fs.Set (not f.Value.Set) so that isSet sees it.
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return e.startProfiles(fs)
}

// startProfiles starts the CPU profile that -cpuprofile asks for, and
// arranges the heap profile of -memprofile, both written when the command
// ends (runEnv runs atExit).
func (e *cmdEnv) startProfiles(fs *flag.FlagSet) error {
	if f := fs.Lookup("cpuprofile"); f != nil && f.Value.String() != "" {
		out, err := os.Create(f.Value.String())
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			return errors.Join(fmt.Errorf("-cpuprofile: %w", err), out.Close())
		}
		e.atExit = append(e.atExit, func() { pprof.StopCPUProfile(); out.Close() })
	}
	if f := fs.Lookup("memprofile"); f != nil && f.Value.String() != "" {
		path := f.Value.String()
		e.writeMemProfile = sync.OnceFunc(func() {
			runtime.GC() // the profile's in-use figures are as of the last collection
			out, err := os.Create(path)
			if err == nil {
				err = errors.Join(pprof.Lookup("allocs").WriteTo(out, 0), out.Close())
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "-memprofile: %v\n", err)
			}
		})
		e.atExit = append(e.atExit, e.writeMemProfile)
	}
	return nil
}

// isSet reports whether a flag was given, on the command line or through the
// environment.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (e *cmdEnv) logger(c *common) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch c.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", c.logFormat)
}

// loadAnalyzer loads the segmentation dictionary once for the process.
func (e *cmdEnv) loadAnalyzer(c *common, logger *slog.Logger) (*analysis.Analyzer, error) {
	if e.an != nil {
		return e.an, nil
	}
	start := time.Now()
	var opts analysis.Options
	if c.dict != "" {
		opts.DictFiles = strings.Split(c.dict, ",")
	}
	an, err := analysis.New(opts)
	if err != nil {
		return nil, err
	}
	logger.Debug("dictionary loaded", "took", time.Since(start).Round(time.Millisecond))
	return an, nil
}

// subcommand returns the verb args start with, one of verbs; otherwise it
// prints usage and returns the exit status: 0 for a help request, 2 else.
func subcommand(env *cmdEnv, args []string, usage string, verbs ...string) (string, error) {
	if len(args) > 0 && slices.Contains(verbs, args[0]) {
		return args[0], nil
	}
	fmt.Fprint(env.stderr, usage)
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		return "", exitError{code: 0}
	}
	return "", exitError{code: 2}
}

// dial connects to the server at -addr with the client's TLS and API key.
func (c *common) dial() (*grpc.ClientConn, retrievalv1.RetrievalServiceClient, error) {
	tlsCfg, err := c.clientTLS()
	if err != nil {
		return nil, nil, err
	}
	return grpcapi.Dial(c.addr, c.apiKey, tlsCfg)
}

// clientTLS is the client's TLS configuration, nil for a plain connection.
func (c *common) clientTLS() (*tls.Config, error) {
	if !c.tls && c.tlsCA == "" {
		return nil, nil
	}
	return grpcapi.ClientTLS(c.tlsCA, c.tlsCert, c.tlsKey, c.tlsServerName)
}

// openStore opens the data directory in this process.
func (e *cmdEnv) openStore(ctx context.Context, c *common, logger *slog.Logger) (*store.Store, error) {
	var saved *store.SavedGraphs
	if c.nats == "" { // (a replica may restore a snapshot into the directory first)
		saved = store.ReadSavedGraphs(c.store) // while the dictionary loads
	}
	an, err := e.loadAnalyzer(c, logger)
	if err != nil {
		return nil, err
	}
	opts := store.Options{SavedGraphs: saved, Logger: logger, AcceptDamage: c.acceptDamage, MemoryBytes: c.memoryBytes, Enricher: c.enricher}
	if c.nats != "" {
		l, err := natslog.Connect(ctx, c.nats, natslog.Config{Stream: c.natsStream, Subject: natsSubject(c.natsStream), Replicas: c.natsReplicas, AppendTimeout: c.natsTimeout, Token: c.natsToken, Logger: logger})
		if err != nil {
			return nil, err
		}
		opts.Log = l
		logger.Info("write log shared on NATS", "servers", c.nats, "log", l.ID())
		dict, err := dictID(c.dict)
		if err == nil {
			err = bootstrap(ctx, l, c.store, dict, logger)
		}
		if err != nil {
			return nil, errors.Join(err, l.Close())
		}
	}
	return store.Open(ctx, c.store, an, opts)
}

// natsSubject is the subject prefix of a stream's records: the default
// stream's is natslog.DefaultSubject, another's is derived from its name, so
// two zhisou clusters can share NATS servers.
func natsSubject(stream string) string {
	if stream == natslog.DefaultStream {
		return natslog.DefaultSubject
	}
	return "zhisou." + strings.ToLower(stream) + ".log"
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// asFile returns the file behind w, when there is one (for terminal checks).
func asFile(w io.Writer) (*os.File, bool) {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	return f, ok
}
