package main

import (
	"flag"

	"github.com/zhisou/zhisou/index"
)

// fusionFlags are the per-request fusion weight flags of search and eval.
type fusionFlags struct {
	bm25, outline, graph, learned float64
}

func (f *fusionFlags) register(fs *flag.FlagSet) {
	d := index.DefaultFusion
	fs.Float64Var(&f.bm25, "w-bm25", d.BM25, "fusion weight of BM25 (default: the collection's)")
	fs.Float64Var(&f.outline, "w-outline", d.Outline, "fusion weight of the outline match (default: the collection's)")
	fs.Float64Var(&f.graph, "w-graph", d.Graph, "fusion weight of the keyword graph (default: the collection's)")
	fs.Float64Var(&f.learned, "w-learned", d.Learned, "fusion weight of the chunks named by learned questions like the query (default: the collection's)")
}

// weights returns the weights set on the command line, or nil when none was
// set (the collection's weights apply). Unset weights take the defaults.
func (f *fusionFlags) weights(fs *flag.FlagSet) (*index.FusionWeights, error) {
	if !isSet(fs, "w-bm25") && !isSet(fs, "w-outline") && !isSet(fs, "w-graph") && !isSet(fs, "w-learned") {
		return nil, nil
	}
	w := index.FusionWeights{BM25: f.bm25, Outline: f.outline, Graph: f.graph, Learned: f.learned}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}
