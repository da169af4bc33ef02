package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/learn"
)

// Learned pairs live in Badger under c/<collection>/l/<hash of the
// question>/<chunk id>, the pair as JSON: written and replaced by OpLearn
// records, so every replica holds the same pairs. The model (index/learn) is
// derived: built from the pairs and their chunks' text by a background
// learner after each change and at open, never stored, so a new dictionary or
// lexicon can never meet a model built with another one.
const learnKeyInfix = "/l/"

// Limits of learning.
const (
	// MaxPairsPerWrite is the most pairs one Learn call takes (a file is sent
	// in batches of this size).
	MaxPairsPerWrite = 1000
	// MaxQuestionRunes bounds one labelled question.
	MaxQuestionRunes = 2000
)

// MaxPairs is the most pairs a collection holds: the model is rebuilt whole
// after each change. A variable so that tests can lower it.
var MaxPairs = 200_000

func learnPrefix(c string) []byte { return []byte(collectionDataP + c + learnKeyInfix) }

func learnKey(c string, p index.Pair) []byte {
	h := sha256.Sum256([]byte(p.Question))
	return []byte(collectionDataP + c + learnKeyInfix + hex.EncodeToString(h[:12]) + "/" + p.ChunkID)
}

// learnState is a collection's learned model and the generations of pairs
// asked for and built.
type learnState struct {
	mu    sync.Mutex
	want  uint64 // bumped by every applied OpLearn, and at load
	built uint64 // the generation model was built from
	model *learn.Model
	err   error // the last build's error
	// held is the number of pairs stored, for the MaxPairs check without
	// counting them at every call: counted once when first needed (-1
	// before), then added to by each applied record (a duplicate counted
	// again, so it errs on the safe side) and set exactly by each build
	// that no record has overtaken.
	held int
	// generated is set once the collection holds generated questions
	// (enrich_store.go): every write may then change them.
	generated bool
}

// LearnInfo describes a collection's learned model.
type LearnInfo struct {
	learn.Stats
	// Building reports that pairs changed and the model is being rebuilt;
	// searches use the previous one meanwhile.
	Building bool
	// BuildError is the last build's failure ("" when it succeeded).
	BuildError string
}

// LearnReport is what a Learn call did.
type LearnReport struct {
	// Added is the number of pairs written (duplicates of a pair already
	// held are written again, harmlessly).
	Added int
	// Refused lists the pairs not learned, each with the reason.
	Refused []RefusedPair
	Info    LearnInfo
}

// RefusedPair is a pair Learn did not take, and why.
type RefusedPair struct {
	Index  int
	Pair   index.Pair
	Reason string
}

// Learn adds labelled pairs to a collection (replace: they replace all of its
// pairs; none then forgets them all) and returns once this node's model
// includes them (with noWait, once they are written: a client sending many
// batches waits for the model once, at the end). A pair whose chunk does not exist, whose question is empty,
// one character, or too long, is refused and reported; the others are learned.
// A pair may name a document instead of a chunk: the chunk of it that shares
// the most with the question is taken.
func (s *Store) Learn(ctx context.Context, collection string, pairs []index.Pair, replace, noWait bool) (LearnReport, error) {
	c, err := s.getFresh(ctx, collection)
	if err != nil {
		return LearnReport{}, err
	}
	if len(pairs) > MaxPairsPerWrite {
		return LearnReport{}, fmt.Errorf("%w: %d pairs in one call, over the limit of %d: send them in batches", index.ErrInvalid, len(pairs), MaxPairsPerWrite)
	}
	var rep LearnReport
	var kept []index.Pair
	err = s.db.View(func(txn *badger.Txn) error {
		for i, p := range pairs {
			p.Question = strings.TrimSpace(p.Question)
			p.ChunkID = strings.TrimSpace(p.ChunkID)
			reason, err := s.checkPair(txn, collection, &p)
			if err != nil {
				return err
			}
			if reason != "" {
				rep.Refused = append(rep.Refused, RefusedPair{Index: i, Pair: pairs[i], Reason: reason})
				continue
			}
			kept = append(kept, p)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if len(kept) == 0 && !replace {
		rep.Info = c.learnInfo()
		return rep, nil
	}
	s.wmu.Lock()
	if err := s.syncForWrite(ctx); err != nil {
		s.wmu.Unlock()
		return rep, err
	}
	if !replace {
		if n := s.heldPairs(c); n+len(kept) > MaxPairs {
			s.wmu.Unlock()
			return rep, fmt.Errorf("%w: collection %s holds %d learned pairs; %d more would pass the limit of %d", index.ErrInvalid, collection, n, len(kept), MaxPairs)
		}
	}
	recs := []index.Record{{Op: index.OpLearn, Collection: collection, Pairs: kept, Replace: replace}}
	err = s.commit(ctx, recs, nil)
	want := c.learn.wantGen()
	s.wmu.Unlock()
	if err != nil {
		return rep, err
	}
	rep.Added = len(kept)
	if noWait {
		rep.Info = c.learnInfo()
		return rep, nil
	}
	if err := s.waitLearned(ctx, c, want); err != nil {
		return rep, err
	}
	rep.Info = c.learnInfo()
	return rep, nil
}

// checkPair resolves a pair's chunk (a document id stands for its first
// chunk) and returns why it cannot be learned ("" when it can).
func (s *Store) checkPair(txn *badger.Txn, collection string, p *index.Pair) (string, error) {
	n := utf8.RuneCountInString(p.Question)
	switch {
	case !utf8.ValidString(p.Question):
		return "question is not valid UTF-8", nil
	case n == 0:
		return "question is empty", nil
	case n == 1:
		return fmt.Sprintf("question %q is one character", p.Question), nil
	case p.ChunkID == "":
		return "no chunk or document named", nil
	case n > MaxQuestionRunes:
		return fmt.Sprintf("question is %d characters, over the limit of %d", n, MaxQuestionRunes), nil
	}
	_, err := txn.Get(chunkKey(collection, p.ChunkID))
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return "", err
	}
	var d index.Document
	err = readJSON(txn, docKey(collection, p.ChunkID), &d)
	switch {
	case errors.Is(err, index.ErrNotFound) || (err == nil && len(d.Chunks) == 0):
		return fmt.Sprintf("no chunk or document %q in collection %s", analysis.TruncateRunes(p.ChunkID, 80), collection), nil
	case err != nil:
		return "", err
	}
	if len(d.Chunks) > 1 { // the document holds references: read the chunks
		for i, ref := range d.Chunks {
			if err := readJSON(txn, chunkKey(collection, ref.ID), &d.Chunks[i]); err != nil {
				return "", fmt.Errorf("document %q chunk %s: %w", p.ChunkID, ref.ID, err)
			}
		}
	}
	p.ChunkID = bestChunk(s.an, p.Question, d.Chunks)
	return "", nil
}

// bestChunk is the chunk of a document that shares the most character
// bigrams with a question (the first at a tie): the one a pair naming the
// document most likely means.
func bestChunk(an *analysis.Analyzer, question string, chunks []index.Chunk) string {
	best, bestN := chunks[0].ID, -1
	grams := an.Grams(question)
	for _, c := range chunks {
		text := an.Normalize(strings.Join(c.HeadingPath, " ") + " " + c.Text).Text
		n := 0
		for _, g := range grams {
			if strings.Contains(text, g) {
				n++
			}
		}
		if n > bestN {
			best, bestN = c.ID, n
		}
	}
	return best
}

// heldPairs is the number of pairs c holds (learnState.held); called with
// wmu held, so no record is applied meanwhile.
func (s *Store) heldPairs(c *coll) int {
	c.learn.mu.Lock()
	n := c.learn.held
	c.learn.mu.Unlock()
	if n >= 0 {
		return n
	}
	n = s.countPairs(c.cfg.Name)
	c.learn.mu.Lock()
	c.learn.held = n
	c.learn.mu.Unlock()
	return n
}

// countPairs counts a collection's learned pairs (keys only).
func (s *Store) countPairs(collection string) int {
	n := 0
	_ = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = learnPrefix(collection)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

// learnBadger applies an OpLearn record's pairs. A replacing record's old
// pairs are dropped before (DropPrefix, outside the transaction, like a
// deleted collection's data: replaying it drops them again).
func learnBadger(txn *badger.Txn, r *index.Record) error {
	for _, p := range r.Pairs {
		if err := writeJSON(txn, learnKey(r.Collection, p), &p); err != nil {
			return err
		}
	}
	return nil
}

// Learned returns a collection's learned model (nil when it has none).
func (s *Store) Learned(collection string) (*learn.Model, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	c.learn.mu.Lock()
	defer c.learn.mu.Unlock()
	return c.learn.model, nil
}

// WaitLearned returns once the collection's model includes every pair this
// node has applied.
func (s *Store) WaitLearned(ctx context.Context, collection string) error {
	c, err := s.get(collection)
	if err != nil {
		return err
	}
	return s.waitLearned(ctx, c, c.learn.wantGen())
}

// WaitLearnedAll returns once every collection's model includes the pairs
// this node has applied (at start: the models the learner builds at open).
func (s *Store) WaitLearnedAll(ctx context.Context) error {
	for _, c := range s.collsSnapshot() {
		if err := s.waitLearned(ctx, c, c.learn.wantGen()); err != nil {
			return err
		}
	}
	return nil
}

// LearnInfo describes a collection's learned model.
func (s *Store) LearnInfo(collection string) (LearnInfo, error) {
	c, err := s.get(collection)
	if err != nil {
		return LearnInfo{}, err
	}
	return c.learnInfo(), nil
}

func (c *coll) learnInfo() LearnInfo {
	c.learn.mu.Lock()
	defer c.learn.mu.Unlock()
	info := LearnInfo{Stats: c.learn.model.Stats(), Building: c.learn.built < c.learn.want}
	if c.learn.err != nil {
		info.BuildError = c.learn.err.Error()
	}
	return info
}

func (l *learnState) wantGen() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.want
}

// pairsChanged marks a collection's model for rebuilding and wakes the
// learner.
func (s *Store) pairsChanged(r *index.Record) {
	s.mu.RLock()
	c := s.colls[r.Collection]
	s.mu.RUnlock()
	if c == nil {
		return // loading the collection builds its model
	}
	c.learn.mu.Lock()
	c.learn.want++
	switch {
	case r.Replace:
		c.learn.held = len(r.Pairs)
	case c.learn.held >= 0:
		c.learn.held += len(r.Pairs)
	}
	c.learn.mu.Unlock()
	s.kickLearner()
}

// generatedChanged marks a collection's model for rebuilding when a
// document write may have changed its generated questions.
func (s *Store) generatedChanged(r *index.Record) {
	s.mu.RLock()
	c := s.colls[r.Collection]
	s.mu.RUnlock()
	if c == nil {
		return
	}
	c.learn.mu.Lock()
	kick := c.learn.generated || hasGenerated(r)
	if kick {
		c.learn.generated = true
		c.learn.want++
	}
	c.learn.mu.Unlock()
	if kick {
		s.kickLearner()
	}
}

func (s *Store) kickLearner() {
	select {
	case s.learnKick <- struct{}{}:
	default:
	}
}

// startLearner starts the goroutine that builds learned models.
func (s *Store) startLearner() {
	s.learnKick = make(chan struct{}, 1)
	s.learnStop, s.learnDone = make(chan struct{}), make(chan struct{})
	s.learnBuilt = make(chan struct{})
	go func() {
		defer close(s.learnDone)
		for {
			select {
			case <-s.learnStop:
				return
			case <-s.learnKick:
			}
			round := time.Now()
			for _, c := range s.collsSnapshot() {
				c.learn.mu.Lock()
				want, built := c.learn.want, c.learn.built
				c.learn.mu.Unlock()
				if built >= want {
					continue
				}
				start := time.Now()
				m, n, gen, err := s.buildModel(c)
				if err == nil && m != nil {
					st := m.Stats()
					s.logger.Info("learned model built", "collection", c.cfg.Name, "pairs", st.Pairs, "questions", st.Questions,
						"reliability", st.Reliability, "trust", st.Trust, "took", time.Since(start).Round(time.Millisecond))
				}
				if err != nil {
					s.logger.Warn("learned model not rebuilt; searches use the previous one", "collection", c.cfg.Name, "err", err)
				}
				c.learn.mu.Lock()
				if err == nil {
					c.learn.model = m
					if c.learn.want == want { // no record applied since the pairs were read
						c.learn.held = n
					}
				}
				c.learn.err = err
				c.learn.built = want
				if gen > 0 {
					c.learn.generated = true
				}
				c.learn.mu.Unlock()
			}
			s.learnMu.Lock()
			close(s.learnBuilt)
			s.learnBuilt = make(chan struct{})
			s.learnMu.Unlock()
			// Rest as long as the round took before the next one: during
			// an enriched ingest every batch changes the generated
			// questions, and rebuilding back to back would take a core
			// from the ingest. Changes meanwhile coalesce.
			if took := time.Since(round); took > 100*time.Millisecond {
				select {
				case <-s.learnStop:
					return
				case <-time.After(took):
				}
			}
		}
	}()
}

func (s *Store) stopLearner() {
	if s.learnStop != nil {
		close(s.learnStop)
		<-s.learnDone
		s.learnStop = nil
	}
}

func (s *Store) collsSnapshot() []*coll {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*coll, 0, len(s.colls))
	for _, c := range s.colls {
		out = append(out, c)
	}
	return out
}

// waitLearned returns when c's model is built from generation want or later.
func (s *Store) waitLearned(ctx context.Context, c *coll, want uint64) error {
	for {
		s.learnMu.Lock()
		ch := s.learnBuilt
		s.learnMu.Unlock()
		c.learn.mu.Lock()
		done := c.learn.built >= want
		c.learn.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pairs written; the model is still being built: %w", ctx.Err())
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// buildModel reads a collection's pairs and generated questions, with their
// chunks' text, and learns a model from them (nil when it has neither);
// labelled is the number of pairs read, generated the number of chunks with
// generated questions.
func (s *Store) buildModel(c *coll) (m *learn.Model, labelled, generated int, err error) {
	name := c.cfg.Name
	var samples []learn.Sample
	err = s.db.View(func(txn *badger.Txn) error {
		passage := func(id string) (string, error) {
			var ch index.Chunk
			switch err := readJSON(txn, chunkKey(name, id), &ch); {
			case err == nil:
				return ch.DocTitle + "\n" + strings.Join(ch.HeadingPath, "\n") + "\n" + ch.Text, nil
			case errors.Is(err, index.ErrNotFound):
				return "", nil
			default:
				return "", err
			}
		}
		err := eachItem(txn, string(learnPrefix(name)), true, func(item *badger.Item) error {
			var p index.Pair
			if err := itemJSON(item, &p); err != nil {
				return err
			}
			text, err := passage(p.ChunkID)
			samples = append(samples, learn.Sample{Question: p.Question, ChunkID: p.ChunkID, Passage: text})
			labelled++
			return err
		})
		if err != nil {
			return err
		}
		prefix := generatedPrefix(name)
		return eachItem(txn, string(prefix), true, func(item *badger.Item) error {
			var g storedGenerated
			if err := itemJSON(item, &g); err != nil {
				return err
			}
			id := string(item.Key()[len(prefix):])
			// Translation does not learn from generated questions: the
			// chunk need only exist.
			switch _, err := txn.Get(chunkKey(name, id)); {
			case errors.Is(err, badger.ErrKeyNotFound):
				return nil
			case err != nil:
				return err
			}
			generated++
			for _, q := range learn.GeneratedQuestions(g.Questions, g.Keywords) {
				samples = append(samples, learn.Sample{Question: q, ChunkID: id, Weight: learn.GeneratedWeight})
			}
			return nil
		})
	})
	if err != nil || len(samples) == 0 {
		return nil, labelled, generated, err
	}
	return learn.Build(s.an, c.vocab.Load(), samples), labelled, generated, nil
}

// LearnedSearch returns the chunks that the labelled questions most like
// query name (see learn.Model.Similar), at most k, passing the filter, each
// with the most similar labelled question as its Via. A collection without
// pairs returns none.
func (s *Store) LearnedSearch(ctx context.Context, collection, query string, f index.Filter, k int) ([]index.Hit, error) {
	c, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	if err := c.checkFilter(collection, f); err != nil {
		return nil, err
	}
	c.learn.mu.Lock()
	m := c.learn.model
	c.learn.mu.Unlock()
	if m == nil {
		return nil, nil
	}
	matches := m.Similar(learn.Keys(s.an, c.vocab.Load(), query))
	hits := make([]index.Hit, len(matches))
	for i, mt := range matches {
		hits[i] = index.Hit{ChunkID: mt.ChunkID, Score: mt.Score, Via: []string{mt.Question}}
		if mt.Generated {
			hits[i].Via = append(hits[i].Via, "generated")
		}
	}
	return c.graph.Known(hits, &f, k), nil
}
