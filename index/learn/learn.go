// Package learn is what a collection learns from labelled questions (pairs of
// a question and the chunk that answers it), without vectors:
//
//   - a question memory: the labelled questions themselves, indexed by their
//     words and character bigrams and scored with BM25 among each other, so
//     that a new question finds the labelled questions it resembles and,
//     through them, the chunks that answered them (Model.Similar);
//   - a translation table: for each question word, the passage words it stands
//     for, learned with IBM Model 1 over the pairs (question words against the
//     answering passage's words), applied at query time as weighted expansion
//     terms (Model.Expand): "老板" → "用人单位".
//
// A Model is built whole from the pairs and the passages' text, in a fixed
// order, so every replica that holds the same pairs builds the same model. It
// is immutable once built and safe for concurrent use.
package learn

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/internal/topk"
)

// Tuning, chosen by 5-fold cross-validation on stard-train (README).
const (
	// similarQuestions is how many of the most similar labelled questions
	// vote for their chunks.
	similarQuestions = 30
	// expansionsPerWord is the most passage words one question word expands to.
	expansionsPerWord = 6
	// minTranslation is the least translation probability kept.
	minTranslation = 0.02
	// expansionScale multiplies a translation probability into a term weight
	// (capped at the word's own weight).
	expansionScale = 8.0
	// fullTrust is the self-check reliability (see Model.Trust) from which
	// a model is trusted fully; below it, trust falls with the cube of the
	// ratio.
	fullTrust = 0.2
	// selfCheckMax is the most questions the self-check asks, minSelfCheck
	// the fewest it judges by.
	selfCheckMax = 2000
	minSelfCheck = 20
	// minTrust is the least trust at which expansions are added at all
	// (they cost search time).
	minTrust = 0.05
	// emIterations of IBM Model 1.
	emIterations = 5
	// maxTranslationSamples bounds the pairs translation learns from (the
	// memory holds them all; the 2 103 of stard-train build in about 3 s).
	maxTranslationSamples = 20_000
	// maxPassageWords bounds the words of one passage used for training.
	maxPassageWords = 400
	// A query key held by more than max(minCommonDF, questions/commonShare)
	// questions only adds to the questions its rarer keys found.
	minCommonDF = 500
	commonShare = 50
	// maxCandidates is the most questions the common keys are added to.
	maxCandidates = 1000
	// k1 and b of the questions' BM25.
	k1, b = 1.2, 0.75
)

// Sample is one pair as training sees it: the question, the chunk it names and
// that chunk's text ("" when the chunk no longer exists: the question is
// still remembered, but teaches no translation).
type Sample struct {
	Question string
	ChunkID  string
	Passage  string
	// Weight scales the question's votes for its chunk; 0 means 1 (a
	// labelled question). Generated questions have GeneratedWeight.
	Weight float64
}

// GeneratedWeight is the weight of a question a language model wrote about a
// chunk at ingest (index.Generated), against 1 for one a person labelled: a
// model writes its questions in the passage's own words, while labelled
// questions are how learners ask.
const GeneratedWeight = 0.5

// GeneratedQuestions returns the questions a chunk's generated content is
// remembered by: each question, and the keywords joined in one line.
func GeneratedQuestions(questions, keywords []string) []string {
	out := slices.Clone(questions)
	if len(keywords) > 0 {
		out = append(out, strings.Join(keywords, " "))
	}
	return out
}

func (s Sample) weight() float64 {
	if s.Weight <= 0 {
		return 1
	}
	return s.Weight
}

// Model is a collection's learned model.
type Model struct {
	// questions are the distinct labelled questions, with their chunks.
	questions []question
	keyID     map[string]int32 // question key → its number
	post      [][]int32        // key number → questions holding it, ascending
	idf       []float64        // key number → its idf among the questions
	avgLen    float64
	trans     map[string][]Expansion
	pairs     int // labelled
	generated int // generated (Sample.Weight below 1)
	// reliability is how often the memory's first chunk was one of a
	// labelled question's own when it was asked with itself left out.
	reliability float64
}

type question struct {
	text   string
	chunks []string
	keys   []int32 // its key numbers, ascending
	// weight is the highest of its samples' weights: 1 for a labelled
	// question, GeneratedWeight for a generated one.
	weight float64
	// vote scales its similarity to a query into votes for its chunks:
	// weight × Trust for a labelled question, weight for a generated one.
	vote float64
}

// Expansion is a passage word a question word stands for, with the
// probability IBM Model 1 gives it.
type Expansion struct {
	Term string
	P    float64
}

// Match is a chunk found through labelled questions: its score (in 0..1 for a
// query that matches a labelled question word for word) and the most similar
// labelled question that names it.
type Match struct {
	ChunkID  string
	Score    float64
	Question string
	// Generated reports that Question was written by a language model
	// about the chunk (index.Generated), not labelled by a person.
	Generated bool
}

// Stats describe a model.
type Stats struct {
	// Pairs are the labelled pairs, Generated the pairs of a generated
	// question and its chunk, Questions the distinct questions of both.
	Pairs, Generated, Questions int
	// Words is the number of question words with learned expansions.
	Words int
	// Reliability is the share of labelled questions (up to 2000, each left
	// out in turn) whose own chunk the memory put first; Trust is the scale
	// the model's contributions get from it, in 0..1.
	Reliability, Trust float64
}

// Stats returns the model's size.
func (m *Model) Stats() Stats {
	if m == nil {
		return Stats{}
	}
	return Stats{Pairs: m.pairs, Generated: m.generated, Questions: len(m.questions), Words: len(m.trans), Reliability: m.reliability, Trust: m.Trust()}
}

// Trust scales what the labelled questions add to a search (their votes and
// the expansions; generated ones are not judged): 1 when they predict each
// other's chunks at least fullTrust of the time, and
// (reliability/fullTrust)³ below. Questions that share words without sharing
// answers (reading-comprehension questions, one per passage, alike only in
// their form: 多少平方公里, 哪一年) would otherwise pull a search towards the
// passages of other questions of the same form.
func (m *Model) Trust() float64 {
	if m == nil {
		return 0
	}
	r := min(1, m.reliability/fullTrust)
	return r * r * r
}

// Keys are the terms a question is matched on: its words (as the query
// analysis cuts them, lexicon included) and its character bigrams, each once.
func Keys(an *analysis.Analyzer, v *analysis.Vocab, q string) []string {
	toks := an.QueryTokensIn(v, q)
	grams := an.Grams(q)
	keys := make([]string, 0, len(toks)+len(grams))
	for _, t := range toks {
		keys = append(keys, "w:"+t.Term)
	}
	for _, g := range grams {
		keys = append(keys, "g:"+g)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// words are the words of a text that translation learns from: those of two
// characters or more (single characters and particles say little; IBM Model
// 1's empty word absorbs the rest).
func words(toks []analysis.Token, limit int) []string {
	out := make([]string, 0, min(len(toks), limit))
	for _, t := range toks {
		if utf8.RuneCountInString(t.Term) >= 2 {
			out = append(out, t.Term)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// Build learns a model from samples, analysed by an with the lexicon v. The
// order of samples does not matter: they are sorted first.
func Build(an *analysis.Analyzer, v *analysis.Vocab, samples []Sample) *Model {
	samples = slices.Clone(samples)
	slices.SortFunc(samples, func(a, b Sample) int {
		return cmp.Or(cmp.Compare(a.Question, b.Question), cmp.Compare(a.ChunkID, b.ChunkID), cmp.Compare(b.weight(), a.weight()))
	})
	samples = slices.CompactFunc(samples, func(a, b Sample) bool {
		return a.Question == b.Question && a.ChunkID == b.ChunkID // the first, of the highest weight, is kept
	})
	m := &Model{keyID: map[string]int32{}}
	for _, s := range samples {
		if s.weight() >= 1 {
			m.pairs++
		} else {
			m.generated++
		}
	}
	total := 0
	for i := 0; i < len(samples); {
		j := i
		var chunks []string
		w := 0.0
		for ; j < len(samples) && samples[j].Question == samples[i].Question; j++ {
			chunks = append(chunks, samples[j].ChunkID)
			w = max(w, samples[j].weight())
		}
		qi := int32(len(m.questions))
		keys := Keys(an, v, samples[i].Question)
		ids := make([]int32, len(keys))
		for x, k := range keys {
			id, ok := m.keyID[k]
			if !ok {
				id = int32(len(m.post))
				m.keyID[k] = id
				m.post = append(m.post, nil)
			}
			m.post[id] = append(m.post[id], qi)
			ids[x] = id
		}
		slices.Sort(ids)
		total += len(keys)
		m.questions = append(m.questions, question{text: samples[i].Question, chunks: chunks, keys: ids, weight: w})
		i = j
	}
	if n := len(m.questions); n > 0 {
		m.avgLen = float64(total) / float64(n)
		m.idf = make([]float64, len(m.post))
		for k, p := range m.post {
			df := float64(len(p))
			m.idf[k] = math.Log(1 + (float64(n)-df+0.5)/(df+0.5))
		}
	}
	m.trans = translate(an, v, labelled(samples))
	m.reliability = m.selfCheck(an, v)
	t := m.Trust()
	if t < minTrust {
		t = 0
	}
	for i := range m.questions {
		q := &m.questions[i]
		if q.weight >= 1 {
			q.vote = q.weight * t
		} else {
			q.vote = q.weight // generated: a field of the chunk, not a judgement to check
		}
	}
	return m
}

// labelled returns the samples a person labelled (weight 1): translation
// learns from those only. A model writes its questions in the passage's own
// words, so they teach little about how learners ask, and expansions cost
// search time.
func labelled(samples []Sample) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.weight() >= 1 {
			out = append(out, s)
		}
	}
	return out
}

// selfCheck asks the memory each labelled question (up to selfCheckMax of
// them, evenly spread) with that question left out, and returns the share
// whose first chunk is one of its own: how well the labelled questions
// predict each other's answers, an estimate of how often a new question is
// answered by the memory if new questions are like the labelled ones.
//
// A model in which fewer than minSelfCheck questions share an answer with
// another cannot be judged that way (a FAQ list, one question per answer,
// would score 0 however good): its reliability is 1, the labels trusted as
// written.
func (m *Model) selfCheck(an *analysis.Analyzer, v *analysis.Vocab) float64 {
	askers := map[string]int{}
	var asking []int32 // the labelled questions
	for i, q := range m.questions {
		if q.weight >= 1 {
			asking = append(asking, int32(i))
			for _, c := range q.chunks {
				askers[c]++
			}
		}
	}
	shared := 0
	for _, qi := range asking {
		if slices.ContainsFunc(m.questions[qi].chunks, func(c string) bool { return askers[c] > 1 }) {
			shared++
		}
	}
	if shared < minSelfCheck {
		return 1
	}
	step := max(1, len(asking)/selfCheckMax)
	right, asked := 0, 0
	for i := 0; i < len(asking); i += step {
		q := &m.questions[asking[i]]
		best := m.similar(Keys(an, v, q.text), asking[i], true)
		asked++
		if len(best) > 0 && slices.Contains(q.chunks, best[0].ChunkID) {
			right++
		}
	}
	return float64(right) / float64(asked)
}

// Similar scores the chunks named by the questions most like a query's keys
// (Keys), best first. Each of the similarQuestions best questions adds its
// BM25 similarity to its chunks, times its vote (a labelled question's
// scaled by the model's Trust, a generated one's by GeneratedWeight); scores
// are divided by what the query would score against itself (a key no
// question has counting as the rarest), so a query that resembles nothing
// learned gets small scores rather than a confident list.
func (m *Model) Similar(keys []string) []Match {
	if m == nil || len(m.questions) == 0 {
		return nil
	}
	return m.similar(keys, -1, false)
}

// similar is Similar, leaving question skip out; checking (the self-check)
// asks the labelled questions only, at their weight.
func (m *Model) similar(keys []string, skip int32, checking bool) []Match {
	vote := func(q *question) float64 {
		switch {
		case !checking:
			return q.vote
		case q.weight >= 1:
			return q.weight
		}
		return 0
	}
	// The query's keys, rarest first. A key that many questions hold
	// (什么, 怎么办) adds to the questions the rarer keys found, without
	// walking its long list: its idf is small, and a question that shares
	// only such keys with the query would not be among the best.
	type qkey struct {
		id  int32
		idf float64
	}
	self := 0.0
	unseen := math.Log(1 + (float64(len(m.questions))+0.5)/0.5)
	var qkeys []qkey
	for _, k := range keys {
		id, ok := m.keyID[k]
		if !ok {
			self += unseen
			continue
		}
		self += m.idf[id]
		qkeys = append(qkeys, qkey{id, m.idf[id]})
	}
	slices.SortFunc(qkeys, func(a, b qkey) int { return cmp.Or(cmp.Compare(b.idf, a.idf), cmp.Compare(a.id, b.id)) })
	common := max(minCommonDF, len(m.questions)/commonShare)
	sim := map[int32]float64{}
	add := func(qi int32, idf float64) {
		q := &m.questions[qi]
		if qi == skip || vote(q) == 0 {
			return
		}
		norm := k1 * (1 - b + b*float64(len(q.keys))/m.avgLen)
		sim[qi] += idf * (k1 + 1) / (1 + norm)
	}
	pruned := false
	for _, k := range qkeys {
		if post := m.post[k.id]; len(post) <= common || len(sim) == 0 {
			for _, qi := range post {
				add(qi, k.idf)
			}
			continue
		}
		if !pruned && len(sim) > maxCandidates {
			// The common keys left add little: only the best
			// candidates so far can still reach the top.
			keep := map[int32]float64{}
			for _, qi := range best(sim, maxCandidates) {
				keep[qi] = sim[qi]
			}
			sim = keep
		}
		pruned = true
		for qi := range sim {
			if _, has := slices.BinarySearch(m.questions[qi].keys, k.id); has {
				add(qi, k.idf)
			}
		}
	}
	if len(sim) == 0 || self == 0 {
		return nil
	}
	qs := best(sim, similarQuestions)
	at := map[string]int{}
	var out []Match
	for _, qi := range qs { // best question first: it is each chunk's evidence
		q := &m.questions[qi]
		for _, c := range q.chunks {
			i, ok := at[c]
			if !ok {
				i = len(out)
				at[c] = i
				out = append(out, Match{ChunkID: c, Question: q.text, Generated: q.weight < 1})
			}
			out[i].Score += vote(q) * sim[qi] / self
		}
	}
	slices.SortStableFunc(out, func(a, b Match) int { return cmp.Compare(b.Score, a.Score) })
	return out
}

// best returns the k questions of sim most similar (ties: the lower number
// first), best first.
func best(sim map[int32]float64, k int) []int32 {
	qs, sc := make([]int32, 0, len(sim)), make([]float64, 0, len(sim))
	for qi, v := range sim {
		qs, sc = append(qs, qi), append(sc, v)
	}
	idx := topk.Best(len(qs), k, func(i int) float64 { return sc[i] },
		func(a, b int32) int { return cmp.Or(cmp.Compare(sc[b], sc[a]), cmp.Compare(qs[a], qs[b])) }, nil)
	out := make([]int32, len(idx))
	for i, x := range idx {
		out[i] = qs[x]
	}
	return out
}

// Expand adds to terms the passage words their words stand for: each word of
// weight w (not a bigram, not itself an expansion) adds its learned
// expansions of probability p at weight Trust·min(w, w·expansionScale·p),
// marked with the word they come from. A term the query already has is not
// added again.
func (m *Model) Expand(terms []index.QueryTerm) []index.QueryTerm {
	if m == nil || len(m.trans) == 0 {
		return terms
	}
	trust := m.Trust()
	if trust < minTrust {
		return terms
	}
	have := map[string]bool{}
	for _, t := range terms {
		if !t.Gram {
			have[t.Term] = true
		}
	}
	out := terms
	for _, t := range terms {
		if t.Gram || t.From != "" {
			continue
		}
		for _, e := range m.trans[t.Term] {
			if have[e.Term] {
				continue
			}
			have[e.Term] = true
			out = append(out, index.QueryTerm{Term: e.Term, Weight: trust * min(t.Weight, t.Weight*expansionScale*e.P), From: t.Term})
		}
	}
	return out
}

// Expansions returns a question word's learned expansions, most probable
// first.
func (m *Model) Expansions(word string) []Expansion {
	if m == nil {
		return nil
	}
	return m.trans[word]
}

// translate learns t(passage word | question word) with IBM Model 1 over the
// samples that have a passage, keeping for each question word its
// expansionsPerWord most probable passage words other than itself, of
// probability minTranslation or more.
func translate(an *analysis.Analyzer, v *analysis.Vocab, samples []Sample) map[string][]Expansion {
	// Words are numbered so the EM loops work on integers; 0 is the empty
	// question word that passage words with no counterpart align to.
	ids := map[string]int32{"": 0}
	names := []string{""}
	id := func(w string) int32 {
		i, ok := ids[w]
		if !ok {
			i = int32(len(names))
			ids[w] = i
			names = append(names, w)
		}
		return i
	}
	type sent struct{ q, p []int32 }
	var sents []sent
	step := max(1, len(samples)/maxTranslationSamples) // evenly spread, in sorted order
	for i := 0; i < len(samples); i += step {
		s := samples[i]
		if s.Passage == "" {
			continue
		}
		qw := words(an.QueryTokensIn(v, s.Question), maxPassageWords)
		pw := words(an.TokensIn(v, s.Passage), maxPassageWords)
		if len(qw) == 0 || len(pw) == 0 {
			continue
		}
		st := sent{q: []int32{0}}
		for _, w := range qw {
			st.q = append(st.q, id(w))
		}
		for _, w := range pw {
			st.p = append(st.p, id(w))
		}
		sents = append(sents, st)
	}
	if len(sents) == 0 {
		return nil
	}
	type pairKey struct{ q, p int32 }
	t := map[pairKey]float64{}
	const uniform = 1.0 // the first iteration: every alignment alike
	for it := range emIterations {
		count := map[pairKey]float64{}
		total := map[int32]float64{}
		for _, st := range sents {
			for _, p := range st.p {
				z := 0.0
				for _, q := range st.q {
					if it == 0 {
						z += uniform
					} else {
						z += t[pairKey{q, p}]
					}
				}
				for _, q := range st.q {
					v := uniform
					if it > 0 {
						v = t[pairKey{q, p}]
					}
					c := v / z
					count[pairKey{q, p}] += c
					total[q] += c
				}
			}
		}
		t = make(map[pairKey]float64, len(count))
		for k, c := range count {
			t[k] = c / total[k.q]
		}
	}
	out := map[string][]Expansion{}
	for k, p := range t {
		if k.q == 0 || k.q == k.p || p < minTranslation {
			continue
		}
		out[names[k.q]] = append(out[names[k.q]], Expansion{names[k.p], p})
	}
	for w, es := range out {
		slices.SortFunc(es, func(a, b Expansion) int { return cmp.Or(cmp.Compare(b.P, a.P), cmp.Compare(a.Term, b.Term)) })
		out[w] = slices.Clip(es[:min(len(es), expansionsPerWord)])
	}
	return out
}
