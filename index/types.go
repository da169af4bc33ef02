package index

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// Errors callers branch on.
var (
	// ErrNotFound means the collection or document does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a collection with that name already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid means the caller's input is malformed; the message says how.
	ErrInvalid = errors.New("invalid argument")
	// ErrLocked means another process holds the data directory.
	ErrLocked = errors.New("data directory is in use by another process")
	// ErrDamaged means the data directory holds less than it had applied,
	// or a file of it cannot be read: it is not served as if it were whole.
	ErrDamaged = errors.New("data directory is damaged")
	// ErrNoSpace means the data directory's disk is too full for a write:
	// the write was refused, nothing acknowledged is lost.
	ErrNoSpace = errors.New("no space left on the data directory's disk")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable means a shared write log did not answer in time: the
	// write was not acknowledged (it may still be applied later), and the
	// caller may retry, here or on another node.
	ErrUnavailable = errors.New("write log unavailable")
)

// FieldWeights are the BM25F weights of a chunk's fields.
type FieldWeights struct {
	Title   float64 `json:"title"`
	Heading float64 `json:"heading"`
	Body    float64 `json:"body"`
}

// Collection is a knowledge base: the unit of isolation and of BM25 statistics.
type Collection struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	K1          float64      `json:"k1"`
	B           float64      `json:"b"`
	Weights     FieldWeights `json:"weights"`
	// GramWeight scales the character-bigram BM25 score added to the word
	// BM25F score: bigrams find passages whose words gse cut differently.
	GramWeight float64 `json:"gram_weight"`
	// DocWeight is the share of the scores of a document's other top chunks
	// added to a chunk's score: a passage in a document that answers the
	// query as a whole ranks higher.
	DocWeight float64 `json:"doc_weight"`
	// CoverWeight scales the weights of query terms that the document's other
	// top chunks match and this chunk does not.
	CoverWeight float64 `json:"cover_weight"`
	// Fusion weighs the candidate sources of a fused search; zero means the
	// defaults (DefaultFusion).
	Fusion FusionWeights `json:"fusion,omitzero"`
	// CreatedSeq is the log position that created the collection.
	CreatedSeq uint64 `json:"created_seq"`
}

// FusionWeights weigh the candidate sources of a fused search. Each source's
// scores are divided by its best score before weighting, so unbounded BM25
// scores cannot swamp the others.
type FusionWeights struct {
	BM25    float64 `json:"bm25"`
	Outline float64 `json:"outline"`
	Graph   float64 `json:"graph"`
	// Learned weighs the chunks that labelled questions like the query name
	// (see index/learn); its scores are already in 0..1 and are not divided
	// by the best. Weights stored before it existed read as the default.
	Learned float64 `json:"learned"`
}

// UnmarshalJSON reads weights, defaulting Learned when the JSON predates it.
func (w *FusionWeights) UnmarshalJSON(b []byte) error {
	type plain FusionWeights
	p := plain{Learned: DefaultFusion.Learned}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*w = FusionWeights(p)
	return nil
}

// IsZero reports whether no weight is set.
func (w FusionWeights) IsZero() bool { return w == FusionWeights{} }

// DefaultFusion are the fusion weights used when a collection sets none:
// BM25 1, outline 0.2, graph 0.01 (chosen on testdata/eval; see the README's
// ablation table), learned 1 (chosen by cross-validation on stard-train).
var DefaultFusion = FusionWeights{BM25: 1, Outline: 0.2, Graph: 0.01, Learned: 1}

// Validate reports what is wrong with the weights: each must be a finite
// number in 0..10, and at least one above 0.
func (w FusionWeights) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"bm25", w.BM25}, {"outline", w.Outline}, {"graph", w.Graph}, {"learned", w.Learned}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 10 {
			return fmt.Errorf("%w: fusion weight %s %v: want a number in 0..10", ErrInvalid, f.name, f.v)
		}
	}
	if w.IsZero() {
		return fmt.Errorf("%w: fusion weights are all 0", ErrInvalid)
	}
	return nil
}

// DefaultCollection returns a collection with the default scoring parameters:
// k1 = 1.2, b = 0.75; field weights title 2, heading 1.5, body 1; bigram weight
// 0.6; document weight 0.1; cover weight 2. They were chosen on
// testdata/eval and cmrc2018 (see the README's numbers).
func DefaultCollection(name string) Collection {
	return Collection{Name: name, K1: 1.2, B: 0.75, Weights: FieldWeights{Title: 2, Heading: 1.5, Body: 1}, GramWeight: 0.6, DocWeight: 0.1, CoverWeight: 2, Fusion: DefaultFusion}
}

// FusionWeights returns the collection's fusion weights, or DefaultFusion
// when it sets none.
func (c Collection) FusionWeights() FusionWeights {
	if c.Fusion.IsZero() {
		return DefaultFusion
	}
	return c.Fusion
}

var collectionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports what is wrong with the collection's settings.
func (c Collection) Validate() error {
	if !collectionName.MatchString(c.Name) {
		return fmt.Errorf("%w: collection name %q: want 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit", ErrInvalid, c.Name)
	}
	for _, v := range []float64{c.K1, c.B, c.GramWeight, c.DocWeight, c.CoverWeight, c.Weights.Title, c.Weights.Heading, c.Weights.Body} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: collection %q: a scoring parameter is %v; want finite numbers", ErrInvalid, c.Name, v)
		}
	}
	if c.K1 < 0 || c.K1 > 10 {
		return fmt.Errorf("%w: k1 %v: want 0..10", ErrInvalid, c.K1)
	}
	if c.B < 0 || c.B > 1 {
		return fmt.Errorf("%w: b %v: want 0..1", ErrInvalid, c.B)
	}
	w := c.Weights
	if c.GramWeight < 0 || c.GramWeight > 10 {
		return fmt.Errorf("%w: gram weight %v: want 0..10", ErrInvalid, c.GramWeight)
	}
	if c.CoverWeight < 0 || c.CoverWeight > 10 {
		return fmt.Errorf("%w: cover weight %v: want 0..10", ErrInvalid, c.CoverWeight)
	}
	if c.DocWeight < 0 || c.DocWeight > 1 {
		return fmt.Errorf("%w: doc weight %v: want 0..1", ErrInvalid, c.DocWeight)
	}
	if !c.Fusion.IsZero() {
		if err := c.Fusion.Validate(); err != nil {
			return err
		}
	}
	if w.Title < 0 || w.Heading < 0 || w.Body < 0 || w.Title+w.Heading+w.Body == 0 {
		return fmt.Errorf("%w: field weights %+v: want non-negative, not all zero", ErrInvalid, w)
	}
	return nil
}

// Document is one source document with its chunks, as stored.
type Document struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Source   string            `json:"source,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Version orders writes: an upsert with a lower version than the stored one
	// is ignored. Zero means "assigned by the store" (the log position).
	Version uint64 `json:"version"`
	// Hash is the content hash over title, metadata and chunks; an upsert with
	// the stored hash is a no-op.
	Hash   string  `json:"hash"`
	Chunks []Chunk `json:"chunks,omitempty"`
}

// Chunk is the retrieval unit: a few hundred characters under one heading path.
type Chunk struct {
	// ID is stable: derived from document id, heading path and ordinal.
	ID    string `json:"id"`
	DocID string `json:"doc_id"`
	// DocTitle is the document's title, kept with each chunk so that a hit
	// needs one read.
	DocTitle    string   `json:"doc_title,omitempty"`
	HeadingPath []string `json:"heading_path,omitempty"`
	// Ordinal is the chunk's position in the document, from 0.
	Ordinal int    `json:"ordinal"`
	Text    string `json:"text"`
	// Hash is the content hash of heading path and text.
	Hash string `json:"hash"`
	// Lens are the chunk's field lengths in terms (title, heading path, body,
	// bigrams),
	// filled by the store when it analyses the chunk.
	Lens [NumFields]int `json:"lens"`
	// Question is set when the chunk is one item of a question bank; Text is
	// then its readable rendering (see Question.Render), so that BM25 searches
	// every field.
	Question *Question `json:"question,omitempty"`
	// Keywords are the chunk's edges in the keyword graph, extracted by the
	// store when it analyses the chunk.
	Keywords []Keyword `json:"keywords,omitempty"`
	// Generated is what a language model wrote about the chunk at ingest
	// (store.Options.Enricher): nil when enrichment is off or failed. Hash
	// does not cover it (it is written about the content, not part of it);
	// the document's hash does.
	Generated *Generated `json:"generated,omitempty"`
}

// Generated holds the questions a learner might ask that a chunk answers,
// and its keywords, as a language model wrote them. The store keeps them
// apart from the chunk's text: the collection's learned model (index/learn)
// remembers the questions like labelled ones, at a lower weight.
type Generated struct {
	// Prompt is the version of the prompt that asked for them: a stored
	// Generated is reused for an unchanged chunk only under the same one.
	Prompt string `json:"prompt"`
	// Model is the provider and model that wrote them ("qwen/qwen-turbo").
	Model     string   `json:"model,omitempty"`
	Questions []string `json:"questions,omitempty"`
	Keywords  []string `json:"keywords,omitempty"`
}

// Keyword is a weighted chunk–keyword edge of the keyword graph.
type Keyword struct {
	Term string `json:"t"`
	// Weight is the keyword's salience in the chunk, in (0, 1): saturated
	// term frequency × normalised idf.
	Weight float64 `json:"w"`
}

// MaxKeywords is the number of keywords extracted per chunk.
const MaxKeywords = 8

// Question is one item of a question bank (a row of a CSV 题库).
type Question struct {
	// Stem is the question itself (题干); never empty.
	Stem string `json:"stem"`
	// Options are the choices in order; empty for a question without choices.
	Options []Option `json:"options,omitempty"`
	// Answer is the correct answer as written in the bank ("B", "AC", "正确").
	Answer string `json:"answer,omitempty"`
	// Analysis explains the answer (解析).
	Analysis string `json:"analysis,omitempty"`
	// Knowledge is the knowledge point the question tests (知识点).
	Knowledge string `json:"knowledge,omitempty"`
	// Difficulty is the bank's difficulty label, as written.
	Difficulty string `json:"difficulty,omitempty"`
	// Type is the question type, as written (单选题, 多选题, 判断题).
	Type string `json:"type,omitempty"`
}

// Option is one choice of a question.
type Option struct {
	// Label is the choice's letter ("A").
	Label string `json:"label"`
	// Text is the choice's text.
	Text string `json:"text"`
}

// Render returns the question as readable text, one field a line:
// "题目：…\nA. …\n答案：B\n解析：…\n知识点：…". Empty fields are left out.
func (q Question) Render() string {
	var b strings.Builder
	line := func(label, v string) {
		if v = strings.TrimSpace(v); v != "" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(label + v)
		}
	}
	line("题目：", q.Stem)
	for _, o := range q.Options {
		if o.Label == "" {
			line("", o.Text)
		} else {
			line(o.Label+". ", o.Text)
		}
	}
	line("答案：", q.Answer)
	line("解析：", q.Analysis)
	line("知识点：", q.Knowledge)
	line("题型：", q.Type)
	line("难度：", q.Difficulty)
	return b.String()
}

// ChunkID derives the stable chunk id from document id, heading path and the
// chunk's ordinal under that heading path.
func ChunkID(docID string, headingPath []string, ordinal int) string {
	h := sha256.New()
	h.Write([]byte(docID))
	for _, p := range headingPath {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	fmt.Fprintf(h, "\x00%d", ordinal)
	return docID + "#" + hex.EncodeToString(h.Sum(nil)[:6])
}

// ChunkVersion is the key of an immutable chunk version: its ID and content
// hash. It is the chunk's document id in the bleve index, so an unchanged
// chunk keeps its id and re-indexing a document touches only the chunks that
// changed; hits carry it as Hit.ChunkVersion.
func ChunkVersion(c *Chunk) string { return c.ID + "@" + c.Hash }

// ChunkIDOfVersion returns the chunk id of a chunk version.
func ChunkIDOfVersion(v string) string {
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		return v[:i]
	}
	return v
}

// DocIDOf returns the document id of a chunk id made by ChunkID.
func DocIDOf(chunkID string) string {
	if i := strings.LastIndexByte(chunkID, '#'); i >= 0 {
		return chunkID[:i]
	}
	return chunkID
}

// Seal fills the chunk and document hashes. Call it after building a document.
func (d *Document) Seal() {
	keys := make([]string, 0, len(d.Metadata))
	for k := range d.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var meta strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&meta, "%s=%s\x00", k, d.Metadata[k])
	}
	dh := sha256.New()
	fmt.Fprintf(dh, "%s\x00%s", d.Title, meta.String())
	for i := range d.Chunks {
		c := &d.Chunks[i]
		c.DocID, c.DocTitle = d.ID, d.Title
		// Title and metadata are indexed with every chunk, so they are part of
		// the chunk's hash: changing them re-indexes the chunk.
		ch := sha256.New()
		fmt.Fprintf(ch, "%s\x00%s\x00%s\x00%s", d.Title, meta.String(), strings.Join(c.HeadingPath, "\x00"), c.Text)
		if q := c.Question; q != nil {
			// Text renders every field, but a rendering can be ambiguous (a
			// field with a newline); the fields themselves decide.
			fmt.Fprintf(ch, "\x00q\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", q.Stem, q.Answer, q.Analysis, q.Knowledge, q.Difficulty, q.Type)
			for _, o := range q.Options {
				fmt.Fprintf(ch, "\x00%s\x01%s", o.Label, o.Text)
			}
		}
		c.Hash = hex.EncodeToString(ch.Sum(nil)[:8])
		fmt.Fprintf(dh, "%s:%s\x00", c.ID, c.Hash)
		if g := c.Generated; g != nil {
			// Not the chunk's content, but the document's: a document
			// enriched since it was stored is written again.
			fmt.Fprintf(dh, "g\x00%s\x00%s\x00%s\x01%s\x00", g.Prompt, g.Model, strings.Join(g.Questions, "\x00"), strings.Join(g.Keywords, "\x00"))
		}
	}
	d.Hash = hex.EncodeToString(dh.Sum(nil)[:12])
}

// Validate reports what is wrong with a document before it is written.
func (d *Document) Validate() error {
	size := len(d.Title)
	for i := range d.Chunks {
		size += len(d.Chunks[i].Text)
	}
	switch {
	case d.ID == "":
		return fmt.Errorf("%w: document id is empty", ErrInvalid)
	case len(d.ID) > 512:
		return fmt.Errorf("%w: document id is %d bytes, over the 512-byte limit", ErrInvalid, len(d.ID))
	case strings.ContainsAny(d.ID, "\x00\n"):
		return fmt.Errorf("%w: document id %q contains a NUL or newline", ErrInvalid, d.ID)
	case size > MaxDocumentBytes:
		return fmt.Errorf("%w: document %q has %.1f MiB of text, over the limit of %d MiB a document (split it into several documents)", ErrInvalid, d.ID, float64(size)/(1<<20), MaxDocumentBytes>>20)
	case len(d.Metadata) > MaxMetadataKeys:
		return fmt.Errorf("%w: document %q has %d metadata keys, over the limit of %d", ErrInvalid, d.ID, len(d.Metadata), MaxMetadataKeys)
	}
	for k := range d.Metadata {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: document %q: metadata key %q is empty or contains '=' or NUL", ErrInvalid, d.ID, k)
		}
	}
	return nil
}

// Document limits, checked by Validate before a write is logged: a document
// over them is refused with an error naming the limit, never acknowledged and
// then failed.
const (
	// MaxDocumentBytes bounds a document's text (title and chunks), the size
	// of the largest message the gRPC API takes.
	MaxDocumentBytes = 64 << 20
	// MaxMetadataKeys bounds a document's metadata keys.
	MaxMetadataKeys = 256
)

// HeadingString joins a heading path the way it is shown and filtered on.
func HeadingString(path []string) string { return strings.Join(path, " > ") }

// Outcome says what a write did.
type Outcome int

// Write outcomes.
const (
	// Unchanged: the same content was already stored; nothing was written.
	Unchanged Outcome = iota
	// Added: the document is new.
	Added
	// Updated: the document's content changed.
	Updated
	// Deleted: the document was removed.
	Deleted
	// Stale: the write carried an older version than the stored one (or a
	// tombstone's) and was ignored. A write without a version is Stale when
	// a client gave the stored document (or its tombstone) a version above
	// the log's position, which it takes as its own: give a version then.
	Stale
)

func (o Outcome) String() string {
	return [...]string{"unchanged", "added", "updated", "deleted", "stale"}[o]
}

// Pair is a labelled question: a question as a learner asked it and the
// chunk that answers it. A collection learns from its pairs which chunks
// answer questions like it and which passage words its questions' words
// stand for (see index/learn).
type Pair struct {
	Question string `json:"question"`
	ChunkID  string `json:"chunk_id"`
}
