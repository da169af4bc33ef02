// Package service is the one Go API every front door calls (gRPC, HTTP, MCP):
// collections, documents, search and lexicon. It owns validation, limits, page
// tokens and building documents; its errors match its sentinels (errors.Is).
package service

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// Request limits, enforced here for every front door; a request over one
// fails with ErrInvalid.
const (
	// MaxDocsPerUpsert caps the documents of one upsert and the ids of one delete.
	MaxDocsPerUpsert = 1000
	// MaxPageSize caps the page size of the list calls.
	MaxPageSize = 1000
	// DefaultPageSize is the page size when the caller asks for 0.
	DefaultPageSize = 100
	// MaxFilterValues caps the values of a search filter, all fields together.
	MaxFilterValues = 1000
)

// Errors callers branch on. Every error a Service method returns matches at
// most one of them (errors.Is); an error that matches none is internal.
var (
	// ErrInvalid means the request was bad; a *FieldError names the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound means a collection or document does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a collection of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrClosed means the store is closed: the process is shutting down.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable means the request demanded reranking and it did not
	// happen.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted means the server cannot take the request now (its
	// disk is full); the message says what to free, and a retry may succeed.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrDataLoss means the data directory is damaged under the server (a
	// value that fails its checksum): the request is refused rather than
	// answered from damaged data, and the operator runs zhisou verify and
	// zhisou repair.
	ErrDataLoss = errors.New("data loss")
)

// FieldError is a request field the service refused. It matches ErrInvalid
// and, when there is one, the domain error behind it.
type FieldError struct {
	// Field is the field's path in the request, e.g. "documents[1].id".
	Field string
	// Err says what is wrong; its message names the field.
	Err error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Invalid returns a *FieldError for field, with a message formatted from
// format and args (which should name the field).
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))}
}

// invalidCause is Invalid for a domain error: the message is field: cause,
// and the error also matches cause.
func invalidCause(field string, cause error) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: %s: %w", ErrInvalid, field, cause)}
}

// kindError makes a domain error match one of this package's sentinels while
// keeping its message and chain.
type kindError struct {
	kind, err error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// classify makes err match the sentinel of this package that its domain
// error stands for; other errors (internal ones, ctx errors) pass unchanged.
func classify(err error) error {
	var rf *retrieve.FieldError
	if errors.As(err, &rf) && !errors.Is(err, ErrInvalid) {
		return &FieldError{Field: rf.Field, Err: &kindError{kind: ErrInvalid, err: err}}
	}
	var kind error
	switch {
	case err == nil, errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, ErrExists),
		errors.Is(err, ErrClosed), errors.Is(err, ErrUnavailable), errors.Is(err, ErrUnauthenticated),
		errors.Is(err, ErrPermissionDenied), errors.Is(err, ErrResourceExhausted), errors.Is(err, ErrDataLoss):
		return err
	case errors.Is(err, index.ErrUnavailable):
		// Before ErrInvalid: a write that failed both ways is worth a retry.
		kind = ErrUnavailable
	case errors.Is(err, retrieve.ErrInvalid), errors.Is(err, retrieve.ErrEmptyQuery),
		errors.Is(err, index.ErrInvalid), errors.Is(err, ingest.ErrEmpty):
		kind = ErrInvalid
	case errors.Is(err, index.ErrNotFound):
		kind = ErrNotFound
	case errors.Is(err, index.ErrExists):
		kind = ErrExists
	case errors.Is(err, index.ErrClosed):
		kind = ErrClosed
	case errors.Is(err, retrieve.ErrRerankUnavailable):
		kind = ErrUnavailable
	case errors.Is(err, index.ErrNoSpace):
		kind = ErrResourceExhausted
	case errors.Is(err, index.ErrDamaged):
		kind = ErrDataLoss
	default:
		return err
	}
	return &kindError{kind: kind, err: err}
}

// Options configures a Service. The zero value is valid.
type Options struct {
	// Retrieve configures the searcher (reranker, limits).
	Retrieve retrieve.Options
	// Chunk sets the chunk sizes of upserted documents.
	Chunk ingest.ChunkOptions
	// Logger receives a line per rerank (Debug, Warn on a fallback); nil
	// discards.
	Logger *slog.Logger
	// Registerer, if set, gets the rerank metrics (zhisou_rerank_*).
	Registerer prometheus.Registerer
	// RequireAuth makes every call need an API key whose role and
	// collections allow it (see auth.go); unset, every call is allowed.
	RequireAuth bool
	// MaxWriteBytes is the budget of document text written at once (see
	// limits.go); 0 means DefaultMaxWriteBytes.
	MaxWriteBytes int64
	// KeyRate, when above 0, is the calls a second each API key may make,
	// in bursts of KeyBurst (at least 1).
	KeyRate  float64
	KeyBurst int
	// KeyWriteBytes, when above 0, is the bytes of document text a second
	// each API key may write, in bursts of KeyWriteBurst (at least
	// index.MaxDocumentBytes when 0).
	KeyWriteBytes float64
	KeyWriteBurst int
	// LearnRate is the labelled pairs a second each API key (each
	// collection, without keys) may send to Learn, in bursts of
	// 2×store.MaxPairsPerWrite; 0 means DefaultLearnRate, negative no limit.
	LearnRate float64
	// ReadWait is how long a read naming a log position (min_position)
	// waits for this node to apply it; DefaultReadWait when 0.
	ReadWait time.Duration
}

// Service is the API over one store. It is safe for concurrent use and holds
// no lock of its own: the store and the searcher do their own locking.
type Service struct {
	store   *store.Store
	search  *retrieve.Searcher
	chunk   ingest.ChunkOptions
	logger  *slog.Logger
	metrics *rerankMetrics // nil without a Registerer
	// requireAuth is Options.RequireAuth, turned on for good by the first
	// key created through the service.
	requireAuth atomic.Bool
	// writes is the budget of text bytes being written (writeBudget in all).
	writes      *semaphore.Weighted
	writeBudget int64
	writeWait   time.Duration // how long a write waits for its share
	// limits holds the per-key rate limiters; nil without Options.KeyRate.
	limits *keyLimiter
	// written counts documents written, by outcome; nil without a
	// Registerer.
	written *prometheus.CounterVec
	// byteLimits holds the per-key limiters of bytes written; nil without
	// Options.KeyWriteBytes.
	byteLimits *keyLimiter
	// learnLimits holds the allowances of pairs learned (Options.LearnRate).
	learnLimits *keyLimiter
	// readWait is Options.ReadWait, defaulted.
	readWait time.Duration
}

// New returns a Service over store; it fails only when the metrics cannot
// be registered.
func New(st *store.Store, opts Options) (*Service, error) {
	s := &Service{store: st, search: retrieve.New(st, opts.Retrieve), chunk: opts.Chunk, logger: opts.Logger,
		writeBudget: cmp.Or(opts.MaxWriteBytes, DefaultMaxWriteBytes), writeWait: defaultWriteWait,
		readWait: cmp.Or(opts.ReadWait, DefaultReadWait)}
	s.writes = semaphore.NewWeighted(s.writeBudget)
	s.requireAuth.Store(opts.RequireAuth)
	s.limits = newKeyLimiter(opts.KeyRate, opts.KeyBurst, "calls")
	s.byteLimits = newKeyLimiter(opts.KeyWriteBytes, cmp.Or(opts.KeyWriteBurst, index.MaxDocumentBytes), "bytes")
	s.learnLimits = newKeyLimiter(cmp.Or(opts.LearnRate, DefaultLearnRate), 2*store.MaxPairsPerWrite, "pairs")
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer != nil {
		m, err := newRerankMetrics(opts.Registerer)
		if err != nil {
			return nil, err
		}
		s.metrics = m
		if err := registerStoreMetrics(opts.Registerer, st, s.logger); err != nil {
			return nil, err
		}
		s.written = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_documents_written_total",
			Help: "Documents written through the service (every door), by outcome: added, updated, unchanged, stale."}, []string{"outcome"})
		if err := opts.Registerer.Register(s.written); err != nil {
			return nil, fmt.Errorf("register write metrics: %w", err)
		}
	}
	if q, err := st.Quarantined(); err != nil {
		return nil, fmt.Errorf("read quarantined records: %w", err)
	} else if len(q) > 0 {
		s.logger.Warn("the store has quarantined log records: writes that could not be applied and were refused", "count", len(q), "newest_seq", q[len(q)-1].Seq, "newest_err", q[len(q)-1].Error)
	}
	return s, nil
}

// checkUTF8 fails when v is not valid UTF-8.
func checkUTF8(field, v string) error {
	if !utf8.ValidString(v) {
		return Invalid(field, "%s is not valid UTF-8", field)
	}
	return nil
}

// checkName fails when a collection name is empty or not UTF-8 (the store
// checks the rest of its syntax).
func checkName(field, name string) error {
	if name == "" {
		return Invalid(field, "%s is empty", field)
	}
	return checkUTF8(field, name)
}

// checkID fails when a document id is empty or not UTF-8.
func checkID(field, id string) error {
	if id == "" {
		return Invalid(field, "%s is empty", field)
	}
	return checkUTF8(field, id)
}
