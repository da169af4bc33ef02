package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

// Sink receives documents. *Local writes into a store in this process; the
// command line also has a gRPC sink that sends to a server.
type Sink interface {
	// Upsert writes inputs into a collection, returning one outcome per input.
	// An error fails the whole batch; a bad input should fail the batch only
	// when the sink cannot tell which input was bad.
	Upsert(ctx context.Context, collection string, ins []Input) ([]index.Outcome, error)
	// Delete removes documents by id.
	Delete(ctx context.Context, collection string, ids []string) error
	// DocumentSources lists every document's id and source.
	DocumentSources(ctx context.Context, collection string) (map[string]string, error)
}

// Options configures Run. The zero value is valid.
type Options struct {
	// Collection receives the documents ("default" if empty).
	Collection string
	// Prune deletes documents that came from the folder but whose files are gone.
	Prune bool
	// MaxFileSize refuses larger files (default 32 MiB).
	MaxFileSize int64
	// BatchSize is the most documents per write (default 1000, a server's
	// limit per request), BatchBytes the most text (default 4 MiB, a
	// server's default write budget): larger batches make fewer, larger
	// index segments, which bleve merges less.
	BatchSize  int
	BatchBytes int
	// Progress, if set, is called after each file with files done and total.
	Progress func(done, total int)
}

// FileError is a file that could not be ingested, and why.
type FileError struct {
	Path string
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Report summarises a run.
type Report struct {
	Files                                     int
	Added, Updated, Unchanged, Stale, Deleted int
	Skipped                                   []FileError // not a format ingest reads
	Failed                                    []FileError
	// Formats has the files of each extension ("pdf", "md"; "" for none):
	// how many were read or failed to read, the text read from them and the
	// time spent reading (parsing and extracting, not indexing).
	Formats map[string]FormatStats
	// Took is the whole run, indexing included.
	Took time.Duration
}

// FormatStats counts the files of one format in a run.
type FormatStats struct {
	Files, Read, Failed, Skipped int
	// TextBytes is the UTF-8 text extracted (content and question renderings).
	TextBytes int64
	// Took is the time spent reading these files.
	Took time.Duration
}

// full reports whether a batch of n documents and b bytes of text is as
// large as a write may be.
func (opts *Options) full(n, b int) bool { return n >= opts.BatchSize || b >= opts.BatchBytes }

func (opts *Options) setDefaults() {
	opts.Collection = cmp.Or(opts.Collection, "default")
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 32 << 20
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
}

// Write writes inputs into opts.Collection as Run writes the files it reads:
// in batches of at most opts.BatchSize documents or opts.BatchBytes of text,
// two at a time. Inputs the sink refuses are in Report.Failed; the error is
// only for failures of the sink itself or cancellation.
func Write(ctx context.Context, sink Sink, ins []Input, opts Options) (Report, error) {
	opts.setDefaults()
	start := time.Now()
	var rep Report
	w := newBatchWriter(ctx, sink, opts.Collection, writeDepth)
	for i := 0; i < len(ins); {
		j, n := i, 0
		for j < len(ins) && !opts.full(j-i, n) {
			n += len(ins[j].Content)
			j++
		}
		if err := w.send(ins[i:j]); err != nil {
			w.wait(&rep)
			return rep, err
		}
		i = j
	}
	err := w.wait(&rep)
	rep.Took = time.Since(start)
	return rep, err
}

// Run ingests the files under each path (a folder or a single file) into the
// sink. Files that fail are reported in Report.Failed while the rest continue;
// the error is only for failures of the sink itself or cancellation.
func Run(ctx context.Context, sink Sink, paths []string, opts Options) (Report, error) {
	opts.setDefaults()
	start := time.Now()
	rep := Report{Formats: map[string]FormatStats{}}
	files, roots, failed, err := collect(paths)
	if err != nil {
		return rep, err
	}
	rep.Failed = failed
	rep.Files = len(files)
	seen := map[string]bool{}
	owner := map[string]string{} // document id → the file it came from in this run
	w := newBatchWriter(ctx, sink, opts.Collection, writeDepth)
	var batch []Input
	var batchBytes int
	flush := func() error {
		err := w.send(batch)
		batch, batchBytes = nil, 0
		return err
	}
	fail := func(err error) (Report, error) {
		w.wait(&rep)
		return rep, err
	}
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		t0 := time.Now()
		ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(f.path)), ".")
		var (
			ins    []Input
			corpus *corpusFile // a corpus is streamed: ins stays empty
			err    error
		)
		if ext == "jsonl" {
			corpus, err = checkCorpus(f.root, f.path)
		} else {
			ins, err = readFile(f.root, f.path, opts.MaxFileSize)
		}
		st := rep.Formats[ext]
		st.Files++
		st.Took += time.Since(t0)
		switch {
		case errors.Is(err, ErrUnsupported), errors.Is(err, ErrEmpty):
			st.Skipped++
		case err != nil:
			st.Failed++
		default:
			st.Read++
			if corpus != nil {
				st.TextBytes += corpus.text
			}
			for _, in := range ins {
				st.TextBytes += int64(len(in.Content))
				for _, q := range in.Questions {
					st.TextBytes += int64(len(q.Render()))
				}
			}
		}
		rep.Formats[ext] = st
		switch {
		case errors.Is(err, ErrUnsupported), errors.Is(err, ErrEmpty):
			rep.Skipped = append(rep.Skipped, FileError{f.path, err})
		case err != nil:
			rep.Failed = append(rep.Failed, FileError{f.path, err})
			// Keep what an earlier run stored from this file: prune must not
			// delete a document because its file is broken today.
			seen[docID(f.root, f.path)] = true
		}
		add := func(in Input) error {
			if err := ClaimID(owner, &in, f.path); err != nil {
				rep.Failed = append(rep.Failed, FileError{f.path, err})
				return nil
			}
			seen[in.ID] = true
			batch = append(batch, in)
			batchBytes += len(in.Content)
			if opts.full(len(batch), batchBytes) {
				if err := flush(); err != nil {
					return sinkError{err}
				}
			}
			return nil
		}
		for _, in := range ins {
			if err := add(in); err != nil {
				return fail(err.(sinkError).err)
			}
		}
		if corpus != nil && err == nil {
			if err := corpus.each(add); err != nil {
				var se sinkError
				if errors.As(err, &se) {
					return fail(se.err)
				}
				// Changed since it was checked: what was read is written.
				rep.Failed = append(rep.Failed, FileError{f.path, fmt.Errorf("changed while it was read: %w", err)})
			}
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(files))
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := w.wait(&rep); err != nil {
		return rep, err
	}
	if opts.Prune && len(roots) > 0 {
		n, err := prune(ctx, sink, opts.Collection, roots, seen, rep.Failed)
		rep.Deleted = n
		if err != nil {
			return rep, err
		}
	}
	sort.Slice(rep.Failed, func(i, j int) bool { return rep.Failed[i].Path < rep.Failed[j].Path })
	rep.Took = time.Since(start)
	return rep, nil
}

type file struct{ root, path string }

// sinkError carries a sink's failure out of a corpus being streamed.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

// collect lists the files under paths (folders are walked, hidden entries
// skipped) and the folders among paths (the roots that prune looks under).
func collect(paths []string) (files []file, roots map[string]bool, failed []FileError, err error) {
	roots = map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ingest %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, file{filepath.Dir(abs), abs})
			continue
		}
		roots[abs] = true
		err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				failed = append(failed, FileError{path, err})
				return nil
			}
			if path != abs && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				files = append(files, file{abs, path})
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return files, roots, failed, nil
}

// ReadAll reads every file under paths into inputs, as Run would, without
// writing anything; files that fail are returned separately.
func ReadAll(paths []string, maxSize int64) ([]Input, []FileError, error) {
	if maxSize <= 0 {
		maxSize = 32 << 20
	}
	files, _, failed, err := collect(paths)
	if err != nil {
		return nil, nil, err
	}
	var out []Input
	for _, f := range files {
		ins, err := readFile(f.root, f.path, maxSize)
		if err != nil {
			failed = append(failed, FileError{f.path, err})
			continue
		}
		out = append(out, ins...)
	}
	return out, failed, nil
}

// isSinkFailure reports whether err is about the sink (unreachable server,
// cancelled run) rather than about one input.
func isSinkFailure(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, index.ErrNotFound) || errors.Is(err, ErrSinkUnavailable) ||
		errors.Is(err, index.ErrNoSpace) || errors.Is(err, ErrSinkBusy)
}

// ErrSinkUnavailable is returned by sinks that cannot reach their store.
var ErrSinkUnavailable = errors.New("sink unavailable")

// ErrSinkBusy is returned by sinks whose store refuses writes for now (a
// server over its write budget, its rate limits, or out of disk): Run
// retries the batch a few times, waiting longer each time, then stops.
var ErrSinkBusy = errors.New("sink busy")

// prune deletes the documents from under roots that this run did not see. A
// document whose source failed (or lies under a folder that failed) is kept:
// a corpus.jsonl that is broken today keeps its documents, whatever their ids.
func prune(ctx context.Context, sink Sink, collection string, roots map[string]bool, seen map[string]bool, failed []FileError) (int, error) {
	sources, err := sink.DocumentSources(ctx, collection)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	var gone []string
next:
	for id, src := range sources {
		if seen[id] {
			continue
		}
		for _, f := range failed {
			if src == f.Path || strings.HasPrefix(src, f.Path+string(filepath.Separator)) {
				continue next
			}
		}
		for root := range roots {
			if strings.HasPrefix(src, root+string(filepath.Separator)) {
				gone = append(gone, id)
				break
			}
		}
	}
	sort.Strings(gone)
	if len(gone) == 0 {
		return 0, nil
	}
	if err := sink.Delete(ctx, collection, gone); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return len(gone), nil
}

// ClaimID records that in's document id comes from the file at path. When
// another file of the run already has that id (x.docx beside x.pdf, a common
// export, or a.md beside a.txt), the later file's document gets the id with
// its extension ("x.pdf") instead of failing; only if that is taken too is
// it an error. Files are walked in a fixed order, so ids are stable.
func ClaimID(owner map[string]string, in *Input, path string) error {
	if prev, ok := owner[in.ID]; ok && prev != path {
		alt := in.ID + strings.ToLower(filepath.Ext(path))
		if prev2, ok := owner[alt]; ok && prev2 != path {
			return fmt.Errorf("document id %q is already used by %s, and %q by %s", in.ID, prev, alt, prev2)
		}
		in.ID = alt
	}
	owner[in.ID] = path
	return nil
}

// docID is a file's document id: its path under the root, with forward
// slashes and without the extension ("sales/02-price-objection").
func docID(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		rel = filepath.Base(path)
	}
	rel = filepath.ToSlash(rel)
	return strings.TrimSuffix(rel, filepath.Ext(rel))
}

// supportedExts are the file extensions ingest reads.
var supportedExts = []string{".md", ".markdown", ".txt", ".text", ".html", ".htm", ".srt", ".vtt", ".jsonl", ".csv", ".xlsx", ".docx", ".pptx", ".pdf"}

func supportedExt(ext string) bool { return slices.Contains(supportedExts, ext) }

// readFile reads one file into inputs (several for a .jsonl corpus).
func readFile(root, path string, maxSize int64) ([]Input, error) {
	st, err := statFile(root, path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, st.Size(), maxSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseFile(root, path, b)
}

// statFile checks that the file at path is one ingest reads: a supported
// extension, a regular file, and no symlink out of root.
func statFile(root, path string) (fs.FileInfo, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if !supportedExt(ext) {
		return nil, fmt.Errorf("%w %q (reads %s)", ErrUnsupported, ext, strings.Join(supportedExts, ", "))
	}
	li, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, fmt.Errorf("resolve symlink: %w", err)
		}
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(target, realRoot+string(filepath.Separator)) {
			return nil, fmt.Errorf("%w (%s)", ErrEscapes, target)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrUnsupported)
	}
	return st, nil
}

// corpusFile is a .jsonl corpus that Run checks whole, then reads again line
// by line as it writes the documents, so that they are never all in memory
// at once and the file may be larger than MaxFileSize (each line is bounded
// instead, by ReadCorpus's 64 MiB).
type corpusFile struct {
	path string
	text int64 // bytes of text (as Run counts other files: titles aside)
}

// checkCorpus reads the corpus at path once, checking every line as
// ReadCorpus does, without keeping the documents.
func checkCorpus(root, path string) (*corpusFile, error) {
	if _, err := statFile(root, path); err != nil {
		return nil, err
	}
	c := &corpusFile{path: path}
	err := c.each(func(in Input) error {
		c.text += int64(len(in.Content))
		return nil
	})
	return c, err
}

// each calls fn with the corpus's documents in order, reading the file again.
func (c *corpusFile) each(fn func(Input) error) error {
	f, err := os.Open(c.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ScanCorpus(f, c.path, fn)
}

// parseFile reads one file's bytes into inputs; path (under root) names the
// format and the document ids.
func parseFile(root, path string, b []byte) ([]Input, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".jsonl" {
		return ReadCorpus(bytes.NewReader(b), path)
	}
	if ext == ".xlsx" {
		return xlsxInputs(root, path, b)
	}
	if ext == ".docx" {
		return docxInputs(root, path, b)
	}
	if ext == ".pptx" {
		return pptxInputs(root, path, b)
	}
	if ext == ".pdf" {
		return pdfInputs(root, path, b)
	}
	decode := Decode
	if ext == ".html" || ext == ".htm" {
		decode = decodeHTML
	}
	text, _, err := decode(b)
	if err != nil {
		return nil, err
	}
	id := docID(root, path)
	in := Input{ID: id, Source: path}
	meta := map[string]string{}
	if dir, _, ok := strings.Cut(id, "/"); ok {
		meta["folder"] = dir
	}
	// A transcript's title is its first line when that looks like one, else
	// its file name.
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	transcript := func(title string, turns []turn) {
		in.Format, in.Content, in.Title = Transcript, formatTurns(turns), cmp.Or(title, name)
		if sp := speakers(turns); len(sp) > 0 {
			meta["speakers"] = strings.Join(sp, ",")
		}
	}
	switch ext {
	case ".md", ".markdown":
		in.Format, in.Content = Markdown, text
	case ".html", ".htm":
		// Markdown, so that the outline comes from the page's headings.
		in.Format = Markdown
		in.Title, in.Content = htmlToMarkdown(text)
	case ".srt", ".vtt":
		transcript(parseSubtitles(text))
	case ".csv":
		// A question bank (one chunk per question) or a plain table (text).
		in.Format, in.Title = Text, name
		in.Questions, in.Content, err = parseCSV(text)
		if err != nil {
			return nil, err
		}
	default: // .txt, .text
		in.Format, in.Content = Text, text
		if title, turns, ok := parseTranscript(text); ok {
			transcript(title, turns)
		}
	}
	if strings.TrimSpace(in.Content) == "" && len(in.Questions) == 0 {
		return nil, fmt.Errorf("%w (no text left once markup is dropped)", ErrEmpty)
	}
	if len(meta) > 0 {
		in.Metadata = meta
	}
	return []Input{in}, nil
}

// ReadCorpus reads the eval corpus format: one JSON object per line with id,
// title and text; each line is one document keeping its id. A bad line fails
// the whole file, naming the line.
func ReadCorpus(r io.Reader, source string) ([]Input, error) {
	var out []Input
	err := ScanCorpus(r, source, func(in Input) error {
		out = append(out, in)
		return nil
	})
	return out, err
}

// ScanCorpus calls fn with each document of a corpus in the format of
// ReadCorpus, in order, and stops at the first bad line (naming it) or the
// first error of fn. A corpus with no document is ErrEmpty.
func ScanCorpus(r io.Reader, source string, fn func(Input) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	ids := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
		}
		if len(line) == 0 {
			continue
		}
		var rec struct {
			ID    string `json:"id"`
			Title string `json:"title"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if rec.ID == "" {
			return fmt.Errorf("line %d: no \"id\"", n)
		}
		if prev, dup := ids[rec.ID]; dup {
			return fmt.Errorf("line %d: id %q already used on line %d", n, rec.ID, prev)
		}
		ids[rec.ID] = n
		if strings.TrimSpace(rec.Text) == "" && strings.TrimSpace(rec.Title) == "" {
			return fmt.Errorf("line %d: id %q has no title or text", n, rec.ID)
		}
		if err := fn(Input{ID: rec.ID, Title: rec.Title, Source: source, Format: Text, Content: rec.Text}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return ErrEmpty
	}
	return nil
}

// Local is a Sink that writes into a store opened in this process.
type Local struct {
	Store *store.Store
	Chunk ChunkOptions
}

// Upsert builds and writes the inputs.
func (l Local) Upsert(ctx context.Context, collection string, ins []Input) ([]index.Outcome, error) {
	docs := make([]index.Document, len(ins))
	for i, in := range ins {
		d, err := Build(in, l.Chunk)
		if err != nil {
			return nil, err
		}
		docs[i] = d
	}
	return l.Store.Upsert(ctx, collection, docs)
}

// Delete removes documents.
func (l Local) Delete(ctx context.Context, collection string, ids []string) error {
	_, err := l.Store.Delete(ctx, collection, ids)
	return err
}

// DocumentSources lists every document's source.
func (l Local) DocumentSources(ctx context.Context, collection string) (map[string]string, error) {
	out := map[string]string{}
	after := ""
	for {
		docs, more, err := l.Store.ListDocuments(ctx, collection, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			out[d.ID] = d.Source
			after = d.ID
		}
		if !more {
			return out, nil
		}
	}
}
