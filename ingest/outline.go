// Package ingest turns source files into documents for the index: it reads
// folders (Markdown, plain text, HTML, transcripts and corpus.jsonl), detects
// encodings, finds the outline (Markdown headings and Chinese numbering such
// as 第二章, 一、, （一）, 1.2.3) and cuts chunks of a few hundred characters at
// sentence ends, never across a heading; transcript chunks hold whole turns.
package ingest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
)

// Format is how a document's content is parsed.
type Format int

// Formats.
const (
	// Text is plain text; the outline comes from Chinese numbering patterns.
	Text Format = iota
	// Markdown adds '#' headings to the numbering patterns.
	Markdown
	// Transcript is a dialogue, one turn per line ("讲师：今天讲价格异议。").
	// It has no outline: every chunk's heading path is the input's title
	// alone (none without one). Chunks hold whole turns up to Target runes; a
	// turn longer than Max is cut at sentence ends, each piece starting with
	// the turn's "说话人：" label.
	Transcript
)

// Input is a document as a source gives it, before parsing.
type Input struct {
	ID       string
	Title    string
	Source   string
	Format   Format
	Content  string
	Metadata map[string]string
	// Version is the caller's version (0: assigned by the store).
	Version uint64
	// Questions, when set, make the input a question bank: Build makes one
	// chunk per question, in order, and ignores Content and Format (Content
	// may be empty).
	Questions []index.Question
}

// ChunkOptions sets chunk sizes in runes. The zero value means the defaults.
type ChunkOptions struct {
	// Target is the size a chunk grows to before it is cut at a sentence end (300).
	Target int
	// Max is the hard limit; a longer sentence is cut mid-sentence (600).
	Max int
}

func (o ChunkOptions) withDefaults() ChunkOptions {
	if o.Target <= 0 {
		o.Target = 300
	}
	if o.Max <= 0 {
		o.Max = 2 * o.Target
	}
	if o.Max < o.Target {
		o.Max = o.Target
	}
	return o
}

// Build parses an input into a document with its outline and chunks. It fails
// only on inputs that cannot make a document (no id, no text).
func Build(in Input, opts ChunkOptions) (index.Document, error) {
	opts = opts.withDefaults()
	if len(in.Questions) > 0 {
		return buildBank(in)
	}
	if strings.TrimSpace(in.Content) == "" {
		return index.Document{}, fmt.Errorf("document %q: %w", in.ID, ErrEmpty)
	}
	if !utf8.ValidString(in.Content) {
		return index.Document{}, fmt.Errorf("document %q: content is not valid UTF-8", in.ID)
	}
	secs := parseOutline(in.Content, in.Format)
	title := in.Title
	for _, s := range secs {
		if title == "" && s.level == 10 {
			title = s.path[0] // the first "# " heading
		}
	}
	if title == "" {
		title = in.ID
	}
	cut := cutChunks
	if in.Format == Transcript {
		cut = cutTurns
		if t := strings.TrimSpace(in.Title); t != "" && !strings.ContainsAny(t, "\r\n") {
			secs[0].path = []string{t}
		}
	}
	d := index.Document{ID: in.ID, Title: title, Source: in.Source, Metadata: in.Metadata, Version: in.Version}
	// Ordinals count per heading path over the whole document: a heading path
	// that occurs twice (two "### 示例" under one parent, a 第三条 cited at the
	// start of a line) must not give two chunks the same id.
	ordinals := map[string]int{}
	for _, s := range secs {
		key := strings.Join(s.path, "\x00")
		for _, text := range cut(s.body, opts) {
			i := ordinals[key]
			ordinals[key]++
			d.Chunks = append(d.Chunks, index.Chunk{
				ID:          index.ChunkID(in.ID, s.path, i),
				HeadingPath: s.path,
				Ordinal:     len(d.Chunks),
				Text:        text,
			})
		}
	}
	if len(d.Chunks) == 0 {
		// Only headings: index them so that the document can still be found.
		var lines []string
		for _, s := range secs {
			lines = append(lines, index.HeadingString(s.path))
		}
		for i, text := range cutChunks(lines, opts) {
			d.Chunks = append(d.Chunks, index.Chunk{ID: index.ChunkID(in.ID, nil, i), Ordinal: i, Text: text})
		}
	}
	if err := d.Validate(); err != nil {
		return index.Document{}, err
	}
	d.Seal()
	return d, nil
}

// buildBank makes a question bank's document: one chunk per question, whose
// text renders every field and whose heading path is [title, knowledge point]
// (or [title]), so that a heading filter scopes a search by knowledge point.
func buildBank(in Input) (index.Document, error) {
	title := oneLine(in.Title)
	if title == "" {
		title = in.ID
	}
	d := index.Document{ID: in.ID, Title: title, Source: in.Source, Metadata: in.Metadata, Version: in.Version}
	for i, q := range in.Questions {
		if strings.TrimSpace(q.Stem) == "" {
			return index.Document{}, fmt.Errorf("document %q: question %d has no stem", in.ID, i)
		}
		q.Options = slices.Clone(q.Options)
		text := q.Render()
		if !utf8.ValidString(text) {
			return index.Document{}, fmt.Errorf("document %q: question %d is not valid UTF-8", in.ID, i)
		}
		path := []string{title}
		if k := oneLine(q.Knowledge); k != "" {
			path = append(path, k)
		}
		d.Chunks = append(d.Chunks, index.Chunk{
			ID:          index.ChunkID(in.ID, path, i),
			HeadingPath: path,
			Ordinal:     i,
			Text:        text,
			Question:    &q,
		})
	}
	if err := d.Validate(); err != nil {
		return index.Document{}, err
	}
	d.Seal()
	return d, nil
}

// oneLine collapses runs of white space, newlines included, to one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type section struct {
	path  []string
	level int // rank of the last heading; see headingRank
	body  []string
}

var (
	mdHeading = regexp.MustCompile(`^(#{1,6})\s+(.+?)(?:\s+#+)?\s*$`)
	// Chinese numbering patterns, from outer to inner. A marker starts the line.
	cnNum      = `[零一二三四五六七八九十百千两〇0-9]+`
	patPart    = regexp.MustCompile(`^第` + cnNum + `[编部篇]`)
	patChapter = regexp.MustCompile(`^第` + cnNum + `章`)
	patSection = regexp.MustCompile(`^第` + cnNum + `节`)
	// An article number starts a heading only when a space, a colon or the
	// end of the line follows it: "第三条所称…" cites an article in a sentence.
	patArticle  = regexp.MustCompile(`^第` + cnNum + `条(?:[\s\x{3000}:：]|$)`)
	patCnList   = regexp.MustCompile(`^[一二三四五六七八九十]+[、.．]`)
	patCnParen  = regexp.MustCompile(`^[（(][一二三四五六七八九十]+[）)]`)
	patDecimal  = regexp.MustCompile(`^(\d{1,2}(?:\.\d{1,2})+)\.?\s+\S`)
	sentenceEnd = "。！？；!?;"
)

// headingRank gives a heading line its nesting rank (smaller is outer) and its
// title, or ok=false when the line is not a heading. Markdown headings rank by
// level (10–60); numbering patterns rank between them so that "一、" nests under
// "## 2.3" and "（一）" under "一、". A long line or one that ends like a
// sentence is body text; 第X条 is the exception: an article's text often follows
// its number on the same line, so the number alone becomes the heading.
func headingRank(line string, format Format) (rank int, title, rest string, ok bool) {
	if format == Markdown {
		if m := mdHeading.FindStringSubmatch(line); m != nil && strings.TrimSpace(m[2]) != "" {
			return 10 * len(m[1]), strings.TrimSpace(m[2]), "", true
		}
	}
	if strings.Contains(line, " | ") {
		return 0, "", "", false // a table row ("第十二条 | 有限空间…"), not a heading
	}
	if loc := patArticle.FindStringIndex(line); loc != nil {
		marker := strings.TrimRight(strings.TrimSpace(line[:loc[1]]), ":：")
		rest := strings.TrimSpace(line[loc[1]:])
		if isShortTitle(rest) {
			return 45, strings.TrimSpace(line), "", true
		}
		return 45, marker, rest, true
	}
	if !isShortTitle(line) {
		return 0, "", "", false
	}
	switch {
	case patPart.MatchString(line):
		return 15, line, "", true
	case patChapter.MatchString(line):
		return 25, line, "", true
	case patSection.MatchString(line):
		return 35, line, "", true
	case patCnList.MatchString(line):
		return 37, line, "", true
	case patCnParen.MatchString(line):
		return 47, line, "", true
	case patDecimal.MatchString(line):
		depth := strings.Count(patDecimal.FindStringSubmatch(line)[1], ".")
		return 36 + 4*depth, line, "", true
	}
	return 0, "", "", false
}

func isShortTitle(s string) bool {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > 40 {
		return n == 0
	}
	last, _ := utf8.DecodeLastRuneInString(s)
	return !strings.ContainsRune(sentenceEnd+"，,：:", last)
}

// parseOutline splits content into sections, each with its heading path and
// its body lines.
func parseOutline(content string, format Format) []section {
	if format == Transcript {
		// One section: a turn that starts "第一章" or "一、" is speech.
		var body []string
		for line := range strings.Lines(content) {
			body = append(body, strings.TrimSpace(line))
		}
		return []section{{body: body}}
	}
	type open struct {
		rank  int
		title string
	}
	var stack []open
	var secs []section
	cur := section{}
	inFence := false
	flush := func() {
		if len(cur.body) > 0 || len(secs) == 0 || len(cur.path) > 0 {
			secs = append(secs, cur)
		}
	}
	for _, raw := range strings.Split(strings.ReplaceAll(content, "\r\n", "\n"), "\n") {
		line := strings.TrimSpace(raw)
		if format == Markdown && strings.HasPrefix(line, "```") {
			inFence = !inFence
			cur.body = append(cur.body, line)
			continue
		}
		if line == "" {
			cur.body = append(cur.body, "")
			continue
		}
		if inFence {
			cur.body = append(cur.body, line)
			continue
		}
		rank, title, rest, ok := headingRank(line, format)
		if !ok {
			cur.body = append(cur.body, line)
			continue
		}
		flush()
		for len(stack) > 0 && stack[len(stack)-1].rank >= rank {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, open{rank, title})
		path := make([]string, len(stack))
		for i, o := range stack {
			path[i] = o.title
		}
		cur = section{path: path, level: rank}
		if rest != "" {
			cur.body = append(cur.body, rest)
		}
	}
	flush()
	out := secs[:0]
	for _, s := range secs {
		if hasText(s.body) || len(s.path) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func hasText(lines []string) bool {
	for _, l := range lines {
		if l != "" {
			return true
		}
	}
	return false
}

// cutChunks packs a section's lines into chunks: sentences accumulate up to
// opts.Target runes and a chunk is cut after a sentence end or a paragraph end;
// nothing is longer than opts.Max.
func cutChunks(lines []string, opts ChunkOptions) []string {
	var chunks []string
	var cur strings.Builder
	n := 0 // runes of the sentences in cur
	w := 0 // runes in cur, separators included
	emit := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			chunks = append(chunks, s)
		}
		cur.Reset()
		n, w = 0, 0
	}
	add := func(s string, sep string) {
		m := utf8.RuneCountInString(s)
		if n > 0 && (n+m > opts.Target || w+len(sep)+m > opts.Max) {
			emit()
		}
		for m > opts.Max { // a sentence longer than Max: cut it hard
			cut := byteIndexOfRune(s, opts.Max)
			if n > 0 {
				emit()
			}
			cur.WriteString(s[:cut])
			emit()
			s = s[cut:]
			m -= opts.Max // s[:cut] was Max runes; counting again is quadratic
		}
		if n > 0 {
			cur.WriteString(sep)
			w += len(sep) // sep is ASCII
		}
		cur.WriteString(s)
		n += m
		w += m
	}
	for _, line := range lines {
		if line == "" {
			continue
		}
		sents := splitSentences(line)
		for i, s := range sents {
			sep := ""
			if i == 0 {
				sep = "\n"
			}
			add(s, sep)
		}
	}
	emit()
	return chunks
}

// splitSentences cuts a line after each sentence-ending mark, keeping the mark
// (and a closing quote or bracket right after it).
func splitSentences(line string) []string {
	var out []string
	start := 0
	rs := []rune(line)
	pos := 0
	for i := 0; i < len(rs); i++ {
		size := utf8.RuneLen(rs[i])
		pos += size
		if strings.ContainsRune(sentenceEnd, rs[i]) {
			for i+1 < len(rs) && strings.ContainsRune("”’」』）)\"'", rs[i+1]) {
				i++
				pos += utf8.RuneLen(rs[i])
			}
			out = append(out, line[start:pos])
			start = pos
		}
	}
	if start < len(line) {
		out = append(out, line[start:])
	}
	return out
}

func byteIndexOfRune(s string, n int) int {
	i := 0
	for j := range s {
		if i == n {
			return j
		}
		i++
	}
	return len(s)
}
