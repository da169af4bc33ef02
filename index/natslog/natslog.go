// Package natslog is the store's write log on NATS JetStream (store.SharedLog):
// one replicated stream holds the records of every collection, each under the
// subject <prefix>.<collection>, and every zhisou node applies all of it.
//
// A record is published with an idempotency key (Nats-Msg-Id) that is unique
// to the write call, and retried under the same key until the stream
// acknowledges it or the call's time runs out; the stream drops a retry that
// arrives after an earlier attempt was stored (within its duplicate window).
// Past the window, a late copy is still harmless: applying a record twice
// leaves the state of once (index.Record).
package natslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zhisou/zhisou/index"
)

// Defaults of Config.
const (
	DefaultStream        = "ZHISOU"
	DefaultSubject       = "zhisou.log"
	DefaultAppendTimeout = 10 * time.Second
	DefaultOpenTimeout   = time.Minute
	// DefaultDuplicates is the stream's duplicate window: a retry arriving
	// within it after its first attempt was stored is dropped.
	DefaultDuplicates = 2 * time.Minute
)

// Schema is the version of the log records this package writes and reads:
// each record carries it in its Zhisou-Schema header, and a record of
// another is set aside by the store (quarantined), not applied.
const Schema = 1

const schemaHeader = "Zhisou-Schema"

// Config says which stream holds the log and how to write it.
type Config struct {
	// Stream is the stream's name (DefaultStream). It is created when
	// missing; an existing stream must have exactly the log's subjects.
	Stream string
	// Subject is the prefix of the log's subjects (DefaultSubject): records
	// go to <Subject>.<collection>, or <Subject>._ for records of no
	// collection (API keys).
	Subject string
	// Replicas is the stream's replication factor when it is created: 1, or
	// 3 on a three-server cluster.
	Replicas int
	// AppendTimeout bounds an Append that gets no answer (a stream leader
	// election takes 4–9 s), and each read of a Replay; then they fail with
	// index.ErrUnavailable. DefaultAppendTimeout when 0.
	AppendTimeout time.Duration
	// OpenTimeout bounds how long Open waits for JetStream to be ready
	// (a cluster elects its leaders when its servers first meet);
	// DefaultOpenTimeout when 0.
	OpenTimeout time.Duration
	// Token is the secret the NATS servers ask of clients (Connect), if
	// any.
	Token string
	// Logger receives the log's warnings (nil: none).
	Logger *slog.Logger
}

// Log is the write log on a JetStream stream.
type Log struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	cfg     Config
	id      string
	notify  string // core subject a node announces its appends on
	sub     *nats.Subscription
	changed chan struct{}

	mu          sync.Mutex // guards first and last
	first, last uint64
	// directUntil (Unix nanoseconds) is set when a consumer delivered
	// nothing: until then Replay reads one by one without trying another.
	directUntil atomic.Int64
	// ownConn says Close closes nc (Connect made it).
	ownConn bool
}

// Connect connects to the NATS servers at urls (comma-separated) and opens
// the log on them; Close closes the connection. A server that does not answer
// at start is an error naming the URLs; once connected, the client reconnects
// for as long as it takes, and logs each loss and return.
func Connect(ctx context.Context, urls string, cfg Config) (*Log, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{nats.Name("zhisou"), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() { // not our own Close
				logger.Warn("lost the connection to NATS; writes wait for it, searches go on", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("connected to NATS again", "url", nc.ConnectedUrlRedacted()) })}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", urls, err)
	}
	l, err := Open(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l.ownConn = true
	return l, nil
}

// Open opens the log on nc, creating its stream when missing. nc stays the
// caller's: Close does not close it.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.AppendTimeout == 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	want := []string{cfg.Subject + ".>"}
	// A cluster whose servers have just met has no JetStream leader yet:
	// wait for it, saying so now and then.
	start, said := time.Now(), time.Now()
	var st jetstream.Stream
	// Each look-up waits a second, then twice as long as the last, up to 5
	// s: an election answers within a second of its end, a busy cluster
	// gets time to answer.
	wait := time.Second
	for {
		st, err = openStream(ctx, js, cfg, want, wait)
		wait = min(2*wait, 5*time.Second)
		if err == nil || errors.Is(err, index.ErrInvalid) || ctx.Err() != nil {
			break
		}
		if time.Since(start) > cfg.OpenTimeout {
			err = fmt.Errorf("%w (JetStream at %s was not ready within %v)", err, nc.ConnectedUrlRedacted(), cfg.OpenTimeout)
			break
		}
		if time.Since(said) > 5*time.Second {
			cfg.Logger.Warn("waiting for NATS JetStream to be ready (a cluster needs most of its servers up)", "stream", cfg.Stream, "err", err)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, err
	}
	info := st.CachedInfo()
	l := &Log{nc: nc, js: js, stream: st, cfg: cfg, changed: make(chan struct{}, 1),
		id:     "nats:" + cfg.Stream + "@" + strconv.FormatInt(info.Created.UnixNano(), 36),
		notify: "_zhisou.appended." + cfg.Stream}
	l.sub, err = nc.Subscribe(l.notify, func(*nats.Msg) { l.poke() })
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", l.notify, err)
	}
	l.setState(info.State.FirstSeq, info.State.LastSeq)
	return l, nil
}

// openStream finds the log's stream, or makes it, and checks its subjects.
// openStream looks the stream up, waiting at most lookup for the answer, and
// creates it when it does not exist. A cluster without a JetStream leader
// (one being elected after a restart) leaves the look-up unanswered: the
// caller asks again, soon, rather than waiting long, so that a restarted
// node opens its log about a second after the election.
func openStream(ctx context.Context, js jetstream.JetStream, cfg Config, want []string, lookup time.Duration) (jetstream.Stream, error) {
	lctx, lcancel := context.WithTimeout(ctx, lookup)
	st, err := js.Stream(lctx, cfg.Stream)
	lcancel()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Stream,
			Description: "zhisou write log",
			Subjects:    want,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  DefaultDuplicates,
			// Retention is by limits, none set: records stay until an
			// operator bounds the stream, as every replica may need them.
			Retention: jetstream.LimitsPolicy,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, cfg.Stream) // another node created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open the write log stream %s: %w", cfg.Stream, err)
	}
	if subj := st.CachedInfo().Config.Subjects; !slices.Equal(subj, want) {
		return nil, fmt.Errorf("%w: the NATS stream %s has subjects %q, not %q: it belongs to another application; give zhisou a stream of its own (-nats-stream)",
			index.ErrInvalid, cfg.Stream, subj, want)
	}
	return st, nil
}

// Close stops the log's subscription, and closes the connection when
// Connect made it.
func (l *Log) Close() error {
	err := l.sub.Unsubscribe()
	if l.ownConn {
		l.nc.Close()
		err = nil // closed with the connection anyway
	}
	return err
}

// ID names the stream and its creation time: a stream deleted and made
// again is another log.
func (l *Log) ID() string { return l.id }

// Changed receives a value when a node has announced an append.
func (l *Log) Changed() <-chan struct{} { return l.changed }

func (l *Log) poke() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *Log) setState(first, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.first, l.last = first, max(l.last, last)
}

// refresh reads the stream's first and last positions; when the stream does
// not answer, the last ones seen stand.
func (l *Log) refresh() (first, last uint64) {
	_, _, _ = l.state(context.Background()) // on failure the last ones seen stand
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first, l.last
}

// Bounds returns the lowest position the stream holds and the highest it
// has given, from one look at the stream.
func (l *Log) Bounds() (first, last uint64) { return l.refresh() }

// First returns the lowest position the stream holds.
func (l *Log) First() uint64 {
	f, _ := l.refresh()
	return f
}

// Last returns the highest position the stream has given.
func (l *Log) Last() uint64 {
	_, last := l.refresh()
	return last
}

// Truncate does nothing: the stream's limits, set by its operator, decide
// what it keeps.
func (l *Log) Truncate(uint64) error { return nil }

func (l *Log) subject(collection string) string {
	if collection == "" {
		return l.cfg.Subject + "._"
	}
	return l.cfg.Subject + "." + collection
}

// Append publishes the records and returns when the stream has stored every
// one, setting their positions. Records are published together and may be
// stored in another order when one is retried; each names its own document.
func (l *Log) Append(ctx context.Context, recs []index.Record) (uint64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	key := make([]byte, 12)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	prefix := hex.EncodeToString(key)
	limit := l.nc.MaxPayload() - 512 // headers
	msgs := make([]*nats.Msg, len(recs))
	for i := range recs {
		recs[i].Seq = 0 // given by the stream
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return 0, fmt.Errorf("encode record: %w", err)
		}
		if int64(len(b)) > limit {
			return 0, fmt.Errorf("%w: %s %s is %d bytes as a log record, and the NATS server takes messages of at most %d (its max_payload); split the document or raise max_payload",
				index.ErrInvalid, recs[i].Op, recordName(&recs[i]), len(b), limit)
		}
		m := nats.NewMsg(l.subject(recs[i].Collection))
		m.Data = b
		m.Header.Set(jetstream.MsgIDHeader, prefix+"-"+strconv.Itoa(i))
		m.Header.Set(schemaHeader, strconv.Itoa(Schema))
		msgs[i] = m
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.AppendTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], _ = l.js.PublishMsgAsync(m) // a failure is retried below
	}
	var last uint64
	for i, f := range futures {
		var ack *jetstream.PubAck
		var err error
		if f != nil {
			select {
			case ack = <-f.Ok():
			case err = <-f.Err():
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if ack == nil {
			if ack, err = l.retry(ctx, msgs[i], err); err != nil {
				// %v: the caller's answer is UNAVAILABLE (retry), whatever
				// deadline ended the attempts.
				return 0, fmt.Errorf("%w: the NATS stream %s did not store %s %s within %v: %v; the write may still be applied later",
					index.ErrUnavailable, l.cfg.Stream, recs[i].Op, recordName(&recs[i]), time.Since(start).Round(time.Millisecond), err)
			}
		}
		recs[i].Seq = ack.Sequence
		last = max(last, ack.Sequence)
	}
	l.setState(0, last)
	// Wake the other nodes; one that misses this looks again within a
	// second.
	_ = l.nc.Publish(l.notify, nil)
	return last, nil
}

// retry publishes m, with its idempotency key, until the stream acknowledges
// it or ctx is done.
func (l *Log) retry(ctx context.Context, m *nats.Msg, err error) (*jetstream.PubAck, error) {
	wait := 50 * time.Millisecond
	for {
		if ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, perr := l.js.PublishMsg(actx, m)
		cancel()
		if perr == nil {
			return ack, nil
		}
		err = perr
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// infoTimeout bounds the look at the stream's state that starts a Replay:
// a stream without a leader does not answer, and a write should not wait
// for that before its own attempt.
const infoTimeout = 2 * time.Second

// directReads is the most records Replay reads one by one; beyond it, it
// opens a consumer.
const directReads = 32

// A consumer whose first record does not come within firstRecordWait is
// given up, and Replay reads up to directFallback records one by one
// instead (directBatch requests at a time).
const (
	firstRecordWait = 2 * time.Second
	directFallback  = 256
	// directSpell is how long Replay reads one by one after a consumer
	// delivered nothing (a stream leader just elected is often slow to
	// serve new consumers): each new consumer would cost firstRecordWait.
	directSpell = 10 * time.Second
	// directSpellMax: a longer way to go is worth trying a consumer for even
	// then (one reads thousands of records a second, one by one a few
	// hundred).
	directSpellMax = 1024
)

// Replay calls fn for each record after the position after, in order, up to
// the stream's last one when Replay started. When a consumer delivers
// nothing in time, Replay reads the next directFallback records one by one
// instead and returns without error, having delivered fewer: callers that
// need more call it again.
func (l *Log) Replay(ctx context.Context, after uint64, fn func(index.Record) error) error {
	first, last, err := l.state(ctx)
	if err != nil {
		return err
	}
	if last <= after {
		return nil
	}
	next := max(after+1, first)
	if last-after <= directReads {
		return l.direct(ctx, next, last, fn)
	}
	if last-next < directSpellMax && time.Now().UnixNano() < l.directUntil.Load() {
		return l.direct(ctx, next, min(last, next+directFallback-1), fn)
	}
	// A consumer that goes quiet (its server restarting, a leader moving)
	// is made again from the next record, a few times.
	for attempt := 0; attempt < 3; attempt++ {
		from := next
		done, err := l.consume(ctx, next, last, &next, fn)
		if done || !errors.Is(err, index.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		if next == from {
			// Delivered nothing at all: read on one by one.
			l.cfg.Logger.Warn("a consumer of the log delivered nothing in time; reading records one by one", "from", from, "err", err)
			l.directUntil.Store(time.Now().Add(directSpell).UnixNano())
			return l.direct(ctx, next, min(last, next+directFallback-1), fn)
		}
	}
	return nil // progress made; the caller comes back for the rest
}

// directBatch is how many records direct asks for at once.
const directBatch = 16

// direct reads the records from..to one by one, directBatch requests in
// flight at a time (each is a round trip to the stream's leader), and
// delivers them in order.
func (l *Log) direct(ctx context.Context, from, to uint64, fn func(index.Record) error) error {
	type got struct {
		m   *jetstream.RawStreamMsg
		err error
	}
	batch := make([]got, directBatch)
	for start := from; start <= to; start += directBatch {
		n := int(min(to-start+1, directBatch))
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				gctx, cancel := context.WithTimeout(ctx, l.cfg.AppendTimeout)
				batch[i].m, batch[i].err = l.stream.GetMsg(gctx, start+uint64(i))
				cancel()
			})
		}
		wg.Wait()
		for i, g := range batch[:n] {
			seq := start + uint64(i)
			if errors.Is(g.err, jetstream.ErrMsgNotFound) {
				// zhisou only ever purges the stream's head (snapshot.go):
				// a record at or after the first is committed and will be
				// there, but a leader just elected may not have applied it
				// yet. Skipping it would lose it on this replica for good.
				purged, err := l.purged(ctx, seq)
				if err != nil {
					return err
				}
				if purged {
					continue
				}
				return fmt.Errorf("%w: record %d of the NATS stream %s is not readable yet (a stream leader just elected?)", index.ErrUnavailable, seq, l.cfg.Stream)
			} else if g.err != nil {
				return fmt.Errorf("%w: read record %d of the NATS stream %s: %v", index.ErrUnavailable, seq, l.cfg.Stream, g.err)
			}
			if err := l.deliver(g.m.Data, g.m.Header, seq, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// purged reports whether the record seq was purged with the stream's head:
// whether the stream now starts after it.
func (l *Log) purged(ctx context.Context, seq uint64) (bool, error) {
	first, _, err := l.state(ctx)
	return first > seq, err
}

// state asks the stream for its first and last records (infoTimeout at
// most), and notes them.
func (l *Log) state(ctx context.Context) (first, last uint64, err error) {
	ictx, cancel := context.WithTimeout(ctx, min(l.cfg.AppendTimeout, infoTimeout))
	info, err := l.stream.Info(ictx)
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: read the NATS stream %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	l.setState(info.State.FirstSeq, info.State.LastSeq)
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// consume reads records from the position from on with one ordered
// consumer, calling fn for each and advancing *next past it, until the
// position last (done).
func (l *Log) consume(ctx context.Context, from, last uint64, next *uint64, fn func(index.Record) error) (done bool, err error) {
	// Making the consumer gets the first record's time: a stream leader
	// busy after a restart may take long to answer, and reading one by one
	// does not wait for it.
	cctx, cancel := context.WithTimeout(ctx, min(l.cfg.AppendTimeout, firstRecordWait))
	cons, err := l.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	cancel()
	if err != nil {
		return false, fmt.Errorf("%w: read the NATS stream %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return false, fmt.Errorf("%w: read the NATS stream %s: %v", index.ErrUnavailable, l.cfg.Stream, err)
	}
	defer it.Stop()
	for first := true; ; first = false {
		// Each record must come within the time an append may take: a
		// server gone quiet fails the replay rather than hang it. The first
		// gets less: a consumer that delivers nothing at all is given up
		// for reading one by one (see Replay).
		wait := l.cfg.AppendTimeout
		if first {
			wait = min(wait, firstRecordWait)
		}
		nctx, cancel := context.WithTimeout(ctx, wait)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			return false, fmt.Errorf("%w: read the NATS stream %s from %d: %v", index.ErrUnavailable, l.cfg.Stream, *next, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return false, err
		}
		seq := md.Sequence.Stream
		if err := l.deliver(m.Data(), m.Headers(), seq, fn); err != nil {
			return false, err
		}
		*next = seq + 1
		if seq >= last || md.NumPending == 0 {
			return true, nil
		}
	}
}

func (l *Log) deliver(data []byte, h nats.Header, seq uint64, fn func(index.Record) error) error {
	var rec index.Record
	if v := h.Get(schemaHeader); v != "" && v != strconv.Itoa(Schema) {
		// A newer zhisou wrote it: set aside, never guessed at.
		rec = index.Record{Op: index.Op(fmt.Sprintf("record of schema %s (this version reads %d): upgrade this node", v, Schema))}
	} else if err := json.Unmarshal(data, &rec); err != nil {
		// Not a record this version reads: hand the store an op it does
		// not know, which it sets aside (quarantine) with this reason
		// rather than stop applying the log.
		rec = index.Record{Op: index.Op(fmt.Sprintf("undecodable (%d bytes: %v)", len(data), err))}
	}
	rec.Seq = seq
	return fn(rec)
}

// recordName names what a record writes, for errors.
func recordName(r *index.Record) string {
	switch {
	case r.Doc != nil:
		return fmt.Sprintf("%s/%s", r.Collection, r.Doc.ID)
	case r.DocID != "":
		return fmt.Sprintf("%s/%s", r.Collection, r.DocID)
	}
	return r.Collection
}

// DeadLetter keeps a copy of a record a replica set aside, with the reason,
// in the stream <Stream>_DEAD (subject <Subject>-dead), once: every replica
// sets the same record aside, and the copy is keyed by its position.
func (l *Log) DeadLetter(r *index.Record, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.AppendTimeout)
	defer cancel()
	subject := l.cfg.Subject + "-dead"
	if _, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: l.cfg.Stream + "_DEAD", Subjects: []string{subject},
		Description: "zhisou log records set aside by the replicas", Storage: jetstream.FileStorage, Replicas: l.cfg.Replicas}); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subject)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, "dead-"+strconv.FormatUint(r.Seq, 10))
	m.Header.Set("Zhisou-Reason", reason)
	m.Header.Set("Zhisou-Position", strconv.FormatUint(r.Seq, 10))
	_, err = l.js.PublishMsg(ctx, m)
	return err
}
