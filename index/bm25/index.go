package bm25

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// ErrFormat means the bleve index was built with another mapping.
var ErrFormat = errors.New("bleve index format is not " + textFormat)

// Index is one collection's bleve index: a derived BM25 index that the
// store can always rebuild from Badger. It is safe for concurrent use.
type Index struct {
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

// Options configure an Index. The zero value is the defaults.
type Options struct {
	// CacheBytes bounds the postings the index keeps decoded for searches
	// (DefaultCacheBytes when 0).
	CacheBytes int
}

// Open opens the bleve index in dir, creating it when missing.
func Open(dir string, opts Options) (*Index, error) {
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
			err = fmt.Errorf("%w (it is %q)", ErrFormat, f)
		}
		if err != nil {
			err = errors.Join(err, idx.Close())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bleve index %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Index{idx: idx, dir: dir, taatLimit: taatPostings, raw: newRawCache(cmp.Or(opts.CacheBytes, DefaultCacheBytes) / 2), warm: make(chan warmRequest, 64), stopWarm: cancel}
	t.warmWG.Add(1)
	go func() {
		defer t.warmWG.Done()
		t.warmer(ctx)
	}()
	return t, nil
}

// Close stops the prewarmer and closes the bleve index.
func (t *Index) Close() error {
	t.stopWarm()
	t.warmWG.Wait()
	return t.idx.Close()
}

// Remove closes and deletes the index files.
func (t *Index) Remove() error {
	return errors.Join(t.Close(), os.RemoveAll(t.dir))
}

// Pos returns the log position this index has applied (see Batch.SetPos).
func (t *Index) Pos() (uint64, error) {
	b, err := t.idx.GetInternal(posKey)
	if err != nil || len(b) == 0 {
		return 0, err
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// Terms holds a chunk's terms per scored field.
type Terms [index.NumFields][]string

// Keywords are the chunk's keywords (see analysis.Analyzer.Keywords).
func (t *Terms) Keywords(an *analysis.Analyzer) []index.Keyword { return an.Keywords(t[2], t[1]) }

// Lens are the field lengths in terms, as index.Chunk.Lens keeps them.
func (t *Terms) Lens() [index.NumFields]int {
	var lens [index.NumFields]int
	for f := range index.NumFields {
		lens[f] = len(t[f])
	}
	return lens
}

// Analyse analyses a chunk's fields (the document title, the chunk's heading
// path and text) with the collection's lexicon v (nil for none): the terms
// that Batch.Index indexes and the store counts in its statistics.
func Analyse(an *analysis.Analyzer, v *analysis.Vocab, title string, c *index.Chunk) Terms {
	var out Terms
	for i, s := range [3]string{title, index.HeadingString(c.HeadingPath), c.Text} {
		n := an.Normalize(s)
		for _, tk := range an.TokensOf(n, v) {
			out[i] = append(out[i], strings.ReplaceAll(tk.Term, " ", ""))
		}
		out[gramField] = append(out[gramField], analysis.GramsOf(n.Text)...)
	}
	return out
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

// Reader is a point-in-time view of the index, for writers that must see what
// is indexed before they change it. Close it after use.
type Reader struct{ r bindex.IndexReader }

// Reader opens a view of the index as it is now.
func (t *Index) Reader() (*Reader, error) {
	r, err := t.reader()
	if err != nil {
		return nil, err
	}
	return &Reader{r}, nil
}

// Close releases the view.
func (r *Reader) Close() error { return r.r.Close() }

// DocChunks returns the chunk versions (see ChunkVersion) indexed for a
// document.
func (r *Reader) DocChunks(ctx context.Context, docID string) ([]string, error) {
	tfr, err := r.r.TermFieldReader(ctx, []byte(docID), fieldDoc, false, false, false)
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
		id, err := r.r.ExternalID(d.ID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
}

// Versions returns every chunk version in the index (for verification; it
// reads the whole index).
func (t *Index) Versions(ctx context.Context) (map[string]bool, error) {
	r, err := t.reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	all, err := r.DocIDReaderAll()
	if err != nil {
		return nil, err
	}
	defer all.Close()
	got := map[string]bool{}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		id, err := all.Next()
		if err != nil {
			return nil, err
		}
		if id == nil {
			return got, nil
		}
		ext, err := r.ExternalID(id)
		if err != nil {
			return nil, err
		}
		got[ext] = true
	}
}

// Batch is a set of changes that Apply writes at once, with the log position
// they bring the index to.
type Batch struct{ b *bleve.Batch }

// NewBatch starts an empty batch.
func (t *Index) NewBatch() *Batch { return &Batch{t.idx.NewBatch()} }

// Index adds chunk c of document d with its analysed terms (see Analyse).
func (b *Batch) Index(d *index.Document, c *index.Chunk, terms Terms) error {
	return b.b.IndexAdvanced(newDocument(d, c, terms))
}

// Delete removes a chunk version.
func (b *Batch) Delete(version string) { b.b.Delete(version) }

// SetPos records the log position the index reaches when the batch is applied.
func (b *Batch) SetPos(p uint64) { b.b.SetInternal(posKey, []byte(strconv.FormatUint(p, 10))) }

// Apply writes the batch. A search that starts after Apply returns sees it.
func (t *Index) Apply(b *Batch) error { return t.idx.Batch(b.b) }

func (t *Index) reader() (bindex.IndexReader, error) {
	adv, err := t.idx.Advanced()
	if err != nil {
		return nil, err
	}
	return adv.Reader()
}

// ForceMerge merges all segments into one (tests use it to show that rankings
// do not depend on segment layout).
func (t *Index) ForceMerge(ctx context.Context) error { return MergeSegments(ctx, t.idx) }

// MergeSegments merges the segments of a scorch bleve index into one.
func MergeSegments(ctx context.Context, idx bleve.Index) error {
	adv, err := idx.Advanced()
	if err != nil {
		return err
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return fmt.Errorf("force merge: index is %T, not scorch", adv)
	}
	return s.ForceMerge(ctx, nil)
}

// CopyTo writes a consistent copy of the index, as it stands, into the new
// directory dir, while it serves and takes writes; bm25.Open opens the copy.
func (t *Index) CopyTo(dir string) error {
	c, ok := t.idx.(bleve.IndexCopyable)
	if !ok {
		return errors.New("copy index: bleve index cannot be copied")
	}
	if err := c.CopyTo(dirWriter(dir)); err != nil {
		return fmt.Errorf("copy index to %s: %w", dir, err)
	}
	return nil
}

// dirWriter is bleve's index.Directory over a file system directory.
type dirWriter string

func (d dirWriter) GetWriter(name string) (io.WriteCloser, error) {
	p := filepath.Join(string(d), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	return os.Create(p)
}
