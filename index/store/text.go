package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
)

// Fields of a chunk in the bleve index. title, heading and body hold terms
// already analysed by the Analyzer (separated by spaces); doc, meta and scope are
// exact-match keyword fields used for filters.
const (
	fieldTitle   = "title"
	fieldHeading = "heading"
	fieldBody    = "body"
	fieldGram    = "gram"
	fieldDoc     = "doc"
	fieldMeta    = "meta"
	fieldScope   = "scope"
)

// gramField is the index of the bigram field in scoredFields.
const gramField = 3

// scoredFields are the scored fields, in the order of Chunk.Lens.
var scoredFields = [index.NumFields]string{fieldTitle, fieldHeading, fieldBody, fieldGram}

var posKey = []byte("zhisou_pos")

// formatKey holds the index format (textFormat) in the bleve index. An index
// of another format (older mapping) is rebuilt from Badger on open.
var formatKey = []byte("zhisou_format")

// textFormat names the bleve mapping and what the search relies on; change it
// whenever either changes, and an existing index is rebuilt on open. An index
// without the key has format 1, the first mapping (the current one).
const textFormat = "1"

// errTextFormat means the bleve index was built with another mapping.
var errTextFormat = errors.New("bleve index format is not " + textFormat)

// text is one collection's bleve index: a derived BM25 index that can always be
// rebuilt from Badger.
type text struct {
	idx bleve.Index
	dir string
	// accs holds *accumulators for reuse by searches, pruners *pruner.
	accs    sync.Pool
	pruners sync.Pool
	// taatLimit is the most postings a pruned search scores term at a time
	// (taatPostings; tests lower it to exercise MaxScore).
	taatLimit int
	// cache holds what searches read from the current snapshot; warm takes
	// terms to decode into it to the warmer goroutine, which stops when
	// stopWarm is called (close calls it and waits).
	cache    atomic.Pointer[snapCache]
	raw      *rawCache // the segments' raw postings under the caches
	warm     chan warmRequest
	stopWarm context.CancelFunc
	warmWG   sync.WaitGroup
	// common is the warmer's list of common terms; dictScans counts the
	// field-dictionary scans that made it (for tests). The warmer goroutine
	// alone uses them.
	common    commonList
	dictScans int
}

func textMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	// Terms arrive pre-analysed; split on spaces only.
	if err := im.AddCustomAnalyzer("terms", map[string]any{"type": custom.Name, "tokenizer": whitespace.Name}); err != nil {
		return nil, err
	}
	termField := func() *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer, f.Store, f.IncludeInAll, f.IncludeTermVectors, f.DocValues = "terms", false, false, false, false
		return f
	}
	keyField := func() *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer, f.Store, f.IncludeInAll, f.IncludeTermVectors, f.DocValues = keyword.Name, false, false, false, false
		return f
	}
	dm := bleve.NewDocumentStaticMapping()
	for _, f := range scoredFields {
		dm.AddFieldMappingsAt(f, termField())
	}
	for _, f := range []string{fieldDoc, fieldMeta, fieldScope} {
		dm.AddFieldMappingsAt(f, keyField())
	}
	im.DefaultMapping = dm
	im.DefaultAnalyzer = "terms"
	return im, nil
}

// openText opens the bleve index in dir, creating it when missing.
func openText(dir string) (*text, error) {
	idx, err := bleve.Open(dir)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		m, merr := textMapping()
		if merr != nil {
			return nil, merr
		}
		idx, err = bleve.NewUsing(dir, m, scorch.Name, scorch.Name, nil)
		if err == nil {
			err = idx.SetInternal(formatKey, []byte(textFormat))
			if err != nil {
				err = errors.Join(err, idx.Close())
			}
		}
	} else if err == nil {
		var f []byte
		f, err = idx.GetInternal(formatKey)
		if len(f) == 0 {
			f = []byte("1")
		}
		if err == nil && string(f) != textFormat {
			err = fmt.Errorf("%w (it is %q)", errTextFormat, f)
		}
		if err != nil {
			err = errors.Join(err, idx.Close())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bleve index %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &text{idx: idx, dir: dir, taatLimit: taatPostings, raw: newRawCache(), warm: make(chan warmRequest, 64), stopWarm: cancel}
	t.warmWG.Add(1)
	go func() {
		defer t.warmWG.Done()
		t.warmer(ctx)
	}()
	return t, nil
}

func (t *text) close() error {
	t.stopWarm()
	t.warmWG.Wait()
	return t.idx.Close()
}

// remove closes and deletes the index files.
func (t *text) remove() error {
	return errors.Join(t.close(), os.RemoveAll(t.dir))
}

// pos returns the log position this index has applied.
func (t *text) pos() (uint64, error) {
	b, err := t.idx.GetInternal(posKey)
	if err != nil || len(b) == 0 {
		return 0, err
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// bleveID is the bleve document id of a chunk version: an unchanged chunk keeps
// its id, so re-indexing a document touches only the chunks that changed.
func bleveID(c *index.Chunk) string { return c.ID + "@" + c.Hash }

// chunkIDOf strips the version suffix from a bleve id.
func chunkIDOf(bid string) string {
	if i := strings.LastIndexByte(bid, '@'); i >= 0 {
		return bid[:i]
	}
	return bid
}

// analysed holds a chunk's terms per scored field.
type analysed [index.NumFields][]string

// keywords are the chunk's keywords (see Analyzer.Keywords).
func (t *analysed) keywords(an *analysis.Analyzer) []index.Keyword { return an.Keywords(t[2], t[1]) }

// analyseChunk analyses a chunk's fields with the collection's lexicon v (nil
// for none).
func analyseChunk(an *analysis.Analyzer, v *analysis.Vocab, title string, c *index.Chunk) analysed {
	var out analysed
	for i, s := range [3]string{title, index.HeadingString(c.HeadingPath), c.Text} {
		n := an.Normalize(s)
		for _, tk := range an.TokensOf(n, v) {
			out[i] = append(out[i], strings.ReplaceAll(tk.Term, " ", ""))
		}
		out[gramField] = append(out[gramField], analysis.GramsOf(n.Text)...)
	}
	return out
}

func bleveDoc(d *index.Document, c *index.Chunk, terms analysed) map[string]any {
	meta := make([]string, 0, len(d.Metadata))
	for k, v := range d.Metadata {
		meta = append(meta, metaTerm(k, v))
	}
	scope := make([]string, 0, len(c.HeadingPath))
	for i := range c.HeadingPath {
		scope = append(scope, scopeTerm(c.HeadingPath[:i+1]))
	}
	return map[string]any{
		fieldTitle:   strings.Join(terms[0], " "),
		fieldHeading: strings.Join(terms[1], " "),
		fieldBody:    strings.Join(terms[2], " "),
		fieldGram:    strings.Join(terms[3], " "),
		fieldDoc:     d.ID,
		fieldMeta:    meta,
		fieldScope:   scope,
	}
}

func metaTerm(k, v string) string { return k + "=" + v }

// scopeTerm is the filter term of a heading-path prefix: its parts, trimmed and
// lower-cased, joined by " > ".
func scopeTerm(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strings.ToLower(strings.TrimSpace(p))
	}
	return strings.Join(parts, " > ")
}

// docChunks returns the bleve ids indexed for a document.
func (t *text) docChunks(ctx context.Context, r bindex.IndexReader, docID string) ([]string, error) {
	tfr, err := r.TermFieldReader(ctx, []byte(docID), fieldDoc, false, false, false)
	if err != nil {
		return nil, err
	}
	defer tfr.Close()
	var ids []string
	var tfd bindex.TermFieldDoc
	for {
		d, err := tfr.Next(&tfd)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return ids, nil
		}
		id, err := r.ExternalID(d.ID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
}

func (t *text) reader() (bindex.IndexReader, error) {
	adv, err := t.idx.Advanced()
	if err != nil {
		return nil, err
	}
	return adv.Reader()
}

// forceMerge merges all segments into one (tests use it to show that rankings
// do not depend on segment layout).
func (t *text) forceMerge(ctx context.Context) error {
	adv, err := t.idx.Advanced()
	if err != nil {
		return err
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return fmt.Errorf("force merge: index is %T, not scorch", adv)
	}
	return s.ForceMerge(ctx, nil)
}
