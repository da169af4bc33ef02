package bm25

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/document"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
)

func bleveDoc(d *index.Document, c *index.Chunk, terms Terms) map[string]any {
	meta := make([]string, 0, len(d.Metadata))
	for k, v := range d.Metadata {
		meta = append(meta, metaTerm(k, v))
	}
	scope := make([]string, 0, len(c.HeadingPath))
	for i := range c.HeadingPath {
		scope = append(scope, scopeTerm(c.HeadingPath[:i+1]))
	}
	return map[string]any{
		fieldTitle:   strings.Join(terms[0], " "),
		fieldHeading: strings.Join(terms[1], " "),
		fieldBody:    strings.Join(terms[2], " "),
		fieldGram:    strings.Join(terms[3], " "),
		fieldDoc:     d.ID,
		fieldMeta:    meta,
		fieldScope:   scope,
	}
}

// fieldSummary is what the index takes from a field once analysed.
func fieldSummary(f document.Field) string {
	if c, ok := f.(*document.CompositeField); ok {
		return fmt.Sprintf("composite %s len=%d freqs=%d", c.Name(), c.AnalyzedLength(), len(c.AnalyzedTokenFrequencies()))
	}
	freqs := f.AnalyzedTokenFrequencies()
	terms := slices.Sorted(maps.Keys(freqs))
	var b strings.Builder
	for _, t := range terms {
		fmt.Fprintf(&b, "%s:%d ", t, freqs[t].Frequency())
	}
	// Array positions are left out: without term vectors they do not reach
	// the index, and a document's metadata comes in map order.
	return fmt.Sprintf("%s type=%c opts=%d len=%d bytes=%d [%s]", f.Name(), f.EncodedFieldType(), f.Options(), f.AnalyzedLength(), f.NumPlainTextBytes(), b.String())
}

// TestDocumentMatchesMapping: the documents newDocument builds are the ones
// bleve's mapping made from the joined terms, field for field once analysed
// (the index is the same, whichever made them).
func TestDocumentMatchesMapping(t *testing.T) {
	an := indextest.Analyzer(t)
	m, err := textMapping()
	if err != nil {
		t.Fatal(err)
	}
	docs := indextest.Fixture()
	docs = append(docs, indextest.Doc("odd", "标题\u3000有全角空格", "正文 里有 空格。"))
	docs[len(docs)-1].Metadata = map[string]string{"course": "销售", "level": "初级"}
	n := 0
	for di := range docs {
		d := &docs[di]
		for ci := range d.Chunks {
			c := &d.Chunks[ci]
			c.HeadingPath = append(c.HeadingPath, "第一章", "价格异议")
			terms := Analyse(an, nil, d.Title, c)
			if di == len(docs)-1 {
				terms[0] = append(terms[0], "全角\u3000空格", "", "制表\t符")
			}
			want := document.NewDocument(index.ChunkVersion(c))
			if err := m.MapDocument(want, bleveDoc(d, c, terms)); err != nil {
				t.Fatal(err)
			}
			got := newDocument(d, c, terms)
			if got.ID() != want.ID() {
				t.Fatalf("id %q, want %q", got.ID(), want.ID())
			}
			summarise := func(doc *document.Document) []string {
				var out []string
				for _, f := range doc.Fields {
					f.Analyze()
					out = append(out, fieldSummary(f))
				}
				slices.Sort(out)
				return out
			}
			g, w := summarise(got), summarise(want)
			if !slices.Equal(g, w) {
				t.Errorf("chunk %s:\n got %q\nwant %q", c.ID, g, w)
			}
			n++
		}
	}
	if n < 5 {
		t.Fatalf("only %d chunks compared", n)
	}
}
