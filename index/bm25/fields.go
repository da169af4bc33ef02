package bm25

import (
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/blevesearch/bleve/v2/document"
	bindex "github.com/blevesearch/bleve_index_api"

	"github.com/zhisou/zhisou/index"
)

// A chunk's bleve document is built here, field by field, instead of by
// bleve's mapping from a map of joined strings: its terms are analysed
// already, so joining them with spaces for the mapping's whitespace
// tokenizer to split again was a tenth of ingest's CPU. The fields are those
// the mapping (textMapping) makes, with the same options: the scored fields'
// terms are split on white space as its tokenizer splits them, the keyword
// fields are one term each, and the empty composite field "_all" that every
// mapped document carries is there too (TestDocumentMatchesMapping).

// scoredOptions and keywordOptions are the mapping's field options: indexed,
// not stored, no term vectors, no doc values.
const (
	scoredOptions  = bindex.IndexField
	keywordOptions = bindex.IndexField
)

// newDocument is the bleve document of chunk c of document d.
func newDocument(d *index.Document, c *index.Chunk, terms Terms) *document.Document {
	doc := document.NewDocument(index.ChunkVersion(c))
	for i, name := range scoredFields {
		doc.AddField(newTermsField(name, terms[i]))
	}
	doc.AddField(document.NewTextFieldCustom(fieldDoc, nil, []byte(d.ID), keywordOptions, nil))
	for n, k := range slices.Sorted(maps.Keys(d.Metadata)) {
		doc.AddField(document.NewTextFieldCustom(fieldMeta, []uint64{uint64(n)}, []byte(metaTerm(k, d.Metadata[k])), keywordOptions, nil))
	}
	for i := range c.HeadingPath {
		doc.AddField(document.NewTextFieldCustom(fieldScope, []uint64{uint64(i)}, []byte(scopeTerm(c.HeadingPath[:i+1])), keywordOptions, nil))
	}
	var excluded []string
	for _, f := range doc.Fields {
		excluded = append(excluded, f.Name())
	}
	doc.AddField(document.NewCompositeFieldWithIndexingOptions("_all", true, []string{}, excluded, bindex.IndexField|bindex.IncludeTermVectors))
	return doc
}

// termsField is a scored field of analysed terms: it counts them itself.
type termsField struct {
	name   string
	terms  []string
	bytes  uint64 // the terms joined by spaces, as the mapping's field held them
	length int
	freqs  bindex.TokenFrequencies
}

func newTermsField(name string, terms []string) *termsField {
	f := &termsField{name: name, terms: terms}
	for _, t := range terms {
		f.bytes += uint64(len(t)) + 1
	}
	if f.bytes > 0 {
		f.bytes--
	}
	return f
}

func (f *termsField) Name() string                         { return f.name }
func (f *termsField) Value() []byte                        { return nil } // not stored
func (f *termsField) ArrayPositions() []uint64             { return nil }
func (f *termsField) EncodedFieldType() byte               { return 't' }
func (f *termsField) Options() bindex.FieldIndexingOptions { return scoredOptions }
func (f *termsField) AnalyzedLength() int                  { return f.length }
func (f *termsField) NumPlainTextBytes() uint64            { return f.bytes }

// Size estimates the field's memory, for bleve's batch accounting.
func (f *termsField) Size() int {
	n := 96 + len(f.name) + int(f.bytes) + 16*len(f.terms)
	if f.freqs != nil {
		n += f.freqs.Size()
	}
	return n
}

func (f *termsField) AnalyzedTokenFrequencies() bindex.TokenFrequencies { return f.freqs }

// Analyze counts the terms. A term holding white space other than ' '
// (which Analyse removed) is split there, as the whitespace tokenizer did.
func (f *termsField) Analyze() {
	f.freqs = make(bindex.TokenFrequencies, len(f.terms))
	f.length = 0
	add := func(t string) {
		f.length++
		tf := f.freqs[t]
		if tf == nil {
			tf = &bindex.TokenFreq{Term: []byte(t)}
			f.freqs[t] = tf
		}
		tf.SetFrequency(tf.Frequency() + 1)
	}
	for _, t := range f.terms {
		if strings.IndexFunc(t, unicode.IsSpace) < 0 {
			if t != "" {
				add(t)
			}
			continue
		}
		for _, part := range strings.FieldsFunc(t, unicode.IsSpace) {
			add(part)
		}
	}
}
