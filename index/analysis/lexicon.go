package analysis

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
)

// entryName shows an entry in an error message: the whole of a short one, the
// start of a long one.
func entryName(s string) string {
	if utf8.RuneCountInString(s) <= 24 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d characters)", TruncateRunes(s, 24), utf8.RuneCountInString(s))
}

// TruncateRunes returns the first n characters of s (all of s when shorter).
func TruncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// NormalizeLexicon checks a lexicon and returns it normalised. Errors wrap
// ErrInvalid and name the offending entry by its list and position
// ("terms[3]", "synonyms[1].alternatives[0]"). Empty entries, entries over
// MaxLexiconEntryRunes, entries with spaces or without a letter or digit are
// rejected; so are duplicates (after normalisation: "XQ-7700" and "xq-7700"
// are the same entry), a synonym of itself, and a word that is both a stop
// word and a term or synonym. Synonym cycles are accepted: expansion is one hop.
func (a *Analyzer) NormalizeLexicon(in index.Lexicon) (index.Lexicon, error) {
	n := len(in.Terms) + len(in.StopWords) + len(in.Synonyms)
	for _, s := range in.Synonyms {
		n += len(s.Alternatives)
	}
	if n > index.MaxLexiconEntries {
		return index.Lexicon{}, fmt.Errorf("%w: lexicon has %d entries, over the limit of %d", index.ErrInvalid, n, index.MaxLexiconEntries)
	}
	norm := func(field, s string) (string, error) {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("%w: lexicon %s is not valid UTF-8", index.ErrInvalid, field)
		}
		if utf8.RuneCountInString(s) > 4*index.MaxLexiconEntryRunes {
			// Checked before normalising so a huge entry costs nothing.
			return "", fmt.Errorf("%w: lexicon %s %s is over the limit of %d characters", index.ErrInvalid, field, entryName(s), index.MaxLexiconEntryRunes)
		}
		t := strings.TrimSpace(a.Normalize(s).Text)
		switch {
		case t == "":
			return "", fmt.Errorf("%w: lexicon %s is empty", index.ErrInvalid, field)
		case utf8.RuneCountInString(t) > index.MaxLexiconEntryRunes:
			return "", fmt.Errorf("%w: lexicon %s %s is over the limit of %d characters", index.ErrInvalid, field, entryName(s), index.MaxLexiconEntryRunes)
		case strings.ContainsFunc(t, unicode.IsSpace):
			return "", fmt.Errorf("%w: lexicon %s %s contains a space: an entry is one word or code", index.ErrInvalid, field, entryName(s))
		case !isWordy(t):
			return "", fmt.Errorf("%w: lexicon %s %s has no letter or digit", index.ErrInvalid, field, entryName(s))
		}
		return t, nil
	}
	// list normalises one list and rejects duplicates within it.
	list := func(name string, in []string) ([]string, map[string]string, error) {
		out := make([]string, 0, len(in))
		where := map[string]string{}
		for i, s := range in {
			field := fmt.Sprintf("%s[%d]", name, i)
			t, err := norm(field, s)
			if err != nil {
				return nil, nil, err
			}
			if prev, ok := where[t]; ok {
				return nil, nil, fmt.Errorf("%w: lexicon %s %s duplicates %s (both are %q once normalised)", index.ErrInvalid, field, entryName(s), prev, t)
			}
			where[t] = field
			out = append(out, t)
		}
		return out, where, nil
	}
	var out index.Lexicon
	var err error
	var termAt, stopAt map[string]string
	if out.Terms, termAt, err = list("terms", in.Terms); err != nil {
		return index.Lexicon{}, err
	}
	if out.StopWords, stopAt, err = list("stop_words", in.StopWords); err != nil {
		return index.Lexicon{}, err
	}
	for t, field := range stopAt {
		if prev, ok := termAt[t]; ok {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s %q is also %s: a stop word cannot be a term", index.ErrInvalid, field, t, prev)
		}
	}
	keyAt := map[string]string{}
	for i, s := range in.Synonyms {
		field := fmt.Sprintf("synonyms[%d]", i)
		key, err := norm(field+".term", s.Term)
		if err != nil {
			return index.Lexicon{}, err
		}
		if prev, ok := keyAt[key]; ok {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s.term %s duplicates %s.term (both are %q once normalised)", index.ErrInvalid, field, entryName(s.Term), prev, key)
		}
		keyAt[key] = field
		if prev, ok := stopAt[key]; ok {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s.term %q is also %s: a stop word is dropped from queries, so it cannot have synonyms", index.ErrInvalid, field, key, prev)
		}
		if len(s.Alternatives) == 0 {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s (%q) has no alternatives", index.ErrInvalid, field, key)
		}
		if len(s.Alternatives) > index.MaxSynonymAlternatives {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s (%q) has %d alternatives, over the limit of %d", index.ErrInvalid, field, key, len(s.Alternatives), index.MaxSynonymAlternatives)
		}
		alts, altAt, err := list(field+".alternatives", s.Alternatives)
		if err != nil {
			return index.Lexicon{}, err
		}
		if f, ok := altAt[key]; ok {
			return index.Lexicon{}, fmt.Errorf("%w: lexicon %s %q is the synonym's own term", index.ErrInvalid, f, key)
		}
		for _, alt := range alts {
			if prev, ok := stopAt[alt]; ok {
				return index.Lexicon{}, fmt.Errorf("%w: lexicon %s %q is also %s: it would be dropped from every query", index.ErrInvalid, altAt[alt], alt, prev)
			}
		}
		out.Synonyms = append(out.Synonyms, index.Synonym{Term: key, Alternatives: alts})
	}
	return out, nil
}

// Vocab is a normalised Lexicon compiled for segmentation and query
// expansion. It is immutable and safe for concurrent use; a nil *Vocab is an
// empty lexicon.
type Vocab struct {
	lex      index.Lexicon
	terms    Matcher
	synonyms Matcher
	synAlts  map[string][]string
	stop     map[string]bool
}

// NewVocab compiles a lexicon that NormalizeLexicon returned (or one read
// back from the store).
func NewVocab(l index.Lexicon) *Vocab {
	v := &Vocab{lex: l, terms: NewMatcher(l.Terms), synAlts: map[string][]string{}, stop: map[string]bool{}}
	keys := make([]string, 0, len(l.Synonyms))
	for _, s := range l.Synonyms {
		keys = append(keys, s.Term)
		v.synAlts[s.Term] = s.Alternatives
	}
	v.synonyms = NewMatcher(keys)
	for _, w := range l.StopWords {
		v.stop[w] = true
	}
	return v
}

// Lexicon returns the lexicon v was compiled from (the empty Lexicon for nil).
// Callers must not modify its slices.
func (v *Vocab) Lexicon() index.Lexicon {
	if v == nil {
		return index.Lexicon{}
	}
	return v.lex
}

// Version is the log position of the write that set the lexicon.
func (v *Vocab) Version() uint64 {
	if v == nil {
		return 0
	}
	return v.lex.Version
}

// IsTerm reports whether t is one of the lexicon's terms.
func (v *Vocab) IsTerm(t string) bool { return v != nil && v.terms.has(t) }

// HasStopWords reports whether the lexicon has stop words.
func (v *Vocab) HasStopWords() bool { return v != nil && len(v.stop) > 0 }

// HasSynonyms reports whether the lexicon has synonyms.
func (v *Vocab) HasSynonyms() bool { return v != nil && len(v.synAlts) > 0 }

// IsStopWord reports whether t (a normalised query term) is a stop word.
func (v *Vocab) IsStopWord(t string) bool { return v != nil && v.stop[t] }

// SynonymMatches calls fn for each synonym key found in the normalised text,
// leftmost-longest and not overlapping, with its alternatives. fn must not
// modify alts.
func (v *Vocab) SynonymMatches(text string, fn func(key string, alts []string)) {
	if v == nil || len(v.synAlts) == 0 {
		return
	}
	v.synonyms.scan(text, func(s, e int) bool {
		fn(text[s:e], v.synAlts[text[s:e]])
		return true
	})
}

// Matcher finds whole entries in normalised text: a set keyed by the entry,
// plus, per first rune, the distinct byte lengths of the entries starting with
// it (longest first). A scan costs one map lookup per rune and one per
// candidate length, so a large lexicon does not slow segmentation down much.
type Matcher struct {
	set  map[string]bool
	lens map[rune][]int
}

// NewMatcher compiles entries (normalised, as in a Lexicon) into a Matcher.
func NewMatcher(entries []string) Matcher {
	m := Matcher{set: map[string]bool{}, lens: map[rune][]int{}}
	for _, e := range entries {
		if e == "" || m.set[e] {
			continue
		}
		m.set[e] = true
		r, _ := utf8.DecodeRuneInString(e)
		if !slices.Contains(m.lens[r], len(e)) {
			m.lens[r] = append(m.lens[r], len(e))
		}
	}
	for r := range m.lens {
		slices.SortFunc(m.lens[r], func(a, b int) int { return b - a })
	}
	return m
}

func (m Matcher) has(t string) bool { return m.set[t] }

// Empty reports whether the matcher has no entries.
func (m Matcher) Empty() bool { return len(m.set) == 0 }

// Found reports whether text contains an entry.
func (m Matcher) Found(text string) bool {
	found := false
	m.scan(text, func(int, int) bool { found = true; return false })
	return found
}

// scan calls fn(start, end) for each entry found in text, left to right,
// longest first at each position, without overlaps, until fn returns false. An entry that starts or
// ends with a letter or digit of a code ("xq-7700") matches only where that
// code run starts or ends, so "xq-7700" is not found in "xq-77001".
func (m Matcher) scan(text string, fn func(start, end int) bool) {
	if len(m.set) == 0 {
		return
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		end := -1
		if ls := m.lens[r]; ls != nil && !(isCodeRune(r) && codeBefore(text[:i])) {
			for _, l := range ls {
				if i+l > len(text) || !m.set[text[i:i+l]] {
					continue
				}
				last, _ := utf8.DecodeLastRuneInString(text[i : i+l])
				if isCodeRune(last) && codeAfter(text[i+l:]) {
					continue
				}
				end = i + l
				break
			}
		}
		if end < 0 {
			i += size
			continue
		}
		if !fn(i, end) {
			return
		}
		i = end
	}
}

// codeBefore reports whether a code run continues up to the end of s.
func codeBefore(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	if isCodeRune(r) {
		return true
	}
	if isJoiner(r) {
		r2, _ := utf8.DecodeLastRuneInString(s[:len(s)-size])
		return isCodeRune(r2)
	}
	return false
}

// codeAfter reports whether a code run continues from the start of s.
func codeAfter(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	if isCodeRune(r) {
		return true
	}
	return isJoiner(r) && nextIsCode(s[size:])
}
