package index

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	_ "unsafe" // for go:linkname

	"github.com/go-ego/gse"
)

// gseZhS is the text of gse's embedded simplified-Chinese dictionary
// (data/dict/zh/s_1.txt), which gse keeps unexported: LoadDictEmbed("zh_s")
// is its only reader. A renamed variable in another gse version fails the
// link, not silently; a build without gse's embedding (tag ne) leaves it
// empty, and NewAnalyzer then loads the stock way.
//
//go:linkname gseZhS github.com/go-ego/gse.zhS
var gseZhS string

// buildDict loads a gse dictionary text into seg, as seg.LoadDictStr(text)
// does, in about half the time. LoadDictStr parses the lines one by one and
// inserts them in file order into the double-array trie, where a key that
// sorts before its neighbours moves whole blocks. Here the lines are parsed
// in parallel and sorted by key, so that each insertion appends to the
// trie; gse's own ToToken, AddToken and CalcToken do the rest.
//
// The dictionary is the same: the same tokens with the same frequencies and
// parts of speech, the same total and maximum length, so the same
// segmentation. Only the order of seg.Dict.Tokens differs (sorted by key
// rather than by line). Where two lines give one key (dictionary keys are
// lower-cased: "4S店" and "4s店"), the first line's token is kept, as
// AddToken keeps it: the sort is stable, and the parts are merged in file
// order.
func buildDict(seg *gse.Segmenter, text string) {
	buildDictParts(seg, text, min(runtime.GOMAXPROCS(0), 8))
}

// buildDictParts is buildDict parsing text in n parts.
func buildDictParts(seg *gse.Segmenter, text string, n int) {
	if seg.Dict == nil {
		seg.Dict = gse.NewDict()
		seg.Init() // sets MinTokenFreq, which parsing reads
	}
	chunks := splitLines(text, n)
	parts := make([]dictPart, len(chunks))
	var wg sync.WaitGroup
	for i, lines := range chunks {
		wg.Go(func() { parts[i] = parseDict(seg, lines) })
	}
	wg.Wait()
	total := 0
	for _, p := range parts {
		total += len(p.toks)
	}
	seg.Dict.Tokens = slices.Grow(seg.Dict.Tokens, total)
	// Merge the sorted parts; on equal keys the earlier part (the earlier
	// line) goes first, and AddToken ignores the later one.
	for {
		best := -1
		for i, p := range parts {
			if len(p.keys) > 0 && (best < 0 || p.keys[0].key < parts[best].keys[0].key) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		p := &parts[best]
		seg.Dict.AddToken(p.toks[p.keys[0].i])
		p.keys = p.keys[1:]
	}
	seg.CalcToken()
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

// splitLines cuts text into n parts of about equal size at line boundaries
// (some may be empty).
func splitLines(text string, n int) []string {
	var parts []string
	for i := n; i > 1; i-- {
		cut := len(text) / i
		if j := strings.IndexByte(text[cut:], '\n'); j >= 0 {
			cut += j + 1
		} else {
			cut = len(text)
		}
		parts = append(parts, text[:cut])
		text = text[cut:]
	}
	return append(parts, text)
}

// parseDict parses dictionary lines as gse's LoadDictStr does: fields
// separated by DictSep and a space, the text, the frequency and an optional
// part of speech; lines that seg.Size gives no frequency are skipped.
func parseDict(seg *gse.Segmenter, text string) dictPart {
	n := strings.Count(text, "\n") + 1
	p := dictPart{toks: make([]gse.Token, 0, n), keys: make([]dictKey, 0, n)}
	sep := seg.DictSep + " "
	for line := range strings.SplitSeq(text, "\n") {
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
