package analysis

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zhisou/zhisou/index"
)

// keywordStop are frequent words that never make a keyword, whatever their
// dictionary frequency says.
var keywordStop = map[string]bool{
	"我们": true, "你们": true, "他们": true, "自己": true, "可以": true, "应该": true, "需要": true,
	"一个": true, "这个": true, "那个": true, "什么": true, "如何": true, "怎么": true, "为什么": true,
	"因为": true, "所以": true, "但是": true, "如果": true, "就是": true, "还是": true, "或者": true,
	"以及": true, "进行": true, "通过": true, "没有": true, "这样": true, "时候": true, "已经": true,
	"不是": true, "这些": true, "那些": true, "一些": true, "其中": true, "之后": true, "之前": true,
	"the": true, "and": true, "for": true, "with": true, "that": true, "this": true,
}

// Keywords extracts a chunk's keywords from its analysed body and heading-path
// terms: TF-IDF over them, with idf taken from gse's dictionary frequencies
// (a general-language prior that needs no corpus, so a chunk's keywords do not
// depend on what else is in the collection or on ingest order). Terms of the
// chunk's heading path count extra, and terms gse does not know (course jargon,
// product codes) get the highest idf. The collection's own statistics weigh in
// at query time: keyword document frequency and co-occurrence (PMI).
func (a *Analyzer) Keywords(body, heading []string) []index.Keyword {
	tf := map[string]float64{}
	for _, t := range body {
		tf[t]++
	}
	for _, t := range heading {
		tf[t] += 1.5 // heading terms are what the section is about
	}
	total := a.seg.Dict.TotalFreq()
	maxIDF := math.Log(total + 1)
	out := make([]index.Keyword, 0, len(tf))
	for t, n := range tf {
		if !keywordCandidate(t) {
			continue
		}
		idf := maxIDF
		if f, _, ok := a.seg.Find(t); ok && f > 0 {
			idf = math.Log(total / f)
		}
		idf /= maxIDF // 0..1
		if idf < 0.35 {
			continue // common words (的确, 工作, 问题 …) say little about a chunk
		}
		out = append(out, index.Keyword{Term: t, Weight: n / (n + 1.2) * idf})
	}
	slices.SortFunc(out, func(x, y index.Keyword) int {
		if c := cmp.Compare(y.Weight, x.Weight); c != 0 {
			return c
		}
		return cmp.Compare(x.Term, y.Term)
	})
	// The keywords live as long as the chunk's graph edges: copied out of
	// the room made for every term, and out of the text their terms cut.
	out = slices.Clone(out[:min(len(out), index.MaxKeywords)])
	for i := range out {
		out[i].Term = strings.Clone(out[i].Term)
		// rounded so the stored edges (and their JSON) are compact
		out[i].Weight = math.Round(out[i].Weight*1000) / 1000
	}
	return out
}

// keywordCandidate reports whether a term can be a keyword: two characters or
// more, not a stop word, not a bare number.
func keywordCandidate(t string) bool {
	if utf8.RuneCountInString(t) < 2 || keywordStop[t] {
		return false
	}
	for _, r := range t {
		if !unicode.IsDigit(r) && r != '.' && r != '-' {
			return true
		}
	}
	return false
}
