package retrieve

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
)

// Term weights. A user's word weighs 1; a dictionary sub-word of a long word
// (for recall when the corpus segments it differently) weighs less; question
// words and particles weigh little but still count, so a query made only of
// them still finds something. A synonym from the collection's lexicon weighs
// half a word: it widens the search without outranking the user's own words.
const (
	weightWord     = 1.0
	weightSynonym  = 0.5
	weightSubWord  = 0.4
	weightFunction = 0.1
	// askBoost multiplies the weight of the words and bigrams of a long
	// query's last sentence (lastClause): a message that tells a story asks
	// at its end.
	askBoost = 1.5
	// askMinRunes is the length from which a query's last sentence counts
	// as its ask: a short question is all ask.
	askMinRunes = 40
)

// functionWords are question words and particles that say how something is
// asked, not what about. They are kept at a low weight, not dropped.
var functionWords = map[string]bool{
	"什么": true, "如何": true, "怎么": true, "怎样": true, "怎么样": true, "为什么": true, "为何": true,
	"哪些": true, "哪个": true, "哪里": true, "哪儿": true, "多少": true, "几": true, "是否": true,
	"吗": true, "呢": true, "吧": true, "啊": true, "呀": true, "请问": true, "一下": true,
	"的": true, "了": true, "是": true, "在": true, "有": true, "和": true, "与": true, "及": true,
	"或": true, "被": true, "把": true, "对": true, "就": true, "都": true, "也": true, "还": true,
	"要": true, "会": true, "能": true, "可以": true, "应该": true, "需要": true, "一个": true,
	"我": true, "我们": true, "你": true, "他": true, "她": true, "它": true, "这": true, "那": true,
	"这个": true, "那个": true, "时": true, "时候": true, "中": true, "里": true, "上": true,
	"the": true, "a": true, "an": true, "of": true, "to": true, "is": true, "are": true, "what": true,
	"how": true, "why": true, "which": true, "and": true, "or": true, "in": true, "on": true, "for": true,
}

// QueryTerms analyses a query into weighted, de-duplicated terms, in query
// order, without a collection lexicon.
func (s *Searcher) QueryTerms(q string) []index.QueryTerm { return capTerms(s.queryTerms(nil, q)) }

// QueryTermsIn analyses a query with the lexicon of a collection: its terms
// stay whole (their usual pieces are added as sub-words), its stop words are
// dropped (unless the query has nothing else: then it is searched as
// written), its synonyms add their alternatives at weight 0.5, one hop, and
// the passage words its words stand for, learned from the collection's
// labelled questions, are added with their learned weight (index/learn).
// An unknown collection has no lexicon; the search reports it.
func (s *Searcher) QueryTermsIn(collection, q string) []index.QueryTerm {
	v, err := s.store.Vocab(collection)
	if err != nil {
		v = nil
	}
	terms := s.queryTerms(v, q)
	if m, err := s.store.Learned(collection); err == nil && m != nil {
		// Learned expansions: the passage words the query's words stand for.
		terms = m.Expand(terms)
	}
	if len(terms) <= index.MaxQueryTerms {
		return terms
	}
	// Over the cap: terms no chunk holds can score nothing, so they go
	// first, leaving room for the rest.
	has, err := s.store.HasTerms(collection, terms)
	if err == nil {
		kept := make([]index.QueryTerm, 0, len(terms))
		for i, t := range terms {
			if has[i] {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			terms = kept
		}
	}
	return capTerms(terms)
}

func (s *Searcher) queryTerms(v *analysis.Vocab, q string) []index.QueryTerm {
	toks := s.an.QueryTokensIn(v, q)
	gramText := q
	if v.HasStopWords() {
		toks, gramText = dropStopWords(v, toks, q)
	}
	var terms []index.QueryTerm
	atWord, atGram := map[string]int{}, map[string]int{}
	add := func(t string, w float64, gram bool) {
		at := atWord
		if gram {
			at = atGram
		}
		if i, ok := at[t]; ok {
			terms[i].Weight = max(terms[i].Weight, w)
			return
		}
		at[t] = len(terms)
		terms = append(terms, index.QueryTerm{Term: t, Weight: w, Gram: gram})
	}
	content := 0
	for _, tk := range toks {
		if !functionWords[tk.Term] {
			content++
		}
	}
	subWord := func(sub string) {
		if !functionWords[sub] && !v.IsStopWord(sub) && utf8.RuneCountInString(sub) > 1 {
			add(sub, weightSubWord, false)
		}
	}
	askFrom, boost := lastClause(q)
	for _, tk := range toks {
		w := weightWord
		if functionWords[tk.Term] && content > 0 {
			w = weightFunction
		}
		if askFrom > 0 && tk.Start >= askFrom {
			w *= boost
		}
		add(tk.Term, w, false)
		if v.IsTerm(tk.Term) {
			// A lexicon term is not in gse's dictionary: its sub-words are
			// the words it is usually cut into, and theirs.
			for _, p := range s.an.QueryTokens(tk.Term) {
				if p.Term == tk.Term {
					continue
				}
				subWord(p.Term)
				if utf8.RuneCountInString(p.Term) >= 3 {
					for _, sub := range s.an.SubTerms(p.Term) {
						subWord(sub)
					}
				}
			}
		} else if utf8.RuneCountInString(tk.Term) >= 3 {
			for _, sub := range s.an.SubTerms(tk.Term) {
				subWord(sub)
			}
		}
	}
	// Synonyms: the alternatives' words, one hop (an alternative's own
	// synonyms are not looked up).
	var synGrams []string
	if v.HasSynonyms() {
		v.SynonymMatches(s.an.Normalize(gramText).Text, func(_ string, alts []string) {
			for _, alt := range alts {
				for _, tk := range s.an.QueryTokensIn(v, alt) {
					if !functionWords[tk.Term] && !v.IsStopWord(tk.Term) {
						add(tk.Term, weightSynonym, false)
					}
				}
				synGrams = append(synGrams, s.an.Grams(alt)...)
			}
		})
	}
	// Character bigrams of the query, searched in the bigram field (the
	// collection's GramWeight scales them).
	for _, g := range s.an.Grams(gramText) {
		w := weightWord
		if functionWords[g] && content > 0 {
			w = weightFunction
		}
		add(g, w, true)
	}
	for _, g := range synGrams {
		add(g, weightSynonym, true)
	}
	if askFrom > 0 {
		ask := q[askFrom:]
		if v.HasStopWords() {
			_, ask = dropStopWords(v, s.an.QueryTokensIn(v, ask), ask)
		}
		for _, g := range s.an.Grams(ask) {
			w := weightWord
			if functionWords[g] && content > 0 {
				w = weightFunction
			}
			add(g, w*boost, true)
		}
	}
	return terms
}

// sentenceEnds are the marks that end a sentence.
const sentenceEnds = "。？！?!；;…\n"

// lastClause is the byte offset where the last sentence of a query of at
// least askMinRunes starts, and the weight its words get (askBoost); 0 and 1
// for a shorter query or one of a single sentence. Marks at the very end
// ("……怎么办？") do not count as a sentence of their own.
func lastClause(q string) (int, float64) {
	if utf8.RuneCountInString(q) < askMinRunes {
		return 0, 1
	}
	body := strings.TrimRightFunc(q, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(sentenceEnds, r) })
	i := strings.LastIndexFunc(body, func(r rune) bool { return strings.ContainsRune(sentenceEnds, r) })
	if i < 0 {
		return 0, 1
	}
	_, size := utf8.DecodeRuneInString(body[i:])
	return i + size, askBoost
}

// dropStopWords removes the stop words from a query's tokens, and their
// characters from the text its bigrams are taken from; a query made only of
// stop words is left as it is.
func dropStopWords(v *analysis.Vocab, toks []analysis.Token, q string) ([]analysis.Token, string) {
	kept := slices.DeleteFunc(slices.Clone(toks), func(tk analysis.Token) bool { return v.IsStopWord(tk.Term) })
	if len(kept) == 0 || len(kept) == len(toks) {
		return toks, q
	}
	var b strings.Builder
	prev := 0
	for _, tk := range toks {
		if v.IsStopWord(tk.Term) && tk.Start >= prev { // offsets never go back; checked anyway
			b.WriteString(q[prev:tk.Start])
			b.WriteByte(' ')
			prev = tk.End
		}
	}
	b.WriteString(q[prev:])
	return kept, b.String()
}

// capTerms keeps at most index.MaxQueryTerms terms: the heaviest; at equal
// weight the query's own terms before learned expansions, words before
// bigrams, the later before the earlier; in their original order.
func capTerms(terms []index.QueryTerm) []index.QueryTerm {
	if len(terms) <= index.MaxQueryTerms {
		return terms
	}
	order := make([]int, len(terms))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ta, tb := terms[a], terms[b]
		if ta.Weight != tb.Weight {
			return cmp.Compare(tb.Weight, ta.Weight)
		}
		if (ta.From == "") != (tb.From == "") { // the query's own words before learned expansions
			if ta.From == "" {
				return -1
			}
			return 1
		}
		if ta.Gram != tb.Gram {
			if ta.Gram {
				return 1
			}
			return -1
		}
		return cmp.Compare(b, a) // the later term first: a question ends with its ask
	})
	keep := order[:index.MaxQueryTerms]
	slices.Sort(keep)
	out := make([]index.QueryTerm, len(keep))
	for i, k := range keep {
		out[i] = terms[k]
	}
	return out
}
