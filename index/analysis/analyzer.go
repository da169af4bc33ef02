package analysis

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ego/gse"
	"github.com/longbridgeapp/opencc"
	"github.com/zhisou/zhisou/index/analysis/internal/gsedict"
	"golang.org/x/text/unicode/norm"
)

// Analyzer turns Chinese (and mixed) text into index and query terms.
//
// It normalises (NFKC, lower case, traditional → simplified), then segments Han
// runs with gse and keeps Latin/digit runs (product codes such as "PPR-9087") whole.
// An Analyzer is loaded once per process and is safe for concurrent use: after
// New returns, nothing in it is written.
type Analyzer struct {
	seg gse.Segmenter
	// subs gives the dictionary tokens' sub-segments; read them through it,
	// never through Token.Segments, which gsedict.Load leaves empty (nil subs,
	// as with DictFiles, reads Token.Segments).
	subs *gsedict.Table
	t2s  *opencc.OpenCC
	// trad[r-hanLo] is true for a Han rune that OpenCC converts on its own: a
	// text with none of them is left alone, which skips OpenCC (7 MB/s) for the
	// simplified text that is almost all we see.
	trad []bool
	// stable is a bitset over the BMP: bit r is set when normalisation leaves
	// rune r as it is (outside the Han and full-width ranges, which are
	// decided on their own), so a text of such runes needs no rewriting.
	stable []uint64

	// fingerprint is Fingerprint's, computed by New.
	fingerprint uint64
}

// The Han ranges checked for traditional characters: CJK Extension A and the
// Unified Ideographs block.
const hanLo, hanHi = 0x3400, 0x9FFF

// Options configures New. The zero value loads gse's embedded
// simplified-Chinese dictionary.
type Options struct {
	// DictFiles, when set, are gse dictionary files loaded instead of the
	// embedded dictionary (tests use a tiny one).
	DictFiles []string
}

// New loads the segmentation dictionary and the traditional →
// simplified tables. On two cores the embedded dictionary takes about a
// third of the time of gse's own LoadDictEmbed("zh_s"), 0.5–0.65 s against
// 1.8 s in a fresh process, and allocates 220 MB against 410 MB (see
// buildDict: words' sub-words are computed on first use); the tables,
// 30 ms, are built meanwhile. Do not load another gse dictionary
// concurrently: gse loads its HMM model into package maps without a lock.
func New(opts Options) (*Analyzer, error) {
	a := &Analyzer{}
	a.seg.SkipLog = true
	dictErr := make(chan error, 1)
	go func() { dictErr <- a.loadDict(opts.DictFiles) }()
	tablesErr := a.loadTables()
	if err := <-dictErr; err != nil {
		return nil, err
	}
	if tablesErr != nil {
		return nil, tablesErr
	}
	a.fingerprint = a.computeFingerprint()
	return a, nil
}

// loadDict loads the gse dictionary files, or the embedded dictionary when
// there are none.
func (a *Analyzer) loadDict(files []string) error {
	var err error
	switch {
	case len(files) > 0:
		err = a.seg.LoadDict(strings.Join(files, ","))
	case gsedict.Embedded() != "":
		// Text is converted to simplified Chinese before segmentation, so the
		// traditional dictionary (zh_t, another second and 70 MB) is not needed.
		a.subs = gsedict.Load(&a.seg, gsedict.Embedded())
	default:
		err = a.seg.LoadDictEmbed("zh_s")
	}
	if err != nil {
		return fmt.Errorf("load gse dictionary: %w", err)
	}
	if a.seg.Dict == nil || a.seg.Dict.NumTokens() == 0 {
		return fmt.Errorf("load gse dictionary: no entries loaded")
	}
	return nil
}

// loadTables loads OpenCC's traditional → simplified tables and builds the
// trad and stable tables from them.
func (a *Analyzer) loadTables() error {
	var err error
	a.t2s, err = opencc.New("t2s")
	if err != nil {
		return fmt.Errorf("load traditional→simplified tables: %w", err)
	}
	a.trad = make([]bool, hanHi-hanLo+1)
	var b strings.Builder
	for r := rune(hanLo); r <= hanHi; r++ {
		b.WriteRune(r)
	}
	all := b.String()
	conv, err := a.t2s.Convert(all)
	if err != nil {
		return fmt.Errorf("build traditional character table: %w", err)
	}
	if utf8.RuneCountInString(conv) == len(a.trad) {
		i := 0
		for _, r := range conv {
			a.trad[i] = r != rune(hanLo+i)
			i++
		}
	} else { // phrases matched across neighbours: fall back to one rune at a time
		for r := rune(hanLo); r <= hanHi; r++ {
			c, err := a.t2s.Convert(string(r))
			a.trad[r-hanLo] = err == nil && c != string(r)
		}
	}
	a.stable = make([]uint64, 0x10000/64)
	for r := rune(0x80); r < 0x10000; r++ {
		if r >= 0xD800 && r <= 0xDFFF || r >= hanLo && r <= hanHi || r >= 0xFF01 && r <= 0xFF5E {
			continue
		}
		if a.normalizeRune(string(r)) == string(r) {
			a.stable[r>>6] |= 1 << (r & 63)
		}
	}
	return nil
}

// normalizeRune is the normalisation of one non-ASCII rune outside the Han
// and full-width ranges (s holds it and may continue).
func (a *Analyzer) normalizeRune(s string) string {
	_, size := utf8.DecodeRuneInString(s)
	if norm.NFKC.PropertiesString(s).Decomposition() != nil {
		return strings.ToLower(norm.NFKC.String(s[:size]))
	}
	r, _ := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r))
}

// isNormal reports whether Normalize would return s unchanged: no upper-case
// ASCII, no full-width forms, no traditional characters, no rune that NFKC or
// lower-casing rewrites, valid UTF-8. Most simplified-Chinese text is.
func (a *Analyzer) isNormal(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return false
		case r >= hanLo && r <= hanHi:
			if a.trad[r-hanLo] {
				return false
			}
		case r >= 0x10000 || a.stable[r>>6]&(1<<(r&63)) == 0:
			return false
		}
		i += size
	}
	return true
}

// Normalized is text after normalisation, with a map back to the original.
type Normalized struct {
	// Text is the normalised text.
	Text string
	// shifts map Text's runes back to the original text: the rune at byte p
	// of Text came from the original rune at byte p + delta of the last shift
	// at or before p. A shift starts wherever that difference changes (after
	// a full-width comma, at each rune of a character that normalises to
	// several), so Chinese text needs one every few dozen bytes, where a
	// byte-by-byte map took 8 bytes a byte, and highlighting 100 hits missed
	// the CPU caches on it. nil means the identity: the text was already
	// normal.
	shifts []shift
	// origLen is the original text's length (when shifts is set).
	origLen int
}

// shift is where the offset from Text back to the original changes.
type shift struct{ at, delta int }

// Orig maps a byte offset in the normalised text to one in the original text:
// the start of the original rune that produced the byte (every byte of a rune
// maps to it), and the original length for len(Text) and beyond.
func (n Normalized) Orig(i int) int {
	if i < 0 {
		return 0
	}
	if i >= len(n.Text) {
		if n.shifts == nil {
			return len(n.Text)
		}
		return n.origLen
	}
	for i > 0 && !utf8.RuneStart(n.Text[i]) {
		i-- // every byte of a rune maps to the rune's start
	}
	if n.shifts == nil {
		return i
	}
	// The last shift at or before i; the first is at 0.
	lo, hi := 0, len(n.shifts)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if n.shifts[m].at <= i {
			lo = m
		} else {
			hi = m
		}
	}
	return i + n.shifts[lo].delta
}

// newNormalized is text with its byte map to the original text (orig[i]: the
// original offset of the rune that produced byte i; orig[len(text)]: the
// original length), kept as shifts.
func newNormalized(text string, orig []int) Normalized {
	n := Normalized{Text: text, origLen: orig[len(orig)-1], shifts: []shift{}}
	for p := 0; p < len(text); {
		_, size := utf8.DecodeRuneInString(text[p:])
		if d := orig[p] - p; len(n.shifts) == 0 || n.shifts[len(n.shifts)-1].delta != d {
			n.shifts = append(n.shifts, shift{at: p, delta: d})
		}
		p += size
	}
	if len(n.shifts) == 0 { // empty text
		n.shifts = append(n.shifts, shift{})
	}
	return n
}

// MemBytes is about the memory n holds beyond its text.
func (n Normalized) MemBytes() int { return 16 * len(n.shifts) }

// Normalize applies NFKC (full-width → half-width), lower case and traditional →
// simplified conversion, keeping a byte map to the original text so that
// highlights point into the caller's text. Invalid UTF-8 bytes become U+FFFD.
func (a *Analyzer) Normalize(s string) Normalized {
	if a.isNormal(s) {
		return Normalized{Text: s}
	}
	return a.normalizeSlow(s)
}

// normalizeSlow is Normalize rune by rune, building the byte map.
func (a *Analyzer) normalizeSlow(s string) Normalized {
	return newNormalized(a.normalizeMap(s))
}

// normalizeMap is normalizeSlow's text and byte map (see newNormalized).
func (a *Analyzer) normalizeMap(s string) (string, []int) {
	var b strings.Builder
	b.Grow(len(s))
	orig := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n := b.Len()
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		case r >= hanLo && r <= hanHi: // common ideographs: NFKC leaves them alone
			b.WriteString(s[i : i+size])
		case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII: what NFKC gives, without its cost
			c := byte(r - 0xFEE0)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteString(a.normalizeRune(s[i:]))
		}
		for range b.Len() - n {
			orig = append(orig, i)
		}
		i += size
	}
	orig = append(orig, len(s))
	return a.toSimplified(b.String(), orig)
}

// toSimplified converts traditional characters. OpenCC converts phrase by phrase;
// when a phrase changes the rune count (rare), the byte map is rebuilt rune by rune
// so that offsets stay right.
func (a *Analyzer) toSimplified(text string, orig []int) (string, []int) {
	if !strings.ContainsFunc(text, func(r rune) bool { return r >= hanLo && r <= hanHi && a.trad[r-hanLo] }) {
		return text, orig
	}
	out, err := a.t2s.Convert(text)
	if err != nil || out == text {
		return text, orig
	}
	if utf8.RuneCountInString(out) != utf8.RuneCountInString(text) {
		var b strings.Builder
		for _, r := range text {
			c, err := a.t2s.Convert(string(r))
			if err != nil || utf8.RuneCountInString(c) != 1 {
				c = string(r)
			}
			b.WriteString(c)
		}
		out = b.String()
	}
	if len(out) == len(text) {
		return out, orig
	}
	// Same runes, different byte lengths: remap rune by rune.
	newOrig := make([]int, 0, len(out)+1)
	j := 0
	for _, r := range out {
		_, oldSize := utf8.DecodeRuneInString(text[j:])
		for range utf8.RuneLen(r) {
			newOrig = append(newOrig, orig[j])
		}
		j += oldSize
	}
	return out, append(newOrig, orig[len(orig)-1])
}

// Token is one term with its byte offsets in the original text.
type Token struct {
	Term       string
	Start, End int
}

// Tokens returns the terms of s for indexing: fine-grained (gse search mode:
// whole words plus their dictionary sub-words), so that a query word matches
// inside a longer compound. Punctuation and spaces are dropped.
func (a *Analyzer) Tokens(s string) []Token {
	return a.tokensFine(a.Normalize(s), true, nil)
}

// TokensIn is Tokens with a collection's lexicon: its terms are kept whole
// (followed by their usual pieces). A nil v is Tokens.
func (a *Analyzer) TokensIn(v *Vocab, s string) []Token {
	return a.tokensFine(a.Normalize(s), true, v)
}

// QueryTokens returns the coarse terms of s (gse's shortest-path segmentation,
// no sub-words), in order. Callers expand them with SubTerms.
func (a *Analyzer) QueryTokens(s string) []Token {
	return a.tokensFine(a.Normalize(s), false, nil)
}

// QueryTokensIn is QueryTokens with a collection's lexicon: its terms come out
// whole. A nil v is QueryTokens.
func (a *Analyzer) QueryTokensIn(v *Vocab, s string) []Token {
	return a.tokensFine(a.Normalize(s), false, v)
}

// SubTerms returns the dictionary sub-words of a term (empty for short terms).
func (a *Analyzer) SubTerms(term string) []string {
	segs := a.seg.ModeSegment([]byte(term), true)
	var out []string
	for i := range segs {
		a.collectSub(segs[i].Token(), func(t string) {
			if t != term && isWordy(t) {
				out = append(out, t)
			}
		})
	}
	return out
}

func (a *Analyzer) collectSub(tok *gse.Token, emit func(string)) {
	for _, s := range a.subs.Of(tok) {
		emit(s.Token().Text())
		a.collectSub(s.Token(), emit)
	}
}

func (a *Analyzer) tokens(s string, fine bool) []Token {
	return a.tokensFine(a.Normalize(s), fine, nil)
}

// TokensOf is the index-time (fine) segmentation of normalised text with the
// lexicon v (nil for none).
func (a *Analyzer) TokensOf(n Normalized, v *Vocab) []Token { return a.tokensFine(n, true, v) }

// Grams returns the character bigrams of the Han runs of s (a one-character
// run gives its character), in order.
func (a *Analyzer) Grams(s string) []string { return GramsOf(a.Normalize(s).Text) }

// GramsOf is Grams of text that is already normalised (Normalized.Text).
func GramsOf(text string) []string {
	var out []string
	var run []rune
	flush := func() {
		if len(run) == 1 {
			out = append(out, string(run))
		}
		for i := 0; i+1 < len(run); i++ {
			out = append(out, string(run[i:i+2]))
		}
		run = run[:0]
	}
	for _, r := range text {
		if unicode.Is(unicode.Han, r) {
			run = append(run, r)
			continue
		}
		flush()
	}
	flush()
	return out
}

func (a *Analyzer) tokensFine(n Normalized, fine bool, v *Vocab) []Token {
	text := n.Text
	var out []Token
	emit := func(start, end int) {
		t := text[start:end]
		if !isWordy(t) {
			return
		}
		out = append(out, Token{Term: t, Start: n.Orig(start), End: n.Orig(end)})
	}
	if v == nil || v.terms.Empty() {
		a.segmentRange(text, 0, fine, emit)
		return out
	}
	// Lexicon terms are found first and kept whole; the text between them is
	// segmented as usual. At index time a term is followed by its usual
	// pieces too, so that a search for a piece still finds it.
	pos := 0
	v.terms.scan(text, func(start, end int) bool {
		a.segmentRange(text[:start], pos, fine, emit)
		emit(start, end)
		if fine {
			a.segmentRange(text[:end], start, true, func(s, e int) {
				if s != start || e != end {
					emit(s, e)
				}
			})
		}
		pos = end
		return true
	})
	a.segmentRange(text, pos, fine, emit)
	return out
}

// segmentRange segments text[from:]: Han runs with gse, Latin/digit runs as
// codes. Callers pass text cut at the end of the range, so runs stop there.
func (a *Analyzer) segmentRange(text string, from int, fine bool, emit func(int, int)) {
	for start := from; start < len(text); {
		r, size := utf8.DecodeRuneInString(text[start:])
		switch {
		case unicode.Is(unicode.Han, r):
			end := start + size
			for end < len(text) {
				r2, sz := utf8.DecodeRuneInString(text[end:])
				if !unicode.Is(unicode.Han, r2) {
					break
				}
				end += sz
			}
			a.segmentHan(text, start, end, fine, emit)
			start = end
		case isCodeRune(r):
			end := start + size
			for end < len(text) {
				r2, sz := utf8.DecodeRuneInString(text[end:])
				if isCodeRune(r2) || (isJoiner(r2) && end+sz < len(text) && nextIsCode(text[end+sz:])) {
					end += sz
					continue
				}
				break
			}
			emit(start, end)
			if fine && strings.ContainsFunc(text[start:end], isJoiner) {
				// "ppr-9087" is also findable as "ppr" and "9087".
				p := start
				for i, r2 := range text[start:end] {
					if isJoiner(r2) {
						emit(p, start+i)
						p = start + i + utf8.RuneLen(r2)
					}
				}
				emit(p, end)
			}
			start = end
		default:
			start += size
		}
	}
}

func (a *Analyzer) segmentHan(text string, start, end int, fine bool, emit func(int, int)) {
	segs := a.seg.ModeSegment([]byte(text[start:end]), false)
	for i := range segs {
		s, e := start+segs[i].Start(), start+segs[i].End()
		emit(s, e)
		if fine {
			a.emitSub(segs[i].Token(), s, emit)
		}
	}
}

func (a *Analyzer) emitSub(tok *gse.Token, base int, emit func(int, int)) {
	for _, sub := range a.subs.Of(tok) {
		emit(base+sub.Start(), base+sub.End())
		a.emitSub(sub.Token(), base+sub.Start(), emit)
	}
}

// isCodeRune reports whether r belongs to a Latin/digit run ("ppr", "9087", "okr").
func isCodeRune(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsNumber(r)) && !unicode.Is(unicode.Han, r)
}

// isJoiner reports whether r joins two code runs into one code ("ppr-9087", "v2.6", "hr_comp").
func isJoiner(r rune) bool { return r == '-' || r == '_' || r == '.' || r == '/' }

func nextIsCode(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isCodeRune(r)
}

// isWordy reports whether t has a letter or digit, so is worth indexing.
func isWordy(t string) bool {
	for _, r := range t {
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			return true
		}
	}
	return false
}

// GseVersion is the gse version the analyzer is built for.
const GseVersion = gsedict.SupportedGse

// DictionaryHash identifies the embedded segmentation dictionary: the first
// 12 hex digits of its SHA-256 ("" when gse's own loader is used). Indexes
// built with another dictionary segment text differently.
func DictionaryHash() string {
	d := gsedict.Embedded()
	if d == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(d))
	return hex.EncodeToString(sum[:6])
}

// fingerprintProbe is text whose segmentation Fingerprint hashes: headings of
// the kinds the material has, in both scripts.
const fingerprintProbe = "中华人民共和国劳动合同法 第三十八条 用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。" +
	"第三章 有限空间作业安全 客户嫌价格太贵怎么办 銷售話術與異議處理 Safety first: PPE 2024版"

// Fingerprint identifies how the analyzer segments text: a hash of its
// dictionary's size and total frequency and of the terms of a fixed probe
// text. What was derived from analysed text and saved (the keyword graph's
// heading words) is used again only under the same fingerprint.
func (a *Analyzer) Fingerprint() uint64 { return a.fingerprint }

func (a *Analyzer) computeFingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d %g\x00", a.seg.Dict.NumTokens(), a.seg.Dict.TotalFreq())
	for _, t := range a.TokensIn(nil, fingerprintProbe) {
		h.Write([]byte(t.Term))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
