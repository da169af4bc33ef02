// Package gsedict loads gse's embedded simplified-Chinese dictionary about
// three times faster than gse does, and computes dictionary words' sub-words
// on first use. It is the only code that reaches into gse's unexported state
// (go:linkname, and unsafe through a mirror of gse.Token), so it is tied to
// one gse version: SupportedGse. Its tests fail on any other version.
package gsedict

import (
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/go-ego/gse"
)

// SupportedGse is the gse module version whose internals this package
// mirrors. TestSupportedGse fails on any other: check the mirror (gseToken,
// the linknamed names, CalcToken's steps) against the new gse, then update it.
const SupportedGse = "v0.80.3"

// gseZhS is the text of gse's embedded simplified-Chinese dictionary
// (data/dict/zh/s_1.txt), which gse keeps unexported: LoadDictEmbed("zh_s")
// is its only reader. It is empty in a build without gse's embedding (tag
// ne), and if another gse version renamed the variable (the link does not
// fail: this declaration then defines it), which TestEmbeddedFound reports.
//
//go:linkname gseZhS github.com/go-ego/gse.zhS
var gseZhS string

// Embedded returns the text of gse's embedded zh_s dictionary, or "" when it
// cannot be reached (then load the stock way: seg.LoadDictEmbed("zh_s")).
func Embedded() string { return gseZhS }

// Mirrored reports whether this package's mirror of gse.Token matches the
// gse in the build. When it does not, Load falls back to gse's own (three
// times slower) CalcToken and returns a nil Table.
func Mirrored() bool { return tokenLayoutOK() }

// Load loads a gse dictionary text into seg, as seg.LoadDictStr(text)
// does, in about a third of the time, and returns the table of the tokens
// sub-segments. LoadDictStr parses the lines one by one, inserts them in
// file order into the double-array trie, then has CalcToken compute every
// token's distance and sub-segmentation. Here inserting is in key order,
// which is faster (each node's children arrive in order): the lines are
// dealt by their first character into ranges of keys, each range parsed and
// sorted on another core while the one before is inserted, with gse's own
// ToToken and AddToken. Then the distances are computed, and the
// sub-segments are left to the table, which computes each token's on first
// use (Table).
//
// The dictionary is the same: the same tokens with the same frequencies,
// distances and parts of speech, the same total and maximum length, so the
// same segmentation, and the table gives the sub-segments CalcToken gives.
// Only the order of seg.Dict.Tokens differs (sorted by key rather than by
// line), and the tokens' own sub-segments (Token.Segments) are left empty:
// gse reads them only in its search-mode output functions (ToString,
// ToSlice, ToPos with searchMode), which zhisou does not use. Where two
// lines give one key (keys are lower-cased: "4S店" and "4s店"), the first
// line's token is kept, as AddToken keeps it: both lines fall in one range,
// sorted by key and then by line.
//
// When gseToken no longer mirrors gse.Token (another gse version), gse's
// CalcToken fills the tokens' sub-segments as usual and the table is nil.
func Load(seg *gse.Segmenter, text string) *Table {
	return buildDictRanges(seg, text, 16, runtime.GOMAXPROCS(0)-1)
}

// buildDictRanges is Load with the keys cut into n ranges (1 to 256),
// parsed by the given number of workers (at least one).
func buildDictRanges(seg *gse.Segmenter, text string, n, workers int) *Table {
	n = min(max(n, 1), 256)
	if seg.Dict == nil {
		seg.Dict = gse.NewDict()
		seg.Init() // sets MinTokenFreq, which parsing reads
	}
	ranges := keyRanges(seg, text, n)
	parts := make([]dictPart, len(ranges))
	parsed := make([]chan struct{}, len(ranges))
	for i := range parsed {
		parsed[i] = make(chan struct{})
	}
	var next atomic.Int64
	for range max(1, workers) {
		go func() {
			for i := int(next.Add(1) - 1); i < len(ranges); i = int(next.Add(1) - 1) {
				parts[i] = parseDict(seg, ranges[i])
				close(parsed[i])
			}
		}()
	}
	seg.Dict.Tokens = slices.Grow(seg.Dict.Tokens, strings.Count(text, "\n")+1)
	for i := range parts {
		<-parsed[i]
		p := parts[i]
		for _, k := range p.keys {
			seg.Dict.AddToken(p.toks[k.i])
		}
		parts[i] = dictPart{}
	}
	if !tokenLayoutOK() {
		seg.CalcToken()
		return nil
	}
	calcDistances(seg)
	return newSubTable(seg)
}

// gseSegmentWords is gse's dynamic-programming segmentation of one text,
// which CalcToken runs on every token (about 0.45 s for zh_s, on one core).
// It only reads the dictionary.
//
//go:linkname gseSegmentWords github.com/go-ego/gse.(*Segmenter).segmentWords
func gseSegmentWords(seg *gse.Segmenter, text []gse.Text, searchMode bool) []gse.Segment

// gseToken mirrors gse.Token, whose fields are unexported, so that
// calcDistances can set what CalcToken sets and Table can read a token's
// text. tokenLayoutOK checks the mirror against gse.Token field by field;
// when they differ (another gse version), Load calls gse's own
// CalcToken instead.
type gseToken struct {
	text     []gse.Text
	freq     float64
	pos      string
	distance float32
	segments []*gse.Segment
}

// tokenLayoutOK reports whether gseToken has gse.Token's fields: the same
// names, types and offsets in the same order, and the same size.
var tokenLayoutOK = sync.OnceValue(func() bool {
	g, m := reflect.TypeFor[gse.Token](), reflect.TypeFor[gseToken]()
	if g.Size() != m.Size() || g.NumField() != m.NumField() {
		return false
	}
	for i := range g.NumField() {
		gf, mf := g.Field(i), m.Field(i)
		if gf.Name != mf.Name || gf.Type != mf.Type || gf.Offset != mf.Offset {
			return false
		}
	}
	return true
})

// mirrorTokens is the dictionary's tokens seen through gseToken; only when
// tokenLayoutOK.
func mirrorTokens(d *gse.Dictionary) []gseToken {
	return unsafe.Slice((*gseToken)(unsafe.Pointer(unsafe.SliceData(d.Tokens))), len(d.Tokens))
}

// calcDistances sets every token's distance as CalcToken does (the
// segmentation's path costs), leaving the sub-segments to a Table.
func calcDistances(seg *gse.Segmenter) {
	logTotalFreq := float32(math.Log2(seg.Dict.TotalFreq()))
	toks := mirrorTokens(seg.Dict)
	for i := range toks {
		toks[i].distance = logTotalFreq - float32(math.Log2(toks[i].freq))
	}
}

// Table holds the dictionary tokens' sub-segments (the dictionary words
// within a word: 客户经理 → 客户, 经理), computed the way CalcToken computes
// them but each on first use: CalcToken computes all 352 275 of zh_s at
// load, about 0.2 s of start-up on two cores, and most are never read.
// A token's sub-segments depend only on the finished dictionary, which
// nothing writes after Load, so any goroutine may compute them; the
// first stored is kept, and all are equal. Safe for concurrent use.
type Table struct {
	seg   *gse.Segmenter
	toks  []gseToken // seg.Dict.Tokens, through the mirror
	cells []atomic.Pointer[[]*gse.Segment]
}

func newSubTable(seg *gse.Segmenter) *Table {
	toks := mirrorTokens(seg.Dict)
	return &Table{seg: seg, toks: toks, cells: make([]atomic.Pointer[[]*gse.Segment], len(toks))}
}

// Of returns tok's sub-segments, as tok.Segments() would after CalcToken;
// a nil Table returns tok.Segments().
// A token that is not the dictionary's (gse makes one-character tokens
// for characters it does not know) has its own, which are none.
func (s *Table) Of(tok *gse.Token) []*gse.Segment {
	if s == nil || len(s.toks) == 0 {
		return tok.Segments()
	}
	p, base := uintptr(unsafe.Pointer(tok)), uintptr(unsafe.Pointer(&s.toks[0]))
	size := unsafe.Sizeof(gseToken{})
	if p < base || p >= base+uintptr(len(s.toks))*size {
		return tok.Segments()
	}
	i := (p - base) / size
	if segs := s.cells[i].Load(); segs != nil {
		return *segs
	}
	segs := subSegmentsOf(gseSegmentWords(s.seg, s.toks[i].text, true))
	if !s.cells[i].CompareAndSwap(nil, &segs) {
		return *s.cells[i].Load()
	}
	return segs
}

// subSegmentsOf keeps the segments CalcToken keeps: all but single Japanese
// kana.
func subSegmentsOf(segments []gse.Segment) []*gse.Segment {
	n := 0
	for i := range segments {
		if keepSubSegment(&segments[i]) {
			n++
		}
	}
	out := make([]*gse.Segment, 0, n)
	for i := range segments {
		if keepSubSegment(&segments[i]) {
			out = append(out, &segments[i])
		}
	}
	return out
}

func keepSubSegment(s *gse.Segment) bool {
	text := (*gseToken)(unsafe.Pointer(s.Token())).text
	if len(text) == 0 {
		return false
	}
	return len(text) != 1 || !gse.IsJp(string(text[0]))
}

// keyRanges deals the lines of text into n ranges of about equal size by
// the first character of their key, in order, each range's lines in file
// order. A line's range depends on its key alone, so lines with one key
// share a range.
func keyRanges(seg *gse.Segmenter, text string, n int) [][]string {
	sep := seg.DictSep + " "
	lines := strings.Count(text, "\n") + 1
	first := make([]uint16, 0, lines)
	var count [1 << 16]int
	for line := range strings.SplitSeq(text, "\n") {
		word, _, _ := strings.Cut(line, sep)
		r := keyStart(strings.TrimLeftFunc(word, unicode.IsSpace)) // as TrimSpace, for the first rune
		first = append(first, r)
		count[r]++
	}
	// Cut the first characters, in order, into n runs of about lines/n.
	var rangeOf [1 << 16]uint8
	seen := 0
	for r, c := range count {
		rangeOf[r] = uint8(min(n-1, seen*n/lines))
		seen += c
	}
	ranges := make([][]string, n)
	for i := range ranges {
		ranges[i] = make([]string, 0, lines/n*5/4)
	}
	i := 0
	for line := range strings.SplitSeq(text, "\n") {
		r := rangeOf[first[i]]
		ranges[r] = append(ranges[r], line)
		i++
	}
	return ranges
}

// keyStart is the first character of word's trie key (gse lower-cases ASCII
// letters), or 0xFFFF for all beyond the Basic Multilingual Plane.
func keyStart(word string) uint16 {
	r, _ := utf8.DecodeRuneInString(word)
	if 'A' <= r && r <= 'Z' {
		r += 'a' - 'A'
	}
	return uint16(min(r, 0xFFFF))
}

// dictPart is a run of parsed dictionary lines: their tokens in file order,
// and their trie keys sorted.
type dictPart struct {
	toks []gse.Token
	keys []dictKey // sorted by key, then by i
}

// dictKey is the trie key of toks[i].
type dictKey struct {
	key string
	i   int
}

// parseDict parses dictionary lines as gse's LoadDictStr does: fields
// separated by DictSep and a space, the text, the frequency and an optional
// part of speech; lines that seg.Size gives no frequency are skipped.
func parseDict(seg *gse.Segmenter, lines []string) dictPart {
	p := dictPart{toks: make([]gse.Token, 0, len(lines)), keys: make([]dictKey, 0, len(lines))}
	sep := seg.DictSep + " "
	for _, line := range lines {
		// LoadDictStr uses strings.Split(line, sep); only the first three
		// fields and whether there are one, two or more are read.
		size := 1
		word, rest, ok := strings.Cut(line, sep)
		freqText, pos := "", ""
		if ok {
			size = 2
			freqText, rest, ok = strings.Cut(rest, sep)
			if ok {
				size = 3
				pos, _, _ = strings.Cut(rest, sep)
				pos = strings.TrimSpace(strings.Trim(pos, "\n"))
			}
			freqText = strings.TrimSpace(freqText)
		}
		word = strings.TrimSpace(word)
		freq := seg.Size(size, word, freqText)
		if freq == 0 {
			continue
		}
		tok := seg.ToToken(word, freq, pos)
		key := word
		if !tok.Equals(word) { // ASCII letters are lower-cased
			key = tok.Text()
		}
		p.keys = append(p.keys, dictKey{key: key, i: len(p.toks)})
		p.toks = append(p.toks, tok)
	}
	slices.SortFunc(p.keys, func(a, b dictKey) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.i - b.i
	})
	return p
}
