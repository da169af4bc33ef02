// Package analysis turns Chinese (and mixed) text into terms: normalisation
// (NFKC, lower case, traditional → simplified, with offsets back to the
// original), gse segmentation with sub-words, character bigrams, chunk keywords,
// and a collection's lexicon compiled for segmentation and query expansion
// (Vocab). It knows nothing of storage or scoring.
package analysis
